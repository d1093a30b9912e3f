"""The benchmark config schema: every level is checked before any work, each problem is one line.

Top-level keys, the ``dataset`` section and every method entry (generator, defense, setting, metric)
are checked for unknown keys (with "did you mean"), types and ranges. A method's parameters are
checked against the registered class's signature (``__init__``, or ``from_assets`` for generators),
so a typo such as ``stepz`` is refused in one line instead of surfacing as a ``TypeError`` mid-run.
Non-finite numbers (NaN, ±Inf) are refused anywhere in a config. The ``transfer`` block names
configured generators only (:func:`check_transfer`).
"""

from __future__ import annotations

import difflib
import inspect
import math
from typing import Any

from ..errors import InputError

# key -> (kind, description) for the fixed sections
TOP_KEYS = {
    "name": "a string", "dataset": "a mapping", "generators": "a list", "defenses": "a list",
    "settings": "a list", "metrics": "a list", "batch_size": "an integer >= 1", "device": "a string",
    "out": "a string", "seed": "an integer >= 0",
    "transfer": "a mapping {from: [generators], to: [generators]}",
    "executor": "local, ray or {name: ray, address: ..., cpus_per_cell: ..., gpus_per_cell: ...}",
    "publish": "model-input (PDB's protocol, the default) or native (defenses and settings act on the published photo)",
    "swap": "a mapping {role: source or target, identities: FILE, judges: [mobilefacenet, dlib], seed: N} (face swappers)",
}
PUBLISH_MODES = ("model-input", "native")  # pdbench.publish.MODES, in the config's order (default first)
REQUIRED_TOP = ("dataset", "generators", "defenses", "metrics")
DATASET_KEYS = {
    "asset": "a dataset name from `pdbench assets list`", "path": "a folder of photos",
    "images": "a folder inside the asset", "attrs": "an attribute file", "holdout": "an integer >= 0",
    "split": "'test' or 'train'", "n": "an integer >= 1", "seed": "an integer >= 0", "skip_bad": "true or false",
}
TRANSFER_KEYS = {"from": "the source generators (perturbations are made against each)",
                 "to": "the target generators (each judges every source's perturbations)",
                 "settings": "the settings the targets judge under (default: all; TE needs only none)"}
SWAP_KEYS = {"role": "source (the protected photo gives the identity) or target (it is the face the partner's identity "
                     "goes onto)",
             "identities": "who is who in the dataset: a 'name id' file (CelebA's identity_CelebA.txt), relative to the "
                           "dataset like attrs; default identity_CelebA.txt beside the images or above them",
             "judges": "the identity models that judge the swaps (default both: mobilefacenet, dlib)",
             "seed": "an integer >= 0: which partner each photo gets (default the dataset's seed)"}
SWAP_ROLES = ("source", "target")  # pdbench.generators.base.ROLES
SWAP_JUDGES = ("mobilefacenet", "dlib")  # pdbench.metrics.swap.JUDGES
# parameters the runner sets itself (not the user's to give)
RUNNER_SET = {"generator": {"device"}, "defense": set(), "setting": set(), "metric": set()}


def did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _unknown(where: str, keys, known) -> None:
    for k in keys:
        if k not in known:
            raise InputError(f"config: unknown key {k!r} in {where}; known: {', '.join(sorted(known))}.{did_you_mean(k, known)}")


