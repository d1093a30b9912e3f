"""PDB aggregates (R_ROB, AvgRank) computed by hand on a small summary."""

import pytest

from pdbench.report import findings as F
from pdbench.report.markdown import summary_table
from pdbench.report.pdb import pdb_aggregates, tied_ranks


def _cell(d, s, mse, cidr):
    return {"generator": "g", "defense": d, "setting": s, "mse": mse, "cidr": cidr}


def test_rob_and_avgrank_by_hand():
    summary = [
        _cell("none", "none", 0.0, 0.0), _cell("none", "jpeg", 0.01, 0.0),
        _cell("a", "none", 0.4, 0.2), _cell("a", "jpeg", 0.1, 0.3),   # ratios 0.25, 1.5 -> clipped 1.0
        _cell("b", "none", 0.2, 0.4), _cell("b", "jpeg", 0.2, 0.1),   # ratios 1.0, 0.25
        _cell("c", "none", 0.1, 0.1), _cell("c", "jpeg", 0.0, 0.0),   # ratios 0, 0
    ]
    agg = pdb_aggregates(summary)
    assert agg["axes"] == ["mse", "cidr"]
    rows = {r["defense"]: r for r in agg["rows"]}
    assert set(rows) == {"a", "b", "c"}  # the no-defense baseline is not ranked
    assert rows["a"]["r_rob"] == pytest.approx(0.625) and rows["b"]["r_rob"] == pytest.approx(0.625)
    assert rows["c"]["r_rob"] == 0.0
    assert rows["a"]["avg_rank"] == 1.5 and rows["b"]["avg_rank"] == 1.5 and rows["c"]["avg_rank"] == 3.0
    # the per-axis ranks behind AvgRank: 1 = highest, ties share the mean of their places
    assert tied_ranks({"a": 0.4, "b": 0.2, "c": 0.1}) == {"a": 1, "b": 2, "c": 3}  # MSE
    assert tied_ranks({"a": 0.2, "b": 0.4, "c": 0.1}) == {"b": 1, "a": 2, "c": 3}  # CIDR -> a, b: (1 + 2) / 2
    assert tied_ranks({"x": 1.0, "y": 5.0, "z": 1.0, "w": 1.0}) == {"y": 1, "x": 3, "z": 3, "w": 3}
    md = summary_table({"name": "t", "summary": summary, "aggregates": agg}, ["mse", "cidr"])
    assert "| g | a | 0.4000 | 0.2000 | 1.50 | 0.625 |" in md  # PDB's table: the unprocessed axes, AvgRank, R_ROB


def test_ranking_per_generator_and_tau_matrix_by_hand():
    """summary.md's ranking table (one column per generator) and the Kendall τ-b matrix, for three generators."""
    mse = {"g1": {"a": 0.4, "b": 0.2, "c": 0.1, "d": 0.05},  # AvgRank a 1, b 2, c 3, d 4
           "g2": {"a": 0.1, "b": 0.2, "c": 0.4},             # a 3, b 2, c 1: g1's order reversed
           "g3": {"a": 0.3, "b": 0.2, "c": 0.2}}             # a 1, b and c tie at 2.5
    summary = [{"generator": g, "defense": d, "setting": "none", "mse": v}
               for g, vals in mse.items() for d, v in {"none": 0.0, **vals}.items()]
    meta = {"name": "t", "summary": summary, "aggregates": pdb_aggregates(summary),
            "generators": {g: {"n_images": 1, "resolution": 64, "conditions": ["e"]} for g in mse}}
    meta["generators"]["g3"]["experimental"] = "trained 300 iterations"
    md = summary_table(meta, ["mse"])
    assert "| defense | g1 | g2 | g3 (experimental) | mean place |" in md
    rows = [line for line in md.splitlines() if line.startswith(("| a |", "| b |", "| c |", "| d |"))]
    assert rows == ["| a | 1 (1.00) | 3 (3.00) | 1 (1.00) | 1.67 |",       # rows by mean place
                    "| b | 2 (2.00) | 2 (2.00) | 2.5 (2.50) | 2.17 |",   # a tie shares the mean of its places
                    "| c | 3 (3.00) | 1 (1.00) | 2.5 (2.50) | 2.17 |",
                    "| d | 4 (4.00) | – | – | 4.00 |"]                   # ranked by g1 only
    # τ-b over the common defenses a, b, c: g1 vs g2 all 3 pairs discordant -> -1; g1 vs g3: 2 concordant,
    # 1 tie in g3 -> 2 / sqrt(3 * 2); g2 vs g3: 2 discordant, 1 tie -> -2 / sqrt(6)
    t = 2 / 6 ** 0.5
    assert "| g1 | 1 | -1.00 | 0.82 |" in md and "| g2 | -1.00 | 1 | -0.82 |" in md and "| g3 | 0.82 | -0.82 | 1 |" in md
    assert F.kendall_tau([1, 2, 3], [1, 2.5, 2.5]) == pytest.approx(t)
    assert f"Mean τ over 3 pair(s) of generators: {(-1 + t - t) / 3:.2f}; lowest -1.00 (g1 vs g2)." in md
    assert "Experimental weights (marked)" in md
    one = [e for e in summary if e["generator"] == "g1"]  # one generator: PDB's table alone
    assert "Defense ranking per generator" not in summary_table({"summary": one, "aggregates": pdb_aggregates(one)}, ["mse"])
