"""A run on pdbench's experimental generator weights says so: the run warns, results.json records the flag
per generator and summary.md marks the rows as not fit for reporting (one test for every such editor; PGD's
two steps also drive a gradient through each one, HiSD's seeded noise included)."""

import csv
import json

import pytest

from pdbench.bench import BenchConfig, run
from pdbench.generators import GENERATORS

EXPERIMENTAL_EDITORS = ["attentiongan", "fpgan", "relgan", "hisd"]


def test_the_list_is_every_experimental_attribute_editor():
    found = sorted(n for n in GENERATORS.names() if getattr(GENERATORS.get(n), "experimental", None)
                   and getattr(GENERATORS.get(n), "kind", "attribute") == "attribute")
    assert found == sorted(EXPERIMENTAL_EDITORS)


@pytest.mark.parametrize("name", EXPERIMENTAL_EDITORS)
def test_a_run_on_experimental_weights_says_so(name, celeba_dir, tmp_path, capsys):
    cfg = BenchConfig.from_dict({
        "dataset": {"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                    "holdout": 1000, "split": "test", "n": 2, "seed": 0},
        "generators": [name], "defenses": ["none", {"name": "pgd", "steps": 2}], "metrics": ["mse"],
        "out": str(tmp_path / "run")})
    run(cfg, progress=False)
    assert "experimental weights" in capsys.readouterr().err
    meta = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "iterations" in meta["generators"][name]["experimental"]
    assert "not fit for reporting" in (tmp_path / "run" / "summary.md").read_text()
    with open(tmp_path / "run" / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == "mse" and r["setting"] == "none"]
    by = {d: [float(r["value"]) for r in rows if r["defense"].split("(")[0] == d] for d in ("none", "pgd")}
    assert by["none"] and max(by["none"]) < 1e-6  # the clean photo's edit is the reference itself
    assert by["pgd"] and min(by["pgd"]) > 1e-4, by["pgd"]  # two PGD steps through the generator move every output