def check_finite(value: Any, where: str) -> None:
    """Refuse NaN/±Inf anywhere inside ``value`` (nested mappings and lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"config: {where} is {value}; use a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


SEED_MAX = 2**31 - 1  # seeds are combined with image keys into torch's 64-bit generator seeds
INT_MAX = 2**53


def _int(where: str, v, lo: int | None = None, hi: int = INT_MAX) -> None:
    if not is_int(v):
        raise InputError(f"config: {where} must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise InputError(f"config: {where} must be >= {lo}, got {v}")
    if v > hi:
        raise InputError(f"config: {where} must be <= {hi}, got {v}")


def _str(where: str, v) -> None:
    if not isinstance(v, str) or not v:
        raise InputError(f"config: {where} must be a non-empty string, got {v!r}")


def check_top(d: dict) -> None:
    _unknown("the config", d, TOP_KEYS)
    for key in REQUIRED_TOP:
        if key not in d:
            raise InputError(f"config: missing required key {key!r} ({TOP_KEYS[key]})")
    check_finite(d, "config")
    for key in ("name", "device", "out"):
        if key in d:
            _str(key, d[key])
    if "batch_size" in d:
        _int("batch_size", d["batch_size"], 1)
    if "seed" in d:
        _int("seed", d["seed"], 0, SEED_MAX)
    if "executor" in d:
        check_executor(d["executor"])
    if "publish" in d:
        check_publish(d["publish"])
    if not isinstance(d["dataset"], dict):
        raise InputError(f"config: dataset must be a mapping (asset: NAME or path: FOLDER, ...), got {d['dataset']!r}")
    for key in ("generators", "defenses", "metrics", "settings"):
        if key in d and d[key] is not None and not isinstance(d[key], list):
            raise InputError(f"config: {key} must be a list of names or mappings with 'name', got {d[key]!r}")
    for key in ("generators", "defenses", "metrics"):
        if not d[key]:
            raise InputError(f"config: {key} is empty; name at least one (see `pdbench list`)")


def check_publish(v) -> None:
    """``publish: model-input`` (the default) or ``native`` (see :mod:`pdbench.publish`)."""
    if v not in PUBLISH_MODES:
        raise InputError(f"config: publish must be {' or '.join(PUBLISH_MODES)}, got {v!r}."
                         f"{did_you_mean(v, PUBLISH_MODES)}")


EXECUTOR_KEYS = {"name": "local or ray", "address": "a Ray cluster address (host:port, auto, ray://...)",
                 "cpus_per_cell": "a number > 0", "gpus_per_cell": "a number >= 0", "max_retries": "an integer >= 0"}


def check_executor(e) -> None:
    """``executor: local`` / ``ray`` or a mapping with ``name: ray`` and the Ray task options."""
    if isinstance(e, str):
        e = {"name": e}
    if not isinstance(e, dict):
        raise InputError(f"config: executor must be local, ray or a mapping with name: ray, got {e!r}")
    _unknown("executor", e, EXECUTOR_KEYS)
    name = e.get("name", "local")
    if name not in ("local", "ray"):
        raise InputError(f"config: executor must be local or ray, got {name!r}.{did_you_mean(name, ('local', 'ray'))}")
    if name == "local" and len(e) > 1:
        raise InputError(f"config: executor local takes no options (got {', '.join(sorted(set(e) - {'name'}))}); "
                         "they are Ray's: use name: ray")
    if e.get("address") is not None:
        _str("executor.address", e["address"])
    for k, lo in (("cpus_per_cell", 0), ("gpus_per_cell", 0)):
        v = e.get(k)
        if v is not None and (not is_number(v) or v < lo or (k == "cpus_per_cell" and v == 0)):
            raise InputError(f"config: executor.{k} must be {EXECUTOR_KEYS[k]}, got {v!r}")
    if e.get("max_retries") is not None:
        _int("executor.max_retries", e["max_retries"], 0, 100)


def check_dataset(ds: dict) -> None:
    _unknown("dataset", ds, DATASET_KEYS)
    if ("asset" in ds) == ("path" in ds):
        raise InputError("config: dataset needs exactly one of 'path' (a folder of photos) or 'asset' (a dataset name)")
    for key in ("asset", "path", "images", "attrs", "split"):
        if key in ds and ds[key] is not None:
            _str(f"dataset.{key}", ds[key])
    if "images" in ds and "path" in ds:
        raise InputError("config: dataset.images is a folder inside an asset; with 'path' give the folder itself")
    if "asset" in ds:
        from ..assets import ASSETS

        datasets = sorted(n for n, s in ASSETS.items() if s.kind == "dataset")
        if ds["asset"] not in datasets:
            raise InputError(f"config: dataset.asset {ds['asset']!r} is not a dataset asset; known: "
                             f"{', '.join(datasets)}.{did_you_mean(ds['asset'], datasets)}")
    if ds.get("holdout") is not None:
        _int("dataset.holdout", ds["holdout"], 0)
    if ds.get("n") is not None:
        _int("dataset.n", ds["n"], 1)
    if "seed" in ds:
        _int("dataset.seed", ds["seed"], 0, SEED_MAX)
    if ds.get("split", "test") not in ("test", "train"):
        raise InputError(f"config: dataset.split must be 'test' or 'train', got {ds['split']!r}")
    if "split" in ds and not ds.get("holdout"):
        raise InputError("config: dataset.split needs dataset.holdout (how many of the last images are the test split)")
    if "skip_bad" in ds and not isinstance(ds["skip_bad"], bool):
        raise InputError(f"config: dataset.skip_bad must be true or false, got {ds['skip_bad']!r}")


def _signature_of(kind: str, cls) -> dict[str, inspect.Parameter] | None:
    """The user-settable parameters of a registered class; None when it takes arbitrary keywords."""
    fn = cls.from_assets if kind == "generator" else cls.__init__
    if fn is object.__init__:
        return {}
    if kind == "setting":
        from ..transforms.base import Transform

        if fn is Transform.__init__:
            return {}  # the base's **params only records what a subclass passes
    params = dict(inspect.signature(fn).parameters)
    params.pop("self", None)
    params.pop("cls", None)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    if kind == "generator":  # every generator: get_generator(name, edits=[...]) keeps only those official edits
        params["edits"] = inspect.Parameter("edits", inspect.Parameter.KEYWORD_ONLY, default=None)
    return {k: p for k, p in params.items() if k not in RUNNER_SET[kind] and p.kind is not p.VAR_POSITIONAL}


def _expected(p: inspect.Parameter) -> str | None:
    """'bool' / 'int' / 'number' / 'str' from the parameter's annotation and default, or None (anything)."""
    ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation))
    ann = "" if p.annotation is inspect.Parameter.empty else str(ann)
    d = p.default
    if isinstance(d, bool) or ann.startswith("bool"):
        return "bool"
    if "float" in ann or isinstance(d, float):
        return "number"
    if is_int(d) or ann.startswith("int"):
        return "int"
    if isinstance(d, str) or ann.startswith("str"):
        return "str"
    return None


