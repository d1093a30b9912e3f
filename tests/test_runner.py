"""The benchmark runner: tidy results, atomic writes, resume after an interrupt without redoing cells."""

import csv
import json

import pytest

from pdbench.bench import BenchConfig, run
from pdbench.errors import InputError, UnknownNameError


def _cfg(celeba_dir, out, **over):
    d = {
        "name": "t",
        "dataset": {"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                    "holdout": 1000, "split": "test", "n": 4, "seed": 0},
        "generators": ["stargan"],
        "defenses": ["none", {"name": "pgd", "steps": 2}, {"name": "fgsm"}],
        "settings": ["none", {"name": "jpeg", "quality": 75}],
        "metrics": ["mse", "dsr_mse", "linf_adv"],
        "batch_size": 2,
        "out": str(out),
    }
    d.update(over)
    return BenchConfig.from_dict(d)


def test_interrupted_run_resumes_without_redoing_cells(celeba_dir, tmp_path):
    cfg = _cfg(celeba_dir, tmp_path / "a")
    seen = []

    def stop_after_three(cell):
        seen.append(cell)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(cfg, progress=False, on_cell=stop_after_three)
    assert not (tmp_path / "a" / "results.csv").exists()
    stats = run(cfg, progress=False)
    assert stats == {**stats, "computed": 3, "reused": 3}  # 3 defenses × 2 batches = 6 cells
    again = run(cfg, progress=False)
    assert again["computed"] == 0 and again["reused"] == 6
    assert not list((tmp_path / "a").rglob("*.part"))

    fresh = run(_cfg(celeba_dir, tmp_path / "b"), progress=False)
    assert fresh["computed"] == 6
    a = (tmp_path / "a" / "results.csv").read_text().splitlines()
    b = (tmp_path / "b" / "results.csv").read_text().splitlines()
    # timing rows differ, values must not
    assert sorted(x for x in a if "protect_seconds" not in x) == sorted(x for x in b if "protect_seconds" not in x)


def test_a_stopped_run_writes_a_partial_summary_that_the_resumed_run_replaces(celeba_dir, tmp_path, monkeypatch):
    """A run stopped after its first cell (Ctrl-C in the second), then after its second (a cell that raises),
    writes summary.md and report.html of the finished cells, marked partial, atomically, and raises as before
    (no results.csv or results.json); the run that finishes replaces both with the complete ones."""
    from pdbench.bench import runner

    cfg = _cfg(celeba_dir, tmp_path / "a", defenses=["none", {"name": "fgsm"}], settings=["none"],
               metrics=["mse", "linf_adv"], batch_size=1,
               dataset={"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                        "holdout": 1000, "split": "test", "n": 2, "seed": 0})
    out, real, calls = tmp_path / "a", runner.timed_compute, []  # cells: b0 none, b0 fgsm, b1 none, b1 fgsm

    def stop_at(k, exc):
        def compute(cell, *a, **kw):
            calls.append(cell.label())
            if len(calls) == k:
                raise exc
            return real(cell, *a, **kw)
        return compute

    monkeypatch.setattr(runner, "timed_compute", stop_at(2, KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run(cfg, progress=False)
    md, html = (out / "summary.md").read_text(), (out / "report.html").read_text()
    assert ("**Partial results: 1 of 4 cells finished; rerun the same command to resume (stopped: interrupted "
            "(Ctrl-C or SIGTERM)).") in md
    assert "| stargan | none | none |" in md and "| stargan | fgsm | none |" not in md  # the finished cell alone
    assert 'id="partial"' in html and "1 of 4 cells finished; rerun the same command to resume" in html
    assert "Regenerate this page" not in html  # pdbench report reads results.json, which a partial run does not write
    assert "stargan: no image grid" in html  # its first batch is not complete
    assert not (out / "results.csv").exists() and not (out / "results.json").exists()
    assert not list(out.rglob("*.part"))

    calls.clear()
    monkeypatch.setattr(runner, "timed_compute", stop_at(3, RuntimeError("cell exploded")))
    with pytest.raises(RuntimeError, match="cell exploded"):  # the cell's own error, raised as before
        run(cfg, progress=False)
    md, html = (out / "summary.md").read_text(), (out / "report.html").read_text()
    assert "Partial results: 2 of 4 cells finished; rerun the same command to resume (stopped: RuntimeError: cell exploded)" in md
    assert "| stargan | fgsm | none |" in md
    assert 'alt="fgsm on stargan"' in html  # the first batch is complete: its grid is drawn
    assert not (out / "results.json").exists()

    monkeypatch.undo()
    stats = run(cfg, progress=False)
    assert stats == {**stats, "computed": 2, "reused": 2}
    md, html = (out / "summary.md").read_text(), (out / "report.html").read_text()
    assert "Partial results" not in md and 'id="partial"' not in html and "Partial results" not in html
    meta = json.loads((out / "results.json").read_text())
    assert "partial" not in meta and [e["n_images"] for e in meta["summary"]] == [2, 2]



def test_a_partial_run_never_leaves_an_earlier_runs_results_beside_its_summary(celeba_dir, tmp_path, monkeypatch):
    """After a complete run, a run that stops early shows each generator's images as finished of planned, and
    says what the earlier results.json / results.csv are: kept when they are of this same plan (only the cache
    was cleared), renamed results.stale.* when other inputs changed (here the metric weights' checksums, which
    the config's key does not cover), a results.csv the user edited left as it is."""
    import shutil

    from pdbench.bench import runner

    cfg = _cfg(celeba_dir, tmp_path / "a", defenses=["none", {"name": "fgsm"}], settings=["none"],
               metrics=["mse", "linf_adv"], batch_size=1,
               dataset={"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                        "holdout": 1000, "split": "test", "n": 2, "seed": 0})
    out, real, calls = tmp_path / "a", runner.timed_compute, []

    def stop_in_second_cell(cell, *a, **kw):
        calls.append(cell.label())
        if len(calls) % 2 == 0:
            raise KeyboardInterrupt
        return real(cell, *a, **kw)

    def stopped_run():
        monkeypatch.setattr(runner, "timed_compute", stop_in_second_cell)
        with pytest.raises(KeyboardInterrupt):
            run(cfg, progress=False)
        monkeypatch.setattr(runner, "timed_compute", real)
        return (out / "summary.md").read_text(), (out / "report.html").read_text()

    run(cfg, progress=False)
    first = {n: (out / n).read_bytes() for n in ("results.json", "results.csv")}
    shutil.rmtree(out / "cache")  # the same plan, recomputed
    md, html = stopped_run()
    assert "- generator `stargan` (weights " in md and "): 1 of 2 planned images finished (none 1, fgsm 0) at 64 px" in md
    assert "(1 of 2 planned images finished (none 1, fgsm 0) at 64 px" in html and "on 1 of 2 planned images" in html
    assert ("results.json and results.csv beside this summary are the complete results of an earlier run of this same "
            "plan (the same config, weights and photos).") in md
    assert {n: (out / n).read_bytes() for n in first} == first and not (out / "results.stale.json").exists()

    monkeypatch.setattr(runner, "metric_weights_key", lambda: "other-metric-weights")  # other inputs, same config
    md, html = stopped_run()
    assert ("The complete results of an earlier run of other inputs (weights, photos or metric weights) were renamed "
            "results.stale.json and results.stale.csv: they are not this run's numbers.") in md
    assert "were renamed results.stale.json" in html
    assert not (out / "results.json").exists() and not (out / "results.csv").exists()
    assert {n: (out / n.replace("results", "results.stale")).read_bytes() for n in first} == first

    stats = run(cfg, progress=False)  # the resumed run: the complete results of the new inputs
    assert stats == {**stats, "computed": 3, "reused": 1}
    meta, stale = (json.loads((out / n).read_text()) for n in ("results.json", "results.stale.json"))
    assert meta["results_key"] != stale["results_key"] and "Partial results" not in (out / "summary.md").read_text()

    with open(out / "results.csv", "a") as f:
        f.write("my,own,line,,,,,\n")  # a user's edit: pdbench no longer owns the file
    edited = (out / "results.csv").read_bytes()
    monkeypatch.setattr(runner, "metric_weights_key", lambda: "third-metric-weights")
    md, _ = stopped_run()
    assert ("were renamed results.stale.json: they are not this run's numbers. results.csv was changed after pdbench "
            "wrote it and is left as it is.") in md
    assert (out / "results.csv").read_bytes() == edited and not (out / "results.json").exists()
    assert json.loads((out / "results.stale.json").read_text())["results_key"] == meta["results_key"]
    assert not (out / "results.stale.csv").exists()  # the earlier stale table belonged to the replaced results.json
    assert not list(out.rglob("*.part"))

def test_tidy_rows_and_summary(celeba_dir, tmp_path):
    run(_cfg(celeba_dir, tmp_path), progress=False)
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    metric_rows = [r for r in rows if r["metric"] != "protect_seconds_per_image"]
    assert len(metric_rows) == 4 * 3 * 2 * 3  # images × defenses × settings × metrics
    none = [float(r["value"]) for r in metric_rows if r["defense"] == "none" and r["setting"] == "none"]
    assert max(none) == 0.0  # no defense, no post-processing: G(x_adv) = G(x)
    linf = [float(r["value"]) for r in metric_rows if r["metric"] == "linf_adv"]
    assert max(linf) <= 0.05
    meta = json.loads((tmp_path / "results.json").read_text())
    assert meta["metrics"]["mse"]["direction"] == "higher=more disrupted"
    md = (tmp_path / "summary.md").read_text()
    assert "| stargan | pgd(steps=2) | jpeg(quality=75) |" in md


def test_config_errors_are_clear(celeba_dir, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown metric 'lpipz'"):
        run(_cfg(celeba_dir, tmp_path, metrics=["lpipz"]), progress=False)
    with pytest.raises(InputError, match="unknown key"):
        BenchConfig.from_dict({"dataset": {}, "generators": [], "defenses": [], "metrics": [], "bogus": 1})


def test_metrics_with_parameters_get_their_own_column(celeba_dir, tmp_path):
    """A metric configured with parameters (detector F1 with YuNet) is a column of its own, next to the
    default; a parameter the metric does not take, or an unknown detector, is refused up front."""
    from conftest import require_asset

    require_asset("yunet-n-onnx-dynamic")
    metrics = ["mse", "detector_f1", {"name": "detector_f1", "detector": "yunet"}]
    cfg = _cfg(celeba_dir, tmp_path, metrics=metrics, defenses=["none"], settings=["none"])
    assert cfg.metrics == ["mse", "detector_f1", "detector_f1(detector=yunet)"]
    run(cfg, progress=False)
    summary = json.loads((tmp_path / "results.json").read_text())["summary"][0]
    assert summary["detector_f1"] == 1.0 and summary["detector_f1(detector=yunet)"] == 1.0  # clean = clean
    with pytest.raises(InputError, match="takes no parameter"):
        run(_cfg(celeba_dir, tmp_path / "b", metrics=[{"name": "mse", "power": 3}]), progress=False)
    with pytest.raises(UnknownNameError, match="yunet"):
        run(_cfg(celeba_dir, tmp_path / "c", metrics=[{"name": "detector_f1", "detector": "yunett"}]), progress=False)
