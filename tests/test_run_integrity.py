"""Run integrity: results identical to the pre-refactor runner, content-keyed cache, picklable pure
cells, locked and owned run folders, corrupt caches recomputed, NaN never counted, one-line errors."""

import csv
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pdbench.bench import BenchConfig, run
from pdbench.bench.rundir import LOCK, RunFolder
from pdbench.bench.runner import _defended, compute_cell, make_plan, summarise
from pdbench.cli import main
from pdbench.errors import InputError
from pdbench.metrics import MetricInputs
from pdbench.metrics.functional import psnr, rate_above

DATA = Path(__file__).parent / "data"


def _values(path) -> dict:
    return {(r["image"], r["defense"], r["setting"], r["metric"]): float(r["value"])
            for r in csv.DictReader(open(path)) if r["metric"] != "protect_seconds_per_image"}


def test_results_identical_to_the_runner_before_the_plan_refactor(celeba_dir, tmp_path):
    """tests/data/runner-before.csv was written by the runner before it became plan -> cell -> collect."""
    cfg = BenchConfig.from_dict({
        "name": "t", "dataset": {"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                                 "holdout": 1000, "split": "test", "n": 3, "seed": 0},
        "generators": ["stargan"], "defenses": ["none", {"name": "pgd", "steps": 2}, "fgsm"],
        "settings": ["none", {"name": "jpeg", "quality": 75}], "metrics": ["mse", "dsr_mse", "linf_adv", "psnr_adv"],
        "batch_size": 2, "out": str(tmp_path / "r")})
    run(cfg, progress=False)
    before, now = _values(DATA / "runner-before.csv"), _values(tmp_path / "r" / "results.csv")
    assert len(before) == 72 and before.keys() == now.keys()
    for k in before:
        assert now[k] == pytest.approx(before[k], rel=1e-5, abs=1e-6), k
    assert before[("009865.jpg", "pgd(steps=2)", "none", "dsr_mse")] == 0.800000011920929  # a real number, not a stand-in


def _photos(celeba_dir, dest: Path, n: int) -> Path:
    dest.mkdir(parents=True)
    for p in sorted((celeba_dir / "images").iterdir())[:n]:
        shutil.copy(p, dest / p.name)
    return dest


def _small(folder, out, **over):
    d = {"name": "s", "dataset": {"path": str(folder)}, "generators": ["stargan"], "defenses": ["fgsm"],
         "settings": ["none"], "metrics": ["mse", "psnr_adv"], "batch_size": 1, "out": str(out)}
    d.update(over)
    return BenchConfig.from_dict(d)


def test_a_replaced_photo_of_the_same_name_is_recomputed(celeba_dir, tmp_path):
    folder = _photos(celeba_dir, tmp_path / "p", 2)
    first = sorted(folder.iterdir())[0]
    cfg = _small(folder, tmp_path / "out")
    assert run(cfg, progress=False)["computed"] == 2
    old = _values(tmp_path / "out" / "results.csv")
    shutil.copy(sorted((celeba_dir / "images").iterdir())[5], first)  # another face, same name
    stats = run(cfg, progress=False)
    assert (stats["computed"], stats["reused"]) == (1, 1)
    new = _values(tmp_path / "out" / "results.csv")
    key = (first.name, "fgsm", "none", "mse")
    assert new[key] != old[key]
    assert run(_small(folder, tmp_path / "fresh"), progress=False)["computed"] == 2
    assert _values(tmp_path / "fresh" / "results.csv") == new  # exactly what a fresh run gives


def test_cells_pickle_and_compute_alone(celeba_dir, tmp_path):
    folder = _photos(celeba_dir, tmp_path / "p", 2)
    cfg = _small(folder, tmp_path / "out", batch_size=2)
    plan = make_plan(cfg, torch.device("cpu"), Path(cfg.out))
    assert len(plan.cells) == 1
    cell = pickle.loads(pickle.dumps(plan.cells[0]))
    res = compute_cell(cell)
    assert not res.reused and len(res.rows) == 2 * 2 + 1
    again = compute_cell(pickle.loads(pickle.dumps(cell)))
    assert again.reused and [r["value"] for r in again.rows] == [r["value"] for r in res.rows]
    # a swapped checkpoint changes the weights fingerprint, so the cache folder changes with it
    other = _small(folder, tmp_path / "out", batch_size=2, generators=[{"name": "stargan", "resolution": 32}])
    assert make_plan(other, torch.device("cpu"), Path(cfg.out)).cells[0].batch_dir != cell.batch_dir


def test_a_swapped_checkpoint_is_never_reused(celeba_dir, stargan, tmp_path):
    """Same checkpoint path, other weights: the fingerprint (and so every cache key) changes."""
    from safetensors.torch import save_file

    folder = _photos(celeba_dir, tmp_path / "p", 1)
    ckpt = tmp_path / "G.safetensors"
    state = {k: v.contiguous() for k, v in stargan.net.state_dict().items()}
    save_file(state, str(ckpt))
    cfg = _small(folder, tmp_path / "out", defenses=["none"], generators=[{"name": "stargan", "checkpoint": str(ckpt)}])
    assert run(cfg, progress=False)["computed"] == 1
    first = json.loads((tmp_path / "out" / "results.json").read_text())["generators"]
    state["main.0.weight"] = state["main.0.weight"] * 1.01
    save_file(state, str(ckpt))
    assert run(cfg, progress=False)["computed"] == 1
    second = json.loads((tmp_path / "out" / "results.json").read_text())["generators"]
    (label,) = first
    assert first[label]["weights"] != second[label]["weights"]


def test_run_folder_is_locked_and_owned(celeba_dir, tmp_path, capsys):
    folder = _photos(celeba_dir, tmp_path / "p", 1)
    out = tmp_path / "out"
    run(_small(folder, out, defenses=["none"]), progress=False)
    with pytest.raises(InputError, match="holds the results of another config.*another --out"):
        run(_small(folder, out, defenses=["none", "fgsm"]), progress=False)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (out / LOCK).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(InputError, match=f"in use by another pdbench run \\(pid {sleeper.pid}"):
            run(_small(folder, out, defenses=["none"]), progress=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run(_small(folder, out, defenses=["none"]), progress=False)["reused"] == 1  # stale lock taken over
    assert not (out / LOCK).exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("mine")
    with pytest.raises(InputError, match="not a pdbench run folder"):
        run(_small(folder, tmp_path / "mine"), progress=False)
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "mine"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="is a file; choose another --out"):
        RunFolder(tmp_path / "afile", "k").__enter__()


def test_corrupt_cache_files_are_named_and_recomputed(celeba_dir, tmp_path, capsys):
    folder = _photos(celeba_dir, tmp_path / "p", 1)
    cfg = _small(folder, tmp_path / "out")
    run(cfg, progress=False)
    before = _values(tmp_path / "out" / "results.csv")
    rows = next((tmp_path / "out" / "cache").rglob("rows-*.json"))
    adv = next((tmp_path / "out" / "cache").rglob("adv.pt"))
    rows.write_text('[{"image": ')
    adv.write_bytes(b"\x00garbage")
    capsys.readouterr()
    assert run(cfg, progress=False)["computed"] == 1
    err = capsys.readouterr().err
    assert str(rows) in err and str(adv) in err and "recomputing" in err
    assert _values(tmp_path / "out" / "results.csv") == before


def test_nan_is_undefined_never_not_disrupted():
    assert torch.isnan(rate_above(torch.tensor([[0.1, float("nan")], [0.2, 0.01]]), 0.05)[1])
    assert rate_above(torch.tensor([[0.1], [0.01]]), 0.05).tolist() == [0.5]
    values = _defended(None, {"mse": [0.3, 0.4], "dsr_mse": [1.0, 1.0]}, torch.tensor([True, False]))
    assert values["mse"][0] == 0.3 and all(v != v for v in (values["mse"][1], values["dsr_mse"][1]))
    rows = [{"generator": "g", "defense": "d", "setting": "s", "metric": m, "value": v}
            for m in ("mse", "dsr_mse") for v in values[m]]
    (entry,) = summarise(rows, ["mse", "dsr_mse"])
    assert entry["dsr_mse"] == 1.0 and entry["undefined"] == {"mse": 1, "dsr_mse": 1}
    from pdbench.report.markdown import summary_table

    assert "`dsr_mse` undefined for 1 of 2 image(s)" in summary_table({"summary": [entry]}, ["mse", "dsr_mse"])


def test_metric_inputs_are_checked():
    x = torch.zeros(2, 3, 16, 16)
    out = torch.zeros(5, 2, 3, 16, 16)
    MetricInputs(x, x, out, out)
    with pytest.raises(InputError, match=r"out_adv must be generator outputs of shape \(K, 2, 3, H, W\)"):
        MetricInputs(x, x, out, out[:, 0])  # (K, N) vs (K): no broadcasting
    with pytest.raises(InputError, match="x_adv has shape"):
        MetricInputs(x, x[:1], out, out)
    with pytest.raises(InputError, match=r"looks like \[0, 255\]"):
        psnr(torch.full((1, 3, 8, 8), 255.0), torch.zeros(1, 3, 8, 8))
    with pytest.raises(InputError, match="differ in shape"):
        psnr(torch.zeros(2, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def _yaml(tmp_path, text: str) -> str:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pdbench: error: ") and err.count("\n") == 1, err
    return err


def test_cli_bad_input_is_one_line(celeba_dir, tmp_path, capsys):
    folder = _photos(celeba_dir, tmp_path / "p", 1)
    good = f"dataset: {{path: {folder}}}\ngenerators: [stargan]\ndefenses: [none]\nmetrics: [mse]\nout: {tmp_path / 'o'}\n"
    assert "not valid YAML at line 2" in _one_line_error(capsys, ["run", _yaml(tmp_path, "name: x\ndataset: {path: /tmp]\ngenerators: [stargan]\n")])
    assert "device 'foo' is not a device" in _one_line_error(capsys, ["run", _yaml(tmp_path, good), "--device", "foo"])
    (tmp_path / "f").write_text("x")
    assert "is a file" in _one_line_error(capsys, ["run", _yaml(tmp_path, good), "--out", str(tmp_path / "f")])
    assert "Did you mean 'holdout'" in _one_line_error(capsys, ["run", _yaml(tmp_path, good.replace(f"{folder}}}", f"{folder}, holdot: 1}}"))])
    assert "sigma must be in" in _one_line_error(capsys, ["run", _yaml(tmp_path, good + "settings: [blur:sigma=0]\n")])
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert "not writable" in _one_line_error(capsys, ["run", _yaml(tmp_path, good), "--out", str(ro / "x")])
    from pdbench.generators.stargan import StarGANNet

    ckpt = tmp_path / "wrong.ckpt"
    torch.save(StarGANNet(8, 7, 2).state_dict(), ckpt)  # 7 attributes: another architecture
    wrong = good.replace("[stargan]", f"[{{name: stargan, checkpoint: {ckpt}}}]")
    err = _one_line_error(capsys, ["run", _yaml(tmp_path, wrong), "--out", str(tmp_path / "w")])
    assert "does not fit this architecture" in err and "main.0.weight [8, 10, 7, 7] vs [8, 8, 7, 7]" in err


def test_progress_names_the_cell_and_the_terminal_table_is_compact(celeba_dir, tmp_path, capsys):
    folder = _photos(celeba_dir, tmp_path / "p", 1)
    cfg = (f"name: tiny\ndataset: {{path: {folder}}}\ngenerators: [stargan]\ndefenses: [none, fgsm]\n"
           f"metrics: [mse, dsr_mse, l2_mask, psnr_adv, ssim_adv, ssim_out, linf_adv]\nout: {tmp_path / 'o'}\n")
    assert main(["run", _yaml(tmp_path, cfg)]) == 0
    captured = capsys.readouterr()
    assert "stargan fgsm b0/1" in captured.err
    table = captured.out.split("\n\n")[0].splitlines()
    assert table[0].split() == ["defense", "setting", "mse", "dsr_mse", "l2_mask", "psnr_adv", "linf_adv", "s/img"]
    assert max(len(line) for line in table) < 100
    assert "ssim_out" in (tmp_path / "o" / "summary.md").read_text()  # the full table stays in the files


def test_per_step_progress_reaches_the_bar_when_the_defense_reports_it(celeba_dir, tmp_path, monkeypatch):
    """A defense whose protect takes ``progress`` gets a callback; one without it is called as before."""
    import pdbench.bench.runner as R
    from pdbench.defenses.none import NoDefense

    class Stepping(NoDefense):
        def protect(self, x, target, keys=None, progress=None):
            for s in (1, 2):
                progress(s, 2)
            return x.clone()

    folder = _photos(celeba_dir, tmp_path / "p", 1)
    cfg = _small(folder, tmp_path / "out", defenses=["none"])
    (cell,) = make_plan(cfg, torch.device("cpu"), Path(cfg.out)).cells
    monkeypatch.setattr(R, "get_defense", lambda name, **kw: Stepping())
    seen = []
    compute_cell(cell, progress=seen.append)
    assert seen[:2] == ["step 1/2", "step 2/2"] and "none" in seen
    class Plain(NoDefense):  # an older-style defense: protect without a progress keyword
        def protect(self, x, target, keys=None):
            return x.clone()

    monkeypatch.setattr(R, "get_defense", lambda name, **kw: Plain())
    (cell,) = make_plan(_small(folder, tmp_path / "out2", defenses=["none"]), torch.device("cpu"), tmp_path / "out2").cells
    seen.clear()
    compute_cell(cell, progress=seen.append)
    assert seen == ["none"]
