"""ROB per probe set, TE, AvgRank and sweep curves as PDB's code computes them, on hand-made summaries,
and a tiny real run with ``settings: [pdb-code]``."""

import csv
import json

import pytest
import yaml

from pdbench.report.markdown import summary_table
from pdbench.report.pdb import pdb_aggregates, sweep_curves, te_aggregates


def _cell(d, s, **m):
    return {"generator": "g", "defense": d, "setting": s, **m}


def _rob_summary():
    return [
        _cell("none", "none", mse=0.0, lpips=0.0, cidr=0.0, brisque=20.0),
        _cell("none", "pdb-code/jpeg70", mse=0.01, lpips=0.01, cidr=0.0, brisque=22.0),
        _cell("a", "none", mse=0.4, lpips=0.2, cidr=0.5, brisque=40.0),
        _cell("a", "pdb-code/blur1", mse=0.4, lpips=0.2, cidr=0.5, brisque=40.0),      # 1, 1, 1, 1 -> 1
        _cell("a", "pdb-code/jpeg70", mse=0.2, lpips=0.3, cidr=0.25, brisque=20.0),    # .5, 1 (1.5), .5, .5 -> .625
        _cell("a", "pdb-code/noise001", mse=0.1, lpips=None, cidr=0.5, brisque=50.0),  # .25, 0 (missing), 1, 1 -> .5625
        _cell("a", "pdb-paper/jpeg_q75", mse=0.04, lpips=0.1, cidr=0.0, brisque=10.0),  # .1, .5, 0, .25 -> .2125
        _cell("a", "pdb-paper/resize_x0.5", mse=0.8, lpips=0.2, cidr=0.1, brisque=30.0),  # 1, 1, .2, .75 -> .7375
        _cell("a", "jpeg(quality=50)", mse=0.2, lpips=0.1, cidr=0.5, brisque=40.0),    # .5, .5, 1, 1 -> .75
        _cell("b", "none", mse=0.1, lpips=0.4, cidr=0.0, brisque=40.0),  # identity baseline 0: 3-axis ROB
        _cell("b", "pdb-code/jpeg70", mse=0.05, lpips=0.2, cidr=0.3, brisque=60.0),  # .5, .5, (dropped), 1 -> 2/3
        _cell("c", "none", mse=0.4, lpips=0.1, cidr=0.2, brisque=30.0),
    ]


def test_rob_per_probe_set_by_hand():
    agg = pdb_aggregates(_rob_summary())
    assert agg["axes"] == ["mse", "lpips", "cidr", "brisque"]
    assert agg["rob_sets"]["pdb-code"]["probes"] == ["blur1", "jpeg70", "noise001"]  # the probes that were run
    assert agg["rob_sets"]["pdb-paper"]["probes"] == ["jpeg_q75", "resize_x0.5"]
    rows = {r["defense"]: r for r in agg["rows"]}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"]["rob"]["pdb-code"] == pytest.approx((1 + 0.625 + 0.5625) / 3)
    assert rows["a"]["rob"]["pdb-paper"] == pytest.approx((0.2125 + 0.7375) / 2)
    assert rows["a"]["r_rob"] == pytest.approx(0.75) and rows["a"]["settings"] == ["jpeg(quality=50)"]
    assert rows["b"]["rob"]["pdb-code"] == pytest.approx(2 / 3)
    assert rows["b"]["rob"]["pdb-paper"] is None and rows["b"]["r_rob"] is None
    assert rows["c"]["rob"] == {"pdb-code": None, "pdb-paper": None}
    md = summary_table({"name": "t", "summary": _rob_summary(), "aggregates": agg}, ["mse", "lpips", "cidr", "brisque"])
    assert "| generator | defense | MSE ↑ | LPIPS ↑ | CIDR ↑ | BRISQUE ↑ | AvgRank ↓ | R_ROB ↑ | ROB pdb-code ↑ | ROB pdb-paper ↑ |" in md
    assert "| g | a | 0.4000 | 0.2000 | 0.5000 | 40.00 | 1.50 | 0.750 | 0.729 | 0.475 |" in md  # PDB's table: axes first
    assert "ROB pdb-code over: blur1, jpeg70, noise001" in md