_TYPE_OK = {"bool": lambda v: isinstance(v, bool), "int": is_int, "number": is_number, "str": lambda v: isinstance(v, str)}
_TYPE_WORD = {"bool": "true or false", "int": "an integer", "number": "a number", "str": "a string"}


def check_params(kind: str, name: str, cls, params: dict) -> None:
    """Unknown parameters ("did you mean") and wrong types of one configured method, in one line."""
    sig = _signature_of(kind, cls)
    if sig is None:
        return
    for k, v in params.items():
        if k not in sig:
            known = ", ".join(sorted(sig)) or "none"
            raise InputError(f"config: {kind} {name!r} takes no parameter {k!r} (it takes: {known}).{did_you_mean(k, sig)}")
        p = sig[k]
        want = _expected(p)
        if want is None or (v is None and p.default is None):
            continue
        if not _TYPE_OK[want](v):
            raise InputError(f"config: {kind} {name!r} parameter {k!r} must be {_TYPE_WORD[want]}, got {v!r}")
        if is_number(v) and abs(v) > (SEED_MAX if k == "seed" else INT_MAX):
            raise InputError(f"config: {kind} {name!r} parameter {k!r} is out of range ({v!r})")
        if k == "seed" and v < 0:
            raise InputError(f"config: {kind} {name!r} parameter 'seed' must be >= 0, got {v!r}")


def check_swap(block, generators: dict[str, type] | None = None) -> dict:
    """The ``swap`` block, normalised to ``{"role", "identities", "judges", "seed"}`` (``identities``/``seed``
    None when not given). ``generators``: label -> registered class, to check that the run has a face
    swapper, that a swapper that needs a partner photo (SimSwap) has the block, and that a swapper whose
    identities live in its weights (aeswap: the protected photo is always the target) is not given
    ``role: source``. Each problem is one line."""
    if not isinstance(block, dict):
        raise InputError(f"config: swap must be a mapping {{role: source or target}}, got {block!r}")
    _unknown("swap", block, SWAP_KEYS)
    role = block.get("role")
    if role not in SWAP_ROLES:
        hint = did_you_mean(role, SWAP_ROLES) if isinstance(role, str) else ""
        raise InputError(f"config: swap.role must be source (the protected photo gives the identity) or target (the "
                         f"protected photo is the face swapped onto), got {role!r}.{hint}")
    ids = block.get("identities")
    if ids is not None:
        _str("swap.identities", ids)
    judges = block.get("judges", list(SWAP_JUDGES))
    judges = [judges] if isinstance(judges, str) else judges
    if not isinstance(judges, list) or not judges:
        raise InputError(f"config: swap.judges must be a non-empty list of {', '.join(SWAP_JUDGES)}, got {block.get('judges')!r}")
    for j in judges:
        if j not in SWAP_JUDGES:
            raise InputError(f"config: swap.judges names {j!r}; known: {', '.join(SWAP_JUDGES)}."
                             f"{did_you_mean(str(j), SWAP_JUDGES)}")
        if judges.count(j) > 1:
            raise InputError(f"config: swap.judges lists {j!r} twice; each judge once")
    if block.get("seed") is not None:
        _int("swap.seed", block["seed"], 0, SEED_MAX)
    out = {"role": role, "identities": ids, "judges": list(judges), "seed": block.get("seed")}
    if generators is not None:
        swappers = {g: c for g, c in generators.items() if getattr(c, "kind", "attribute") == "swap"}
        if not swappers:
            raise InputError(f"config: swap is set but no generator is a face swapper ({', '.join(generators)}); "
                             "add one (simswap, aeswap) or drop the swap block")
        for g, c in swappers.items():
            fixed = getattr(c, "protected_role", None)
            if fixed is not None and fixed != role:
                raise InputError(f"config: generator {g!r} takes the protected photo as the swap's {fixed} only (its "
                                 f"identities are in its weights); use swap.role: {fixed} or run it in another config")
    return out


