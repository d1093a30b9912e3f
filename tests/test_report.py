"""PDB aggregates (R_ROB, AvgRank) computed by hand on a small summary."""

import pytest

from pdbench.report.markdown import summary_table
from pdbench.report.pdb import pdb_aggregates


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
    md = summary_table({"name": "t", "summary": summary, "aggregates": agg}, ["mse", "cidr"])
    assert "| g | a | 0.4000 | 0.2000 | 1.50 | 0.625 |" in md  # PDB's table: the unprocessed axes, AvgRank, R_ROB
