"""docs/extending.md runs: every ``python`` block is executed in order in one namespace, so the
"generator in one file" and "defense in one file" examples cannot rot."""

import re
from pathlib import Path

import pytest

from pdbench.defenses import DEFENSES
from pdbench.generators import GENERATORS, PREPROCESSING

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def test_doc_has_both_recipes():
    text = DOC.read_text()
    assert "## Add a generator in one file" in text and "## Add a defense in one file" in text
    assert len(blocks()) == 4


def test_doc_examples_run(celeba_dir, monkeypatch):
    for reg in (GENERATORS, PREPROCESSING, DEFENSES):  # the examples register names: undo that afterwards
        reg.discover()
        monkeypatch.setattr(reg, "_items", dict(reg._items))
    ns: dict = {"__name__": "docs_extending"}
    for i, code in enumerate(blocks()):
        exec(compile(code, f"{DOC}:block{i + 1}", "exec"), ns)
    assert "tint" in GENERATORS and "feature-pgd" in DEFENSES
    # what the doc promises beyond its own asserts: the new generator fails clearly without the hook
    from pdbench.generators import Target, Unsupported

    with pytest.raises(Unsupported, match=r"tint: has no features\(\) hook"):
        ns["get_defense"]("feature-pgd", steps=1).protect(ns["x"], Target.of(ns["G"], None, ns["x"].shape[0]))
    assert ns["disruption"] > 1e-4, float(ns["disruption"])