def check_swappers(generators: dict[str, type], swap: dict | None) -> None:
    """Without a ``swap`` block, a swapper that needs a partner photo (a reference image) is one line."""
    if swap is not None:
        return
    for g, c in generators.items():
        if getattr(c, "kind", "attribute") == "swap" and "reference" in getattr(c, "inputs", ()):
            raise InputError(f"config: generator {g!r} is a face swap: add swap: {{role: source}} (the protected photo "
                             "gives the identity) or {role: target} (it is the face swapped onto) to build its pairs")


def check_transfer(block, generators: list[str], settings: list[str] | None = None) -> dict:
    """The ``transfer`` block, normalised to ``{"from": [...], "to": [...]}`` (labels of configured generators)
    and, when given, ``"settings"``: the settings the targets judge under (default every setting of the run).

    Each of ``from``/``to`` is a generator label or a list of them (default: every configured generator);
    each entry of ``settings`` is the label of a setting of the run (``none``, ``jpeg(quality=75)``) or the
    name of a probe set in the run (all its probes), checked against ``settings`` (the run's expanded
    setting labels) when those are passed. An unknown key, an unknown or repeated generator or setting,
    or a matrix without any source ≠ target pair is one line."""
    if not isinstance(block, dict):
        raise InputError(f"config: transfer must be a mapping {{from: [generators], to: [generators]}}, got {block!r}")
    _unknown("transfer", block, TRANSFER_KEYS)
    out = {}
    for key in ("from", "to"):
        names = block.get(key, list(generators))
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names:
            raise InputError(f"config: transfer.{key} must be a non-empty list of generators from 'generators' "
                             f"({', '.join(generators)}), got {block.get(key)!r}")
        for g in names:
            if not isinstance(g, str) or g not in generators:
                raise InputError(f"config: transfer.{key} names {g!r}, which is not one of the configured generators "
                                 f"({', '.join(generators)}); list it under 'generators' first.{did_you_mean(g, generators)}")
            if names.count(g) > 1:
                raise InputError(f"config: transfer.{key} lists {g!r} twice; each generator once")
        out[key] = list(names)
    if "settings" in block:
        out["settings"] = _transfer_settings(block["settings"], settings)
    if not any(s != t for s in out["from"] for t in out["to"]):
        raise InputError(f"config: transfer has no source -> target pair with different generators "
                         f"(from {out['from']}, to {out['to']}); name at least two generators")
    return out


def _transfer_settings(names, settings: list[str] | None) -> list[str]:
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(f"config: transfer.settings must be a non-empty list of setting labels or probe set names "
                         f"(e.g. [none]), got {names!r}")
    for n in names:
        if names.count(n) > 1:
            raise InputError(f"config: transfer.settings lists {n!r} twice; each setting once")
        if settings is not None and not any(transfer_judges(lab, [n]) for lab in settings):
            known = list(dict.fromkeys([lab.split("/")[0] for lab in settings] + list(settings)))
            raise InputError(f"config: transfer.settings names {n!r}, which is not a setting of the run "
                             f"({', '.join(known)}); list it under 'settings' first.{did_you_mean(n, known)}")
    return list(names)


def transfer_judges(label: str, selected: list[str] | None) -> bool:
    """Whether the targets judge setting ``label`` under a transfer block's ``settings`` (None: all): its
    label is listed, or the probe set it belongs to (``pdb-code`` selects ``pdb-code/jpeg70``...)."""
    return selected is None or label in selected or ("/" in label and label.split("/")[0] in selected)
