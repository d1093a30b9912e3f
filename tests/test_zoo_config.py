"""configs/zoo.yaml runs every defense pdbench has against every generator whose weights are real."""

from pathlib import Path

import pytest
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


def check_zoo_generators(entries: list[dict], comment: str) -> None:
    """Every zoo entry is real: an editor whose weights are not experimental (all its edits), or ``{name, edits}``
    with edits among the class's ``judged_edits`` (judged real, docs/results/attribute-judge.json). Every real
    editor is in the zoo; an experimental one with judged edits is in it that way or named as left out in the
    comment, as is every other registered generator."""
    names = [g["name"] for g in entries]
    assert len(names) == len(set(names)), "one zoo entry per generator"
    for g in entries:
        cls = GENERATORS.get(g["name"])
        assert g["name"] not in NOT_EDITORS, g
        if "edits" in g:
            assert cls.judged_edits and set(g["edits"]) <= set(cls.judged_edits), \
                f"{g['name']}: edits {g['edits']} must be among its judged edits {cls.judged_edits}"
        else:
            assert not getattr(cls, "experimental", None), f"{g['name']}: experimental weights need edits: {list(cls.judged_edits)}"
    editors = [n for n in GENERATORS.names() if n not in NOT_EDITORS]
    real = [n for n in editors if not getattr(GENERATORS.get(n), "experimental", None)]
    assert set(real) <= set(names), "configs/zoo.yaml must list every generator with real weights"
    for g in set(GENERATORS.names()) - set(names):
        assert g in comment, g  # named as left out, with the reason


def test_the_zoo_rule_takes_judged_edits_of_experimental_weights():
    """An experimental generator enters the zoo only with judged-real edits (what the zoo may recommend)."""
    ok = [{"name": "stargan"}, {"name": "attgan"}, {"name": "fpgan", "edits": ["to_Black_Hair"], "label": "fpgan-black-hair"}]
    check_zoo_generators(ok, "Left out: hisd attentiongan relgan aeswap simswap")
    for bad in ([*ok[:2], {"name": "fpgan"}], [*ok[:2], {"name": "fpgan", "edits": ["to_Blond_Hair"]}],
                [*ok[:2], {"name": "relgan", "edits": ["to_Black_Hair"]}], ok[1:]):
        with pytest.raises(AssertionError):
            check_zoo_generators(bad, "Left out: hisd attentiongan relgan aeswap simswap fpgan")


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
    check_zoo_generators(cfg.generators, text.split("name: zoo")[0])
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