def test_avgrank_four_axes_ties_and_missing_axes():
    summary = _rob_summary()
    rows = {r["defense"]: r for r in pdb_aggregates(summary)["rows"]}
    # mse a=c=.4 tie (1.5, 1.5), b 3; lpips b 1, a 2, c 3; cidr a 1, c 2, b 3; brisque a=b=40 tie (1.5), c 3
    assert rows["a"]["avg_rank"] == pytest.approx((1.5 + 2 + 1 + 1.5) / 4)
    assert rows["b"]["avg_rank"] == pytest.approx((3 + 1 + 3 + 1.5) / 4)
    assert rows["c"]["avg_rank"] == pytest.approx((1.5 + 3 + 2 + 3) / 4)
    assert rows["a"]["rank_axes"] == ["mse", "lpips", "cidr", "brisque"]
    # no LPIPS measured: three axes, and the result says so; c without a CIDR value is ranked on the other two
    three = [{k: v for k, v in e.items() if k != "lpips"} for e in summary]
    three[-1]["cidr"] = None
    agg = pdb_aggregates(three)
    assert agg["axes"] == ["mse", "cidr", "brisque"]
    rows = {r["defense"]: r for r in agg["rows"]}
    assert rows["a"]["avg_rank"] == pytest.approx((1.5 + 1 + 1.5) / 3)
    assert rows["b"]["avg_rank"] == pytest.approx((3 + 2 + 1.5) / 3)
    assert rows["c"]["avg_rank"] == pytest.approx((1.5 + 3) / 2) and rows["c"]["rank_axes"] == ["mse", "brisque"]
    assert "axes: mse, cidr, brisque" in summary_table({"name": "t", "summary": three, "aggregates": agg}, ["mse"])


def _pair(d, s, t, **m):
    return {"defense": d, "source": s, "target": t, **m}


def test_te_by_hand():
    entries = [
        _pair("pgd", "S1", "S1", mse=0.4, lpips=0.2, cidr=0.5, brisque=40.0),
        _pair("pgd", "S2", "S2", mse=0.2, lpips=0.4, cidr=0.0, brisque=20.0),  # WB identity 0: dropped
        _pair("pgd", "S3", "S3", mse=0.1, lpips=None, cidr=0.3, brisque=20.0),  # incomplete WB: target skipped
        _pair("pgd", "S1", "S2", mse=0.1, lpips=0.1, cidr=0.2, brisque=30.0),   # .5, .25, (dropped), 1 -> .58333
        _pair("pgd", "S1", "S3", mse=0.1, lpips=0.1, cidr=0.3, brisque=30.0),   # no WB: only raw CIDR
        _pair("pgd", "S2", "S1", mse=0.2, lpips=0.3, cidr=0.1, brisque=10.0),   # .5, 1 (1.5), .2, .25 -> .4875
        _pair("fgsm", "S1", "S1", mse=0.0, lpips=0.2, cidr=0.5, brisque=40.0),  # WB mse 0: that term counts 0
        _pair("fgsm", "S2", "S1", mse=0.1, lpips=0.1, cidr=0.5, brisque=40.0),  # 0, .5, 1, 1 -> .625
        _pair("fgsm", "S3", "S1", mse=None, lpips=0.1, cidr=0.4, brisque=40.0),  # quality value missing: skipped
        _pair("none", "S2", "S1", mse=0.0, lpips=0.0, cidr=0.0, brisque=20.0),
    ]
    te = te_aggregates(entries)
    assert te["axes"] == ["mse", "lpips", "cidr", "brisque"]
    rows = {(r["defense"], r["source"]): r for r in te["rows"]}
    assert set(rows) == {("pgd", "S1"), ("pgd", "S2"), ("fgsm", "S2"), ("fgsm", "S3")}
    assert rows[("pgd", "S1")]["te"] == pytest.approx((0.5 + 0.25 + 1) / 3) and rows[("pgd", "S1")]["targets"] == ["S2"]
    assert rows[("pgd", "S1")]["cidr"] == pytest.approx(0.25) and rows[("pgd", "S1")]["n_targets_cidr"] == 2
    assert rows[("pgd", "S2")]["te"] == pytest.approx((0.5 + 1 + 0.2 + 0.25) / 4)
    assert rows[("fgsm", "S2")]["te"] == pytest.approx(0.625)
    assert rows[("fgsm", "S3")]["te"] is None and rows[("fgsm", "S3")]["cidr"] == pytest.approx(0.4)
    # without the identity axis: three quality ratios
    no_id = te_aggregates([{k: v for k, v in e.items() if k != "cidr"} for e in entries])
    rows = {(r["defense"], r["source"]): r for r in no_id["rows"]}
    assert rows[("pgd", "S2")]["te"] == pytest.approx((0.5 + 1 + 0.25) / 3) and rows[("pgd", "S2")]["cidr"] is None


