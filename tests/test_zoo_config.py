"""configs/zoo.yaml runs every defense pdbench has against every generator whose weights are real."""

from pathlib import Path

import yaml

from pdbench.bench.config import load_config
from pdbench.defenses import DEFENSES
from pdbench.generators import GENERATORS
from pdbench.report.pdb import AXES

ZOO = Path(__file__).resolve().parents[1] / "configs" / "zoo.yaml"
# one entry per method: the variants the config leaves out, each named (and why) in its comment
VARIANTS = {"antiforgery": "antiforgery-paper", "dfrap": "dfrap-kornia", "leat-pdb": "leat", "grasp-noproj": "grasp",
            "tsdf-paper": "tsdf"}
NOT_EDITORS = {"aeswap", "simswap"}  # face swappers


def test_zoo_config_covers_every_defense_and_every_real_generator():
    cfg = load_config(ZOO)  # validates every level
    names = [d["name"] for d in cfg.defenses]
    assert len(names) == len(set(names))  # one entry per method
    aliases = {n for n in DEFENSES.names() if DEFENSES.get(n).info().get("alias_of")}
    assert not aliases & set(names)
    missing = set(DEFENSES.names()) - aliases - set(VARIANTS) - set(names)
    assert not missing, f"defenses neither in configs/zoo.yaml nor named as left out: {sorted(missing)}"
    assert all(v in names for v in VARIANTS.values())
    text = ZOO.read_text()
    for left_out in [*VARIANTS, *aliases]:
        assert left_out in text.split("name: zoo")[0], left_out  # the comment says why
    gens = [g["name"] for g in cfg.generators]
    real = [n for n in GENERATORS.names() if n not in NOT_EDITORS and not getattr(GENERATORS.get(n), "experimental", None)]
    assert sorted(gens) == sorted(real), "configs/zoo.yaml must list exactly the generators with real weights"
    for g in set(GENERATORS.names()) - set(gens):
        assert g in text.split("name: zoo")[0], g  # named as left out, with the reason
    # the universal defenses train against the whole zoo: the generators list itself (one YAML anchor)
    raw = yaml.safe_load(text)
    for d in raw["defenses"]:
        if isinstance(d, dict) and "surrogates" in d:
            assert d["surrogates"] == raw["generators"] and d["label"].endswith("-cross")
    assert {d["name"] for d in raw["defenses"] if isinstance(d, dict) and "surrogates" in d} == {"cmua", "found", "tsdf"}
    # PDB's AvgRank: the four axes, white box and unprocessed
    assert set(AXES) <= set(cfg.metrics) and "dsr_mse" in cfg.metrics
    assert [str(s) for s in cfg.settings] == ["none"]
    assert cfg.dataset["split"] == "test" and cfg.dataset["holdout"] == 1000 and cfg.dataset["n"] >= 8
