"""Property test: generated config mutations fed to ``pdbench run`` give a one-line error or a correct
result, never a traceback, a stale result or an uncounted NaN.

Mutations: unknown keys at every level, wrong types, out-of-range and non-finite numbers, typos in
method names and parameter names, broken YAML. Validation happens before any model work, so most
mutations fail in milliseconds; the ones that run use one or two photos.
"""

import copy
import csv
import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from pdbench.bench import BenchConfig  # noqa: E402
from pdbench.cli import main  # noqa: E402

BASE = {
    "name": "fuzz",
    "dataset": {"path": "PHOTOS", "n": 1, "seed": 0},
    "generators": ["stargan"],
    "defenses": [{"name": "none", "eps": 0.05}],
    "settings": [{"name": "blur", "sigma": 1.0}, {"name": "jpeg", "quality": 75}],
    "metrics": ["mse", "dsr_mse", "psnr_adv"],
    "batch_size": 2,
    "seed": 0,
}
# where a mutation can land: (path to a mapping, its key)
SLOTS = [((), "name"), ((), "batch_size"), ((), "seed"), ((), "device"), ((), "defenses"), ((), "settings"),
         ((), "metrics"), ((), "generators"), (("dataset",), "n"), (("dataset",), "seed"), (("dataset",), "path"),
         (("dataset",), "holdout"), (("dataset",), "split"), (("defenses", 0), "eps"), (("defenses", 0), "name"),
         (("settings", 0), "sigma"), (("settings", 1), "quality"), (("settings", 0), "name")]
VALID = {(("dataset",), "n"): [1, 2, 50], (("dataset",), "holdout"): [1], ((), "batch_size"): [1, 3], ((), "seed"): [0, 7], (("settings", 0), "sigma"): [0.5, 2],
         (("settings", 1), "quality"): [1, 100], (("defenses", 0), "eps"): [0.01, 2], (("dataset",), "seed"): [3]}
MAPPINGS = [(), ("dataset",), ("defenses", 0), ("settings", 0), ("settings", 1)]
NAMED_LISTS = ["generators", "defenses", "settings", "metrics"]

values = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=8), st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
    st.sampled_from([0, -1, 1, 2, 75, 101, 0.0, 1e9, float("nan"), float("inf"), "cpu", "cuda", "foo", "test", "train"]),
)
key_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)


def _typo(word: str, i: int, ch: str) -> str:
    i %= len(word) + 1
    return word[:i] + ch + word[i + 1:] if i < len(word) else word + ch


@st.composite
def mutated(draw):
    d = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["unknown_key", "value", "name_typo", "param_typo", "yaml", "nan", "valid"]))
    if kind == "valid":  # an in-range change: must run and give this config's results
        path, key = draw(st.sampled_from(list(VALID)))
        _at(d, path)[key] = draw(st.sampled_from(VALID[(path, key)]))
    elif kind == "unknown_key":
        node = _at(d, draw(st.sampled_from(MAPPINGS)))
        node[draw(key_names)] = draw(values)
    elif kind in ("value", "nan"):
        path, key = draw(st.sampled_from(SLOTS))
        _at(d, path)[key] = float("nan") if kind == "nan" else draw(values)
    elif kind == "name_typo":
        lst = d[draw(st.sampled_from(NAMED_LISTS))]
        i = draw(st.integers(0, len(lst) - 1))
        name = lst[i] if isinstance(lst[i], str) else lst[i]["name"]
        new = _typo(name, draw(st.integers(0, 10)), draw(st.sampled_from("aeiouxz_-")))
        lst[i] = new if isinstance(lst[i], str) else {**lst[i], "name": new}
    elif kind == "param_typo":
        node = _at(d, draw(st.sampled_from([("defenses", 0), ("settings", 0), ("settings", 1), ("dataset",)])))
        old = draw(st.sampled_from(sorted(k for k in node if k != "name")))
        node[_typo(old, draw(st.integers(0, 10)), draw(st.sampled_from("sxz_")))] = node.pop(old)
    text = yaml.safe_dump(d, sort_keys=False)
    if kind == "yaml":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(["[", "{", ": :", "\t", "]", "'", "- ", "&x *y", "%"])) + text[i:]
    return kind, text


def _at(d, path):
    for p in path:
        d = d[p]
    return d


@pytest.fixture(scope="module")
def photos(celeba_dir):
    tmp = Path(tempfile.mkdtemp(prefix="pdbench-fuzz-"))
    folder = tmp / "photos"
    folder.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:2]:
        shutil.copy(p, folder / p.name)
    yield folder
    shutil.rmtree(tmp)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                        HealthCheck.too_slow])
@given(case=mutated())
def test_mutated_configs_fail_in_one_line_or_run_correctly(case, photos, tmp_path_factory, capsys):
    kind, text = case
    text = text.replace("PHOTOS", str(photos))
    work = tmp_path_factory.mktemp("case")
    cfg_path = work / "c.yaml"
    cfg_path.write_text(text)
    out = work / "out"
    capsys.readouterr()
    rc = main(["run", str(cfg_path), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    hypothesis.event(f"{kind}: {'error' if rc == 2 else 'ran'}")
    if rc == 2:
        assert err.startswith("pdbench: error: ") and err.count("\n") == 1, err
        assert not (out / "results.csv").exists()
        return
    assert rc == 0, (rc, err)
    cfg = BenchConfig.from_dict(yaml.safe_load(text))  # what ran was a valid config
    rows = list(csv.DictReader(open(out / "results.csv")))
    meta = json.loads((out / "results.json").read_text())
    assert meta["config_key"] == cfg.content_key()  # the results are this config's, not a stale run's
    n = len(list(photos.iterdir())) if cfg.dataset.get("n") is None else min(cfg.dataset["n"], 2)
    from pdbench.registry import spec_label
    from pdbench.transforms import expand_settings

    labels = {t.label() for t in expand_settings(cfg.settings)}
    assert {r["setting"] for r in rows} == labels
    assert {r["defense"] for r in rows} == {spec_label(d) for d in cfg.defenses}
    assert len([r for r in rows if r["metric"] != "protect_seconds_per_image"]) == n * len(labels) * len(cfg.defenses) * len(cfg.metrics)
    for e in meta["summary"]:
        for m in cfg.metrics:
            v = e[m]
            assert (v is not None and math.isfinite(v)) or m in e.get("undefined", {}), (e, m)