def test_sweep_curves_as_data():
    summary = [
        _cell("none", "none", mse=0.0, cidr=0.0), _cell("none", "sweep-jpeg/jpeg_q90", mse=0.01, cidr=0.0),
        _cell("none", "sweep-jpeg/jpeg_q50", mse=0.05, cidr=0.0),
        _cell("a", "none", mse=0.4, cidr=0.5), _cell("a", "sweep-jpeg/jpeg_q90", mse=0.4, cidr=0.5),  # 1
        _cell("a", "sweep-jpeg/jpeg_q50", mse=0.2, cidr=0.1),  # .5, .2 -> .35
    ]
    curves = {c["defense"]: c for c in sweep_curves(summary)}
    a = curves["a"]
    assert (a["sweep"], a["param"], a["baseline"]) == ("sweep-jpeg", "quality", {"mse": 0.4, "cidr": 0.5})
    assert [(p["probe"], p["severity"], p["mse"]) for p in a["points"]] == [("jpeg_q90", 90, 0.4), ("jpeg_q50", 50, 0.2)]
    assert [p["retention"] for p in a["points"]] == pytest.approx([1.0, 0.35])
    assert [p["mse"] for p in curves["none"]["points"]] == [0.01, 0.05]
    assert all(p["retention"] is None for p in curves["none"]["points"])
    agg = pdb_aggregates(summary)
    assert agg["rob_sets"] == {} and agg["sweeps"] == sweep_curves(summary)
    md = summary_table({"name": "t", "summary": summary, "aggregates": agg}, ["mse", "cidr"])
    assert "| a | 0.4000 | 0.4000 (1.00) | 0.2000 (0.35) |" in md
    assert "| none | 0.0000 | 0.0100 | 0.0500 |" in md


def test_tiny_run_reports_rob_under_pdb_code(celeba_dir, tmp_path, capsys):
    from pdbench.cli import main
    from pdbench.report.pdb import retention

    cfg = {
        "name": "rob", "dataset": {"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                                   "holdout": 1000, "split": "test", "n": 2, "seed": 0},
        "generators": ["stargan"], "defenses": ["none", {"name": "pgd", "steps": 2}], "settings": ["pdb-code"],
        "metrics": ["mse", "cidr", "brisque"], "batch_size": 2, "device": "cpu", "out": str(tmp_path / "out"),
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "c.yaml"), "--no-progress"]) == 0
    meta = json.loads((tmp_path / "out" / "results.json").read_text())
    assert meta["config"]["settings"] == ["pdb-code"]
    cells = {(e["defense"], e["setting"]): e for e in meta["summary"]}
    labels = ["pdb-code/" + p for p in ("blur1", "blur3", "jpeg70", "jpeg90", "noise001", "noise003",
                                        "salt_pepper001", "salt_pepper003")]
    assert {s for _, s in cells} == {"none", *labels}
    base = cells[("pgd(steps=2)", "none")]
    assert base["mse"] > 0.01  # PGD disrupts
    assert cells[("pgd(steps=2)", "pdb-code/blur1")] == {**base, "setting": "pdb-code/blur1"}  # kernel 1: identity
    agg = meta["aggregates"]
    assert agg["axes"] == ["mse", "cidr", "brisque"]
    (row,) = [r for r in agg["rows"] if r["defense"] == "pgd(steps=2)"]
    by_hand = sum(retention(cells[("pgd(steps=2)", s)], base, ["mse", "cidr", "brisque"]) for s in labels) / 8
    assert row["rob"]["pdb-code"] == pytest.approx(by_hand) and 0 < by_hand <= 1
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "ROB pdb-code ↑" in md and "ROB pdb-code over: blur1, blur3, jpeg70" in md and "R_ROB" not in md
    axes = " | ".join(f"{base[a]:.2f}" if abs(base[a]) >= 10 else f"{base[a]:.4f}" for a in agg["axes"])
    assert f"| stargan | pgd(steps=2) | {axes} | 1.00 | {row['rob']['pdb-code']:.3f} |" in md  # PDB's table
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert {r["setting"] for r in rows} == {"none", *labels}
    print(md)
