"""Benchmark configuration (YAML or TOML).

Example::

    name: quickstart
    dataset: {asset: celeba-10k-89px, images: images, attrs: list_attr_celeba_first20k.txt,
              holdout: 1000, split: test, n: 32, seed: 0}
    generators: [stargan]                 # or {name: stargan, checkpoint: path/to/200000-G.ckpt}
                                          # or {name: fpgan, edits: [to_Black_Hair]}: only those official edits
    defenses: [none, pgd, disrupting, fgsm]   # or {name: pgd, eps: 0.05, steps: 30}
    settings: [none, {name: jpeg, quality: 75}]
    metrics: [mse, l2_mask, dsr_mse, dsr_l2_mask, ssim_out, psnr_adv]
    batch_size: 16
    device: cpu
    out: results/quickstart
    transfer: {from: [stargan, attgan], to: [stargan, attgan]}   # optional: the R_TE matrix
                                          # (settings: [none] judges the targets unprocessed only)
    publish: native                       # optional: model-input (PDB's protocol, default) or native
    swap: {role: source}                  # face swappers (simswap, aeswap): the protected photo is the
                                          # source identity or the target face (see pdbench.bench.runner)

A dataset is either ``path`` (any folder of photos, with optional ``attrs`` file) or ``asset`` (a
dataset from the asset store, with ``images``/``attrs`` relative to it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, PdbenchError
from ..registry import spec_label, spec_params
from .schema import (PUBLISH_MODES, SEED_MAX, _int, _str, check_dataset, check_executor, check_finite, check_params,
                     check_publish, check_swap, check_swappers, check_top, check_transfer, did_you_mean)


def _norm_list(items, what: str) -> list[dict]:
    out = []
    for it in items or []:
        if isinstance(it, str) and it:
            out.append({"name": it})
        elif isinstance(it, dict) and isinstance(it.get("name"), str):
            out.append(dict(it))
        else:
            raise InputError(f"config: each entry of {what} is a name or a mapping with 'name', got {it!r}")
    return out


def _method(kind: str, registry, spec: dict, where: str):
    """The registered class of one entry, its parameters checked against the class's signature."""
    cls = registry.get(spec["name"])
    if "label" in spec and not (isinstance(spec["label"], str) and spec["label"].strip()
                                and spec["label"] == spec["label"].strip()):
        raise InputError(f"config: {where}: label must be a non-empty name without surrounding spaces, "
                         f"got {spec['label']!r}")
    params = spec_params(spec)
    check_finite(params, where)
    check_params(kind, spec["name"], cls, params)
    return cls, params


def _build(kind: str, name: str, make):
    """Instantiate a cheap method at config time, so its own range checks run before any work."""
    try:
        return make()
    except PdbenchError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(f"config: {kind} {name!r}: bad parameters ({e})") from None


def validate(cfg: "BenchConfig") -> list:
    """Check every method entry of a config (names, parameters, values); returns the parsed settings.

    Nothing here loads a model: defenses and settings are built (cheap, they check their own ranges),
    generators and metrics only have their parameters checked against their signatures.
    """
    from ..assets import ASSETS
    from ..defenses import DEFENSES
    from ..generators import GENERATORS
    from ..metrics import METRICS
    from ..tensors import resolve_device
    from ..transforms import TRANSFORMS, expand_settings
    from ..transforms.base import split_setting

    check_dataset(cfg.dataset)
    _str("device", cfg.device)
    _str("out", cfg.out)
    _int("batch_size", cfg.batch_size, 1)
    _int("seed", cfg.seed, 0, SEED_MAX)
    check_executor(cfg.executor)
    check_publish(cfg.publish)
    resolve_device(cfg.device)
    for i, g in enumerate(cfg.generators):
        gcls, params = _method("generator", GENERATORS, g, f"generators[{i}]")
        if "edits" in params:  # names checked against the class's official edits before any weights load
            try:
                gcls.check_edits(params["edits"])
            except InputError as e:
                raise InputError(f"config: generators[{i}]: {e}") from None
        ckpt = params.get("checkpoint")
        if ckpt is not None and not Path(os.path.expandvars(ckpt)).expanduser().is_file():
            raise InputError(f"config: generator {g['name']!r} checkpoint {ckpt} does not exist; give the path of a state-dict file")
        if params.get("asset") is not None:
            known = sorted(n for n, s in ASSETS.items() if s.kind == "generator")
            if params["asset"] not in known:
                raise InputError(f"config: generator {g['name']!r} asset {params['asset']!r} is not a generator asset; "
                                 f"known: {', '.join(known)}.{did_you_mean(params['asset'], known)}")
        res = params.get("resolution")
        if res is not None and not (16 <= res <= 2048 and res % 4 == 0):
            raise InputError(f"config: generator {g['name']!r} resolution must be a multiple of 4 in [16, 2048], got {res}")
    for i, d in enumerate(cfg.defenses):
        cls, params = _method("defense", DEFENSES, d, f"defenses[{i}]")
        _build("defense", d["name"], lambda: cls(**params))
    for i, m in enumerate(cfg.metric_specs):
        _method("metric", METRICS, m, f"metrics[{i}]")
    from ..transforms.probe_sets import PROBE_SETS

    for i, s in enumerate(cfg.settings):
        check_finite(s, f"settings[{i}]")
        name, params = split_setting(s)
        if name in PROBE_SETS:
            continue  # a named probe set: expand_settings checks it
        cls, params = _method("setting", TRANSFORMS, {"name": name, **params}, f"settings[{i}]")
        _build("setting", name, lambda: cls(**params))
    settings = _build("setting", "settings", lambda: expand_settings(cfg.settings))
    for what, items in (("defenses", [spec_label(d) for d in cfg.defenses]),
                        ("generators", [spec_label(g) for g in cfg.generators]), ("metrics", cfg.metrics)):
        dup = sorted({x for x in items if items.count(x) > 1})
        if dup:
            raise InputError(f"config: {what} lists {dup[0]!r} twice; each entry must differ")
    if cfg.transfer is not None:
        check_transfer(cfg.transfer, [spec_label(g) for g in cfg.generators], [t.label() for t in settings])
    classes = {spec_label(g): GENERATORS.get(g["name"]) for g in cfg.generators}
    if cfg.swap is not None:
        cfg.swap = check_swap(cfg.swap, classes)
    check_swappers(classes, cfg.swap)
    if cfg.transfer is not None:
        swappers = [g for g in set(cfg.transfer["from"]) | set(cfg.transfer["to"])
                    if getattr(classes.get(g), "kind", "attribute") == "swap"]
        if swappers:
            raise InputError(f"config: transfer names the face swapper {sorted(swappers)[0]!r}; transfer between "
                             "generators is for attribute editors only: leave swappers out of transfer")
    return settings


@dataclass
class BenchConfig:
    name: str
    dataset: dict
    generators: list[dict]
    defenses: list[dict]
    settings: list
    metrics: list[str]  # labels: "name" or "name(k=v,...)" for configured ones (see metric_specs)
    batch_size: int = 16
    device: str = "cpu"
    out: str = "results"
    seed: int = 0
    executor: str | dict = "local"  # how the cells run (pdbench.bench.runner.make_executor); not in the content key
    extra: dict = field(default_factory=dict)
    metric_specs: list[dict] = field(default_factory=list)  # {"name": ..., **params}, parallel to metrics
    transfer: dict | None = None  # {"from": [generator labels], "to": [...]}: the source × target matrix (R_TE)
    publish: str = PUBLISH_MODES[0]  # "model-input" (PDB's protocol) or "native" (pdbench.publish)
    swap: dict | None = None  # {"role": "source"|"target", "identities", "judges", "seed"}: face swappers' pairs

    def __post_init__(self) -> None:
        if not self.metric_specs:
            self.metric_specs = [{"name": m} for m in self.metrics]

    def to_dict(self) -> dict:
        """The config as it would be written (what :meth:`content_key` hashes, with ``out``)."""
        d = {"name": self.name, "dataset": self.dataset, "generators": self.generators, "defenses": self.defenses,
             "settings": self.settings, "metrics": self.metric_specs, "batch_size": self.batch_size,
             "device": self.device, "out": self.out, "seed": self.seed, "executor": self.executor}
        if self.transfer is not None:  # only when set: configs without it keep their content key
            d["transfer"] = self.transfer
        if self.publish != PUBLISH_MODES[0]:  # likewise: model-input configs keep their content key
            d["publish"] = self.publish
        if self.swap is not None:  # likewise; the role is part of the content key
            d["swap"] = self.swap
        return d

    def content_key(self) -> str:
        """What the results depend on (everything but ``out``, ``device``, ``name`` and ``executor``): a run
        folder belongs to one."""
        import hashlib
        import json

        d = {k: v for k, v in self.to_dict().items() if k not in ("out", "device", "name", "executor")}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def validate(self) -> list:
        """Check every level (see :mod:`pdbench.bench.schema`); returns the parsed settings."""
        return validate(self)

    @classmethod
    def from_dict(cls, d: dict, base: Path | None = None) -> "BenchConfig":
        """Build and validate a config from its mapping (every level; one-line :class:`InputError`)."""
        if not isinstance(d, dict):
            raise InputError(f"config: expected a mapping of keys to values, got {type(d).__name__}")
        check_top(d)
        check_dataset(d["dataset"])
        metric_specs = _norm_list(d["metrics"], "metrics")
        ds = dict(d["dataset"])
        generators = _norm_list(d["generators"], "generators")
        transfer = check_transfer(d["transfer"], [spec_label(g) for g in generators]) if "transfer" in d else None
        if base is not None and "path" in ds and not Path(os.path.expandvars(ds["path"])).is_absolute():
            ds["path"] = str(base / os.path.expandvars(ds["path"]))
        return cls(
            name=str(d.get("name", "bench")), dataset=ds,
            generators=generators, defenses=_norm_list(d["defenses"], "defenses"),
            settings=list(d.get("settings") or ["none"]), metrics=[spec_label(m) for m in metric_specs],
            metric_specs=metric_specs,
            batch_size=int(d.get("batch_size", 16)), device=str(d.get("device", "cpu")),
            out=str(d.get("out", "results")), seed=int(d.get("seed", 0)), transfer=transfer,
            executor=d.get("executor", "local"), publish=d.get("publish", PUBLISH_MODES[0]),
            swap=check_swap(d["swap"]) if "swap" in d else None,
        ).checked()

    def checked(self) -> "BenchConfig":
        self.validate()
        return self


def load_config(path: str | Path) -> BenchConfig:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {path} does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"config file {path} cannot be read as text ({type(e).__name__}); pass a YAML or TOML file") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"config file {path} is not valid TOML ({e}); fix that line") from None
    else:
        import yaml

        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = getattr(e, "problem", None) or type(e).__name__
            raise InputError(f"config file {path} is not valid YAML{where} ({what}); fix that line") from None
    if not isinstance(d, dict):
        raise InputError(f"config file {path} is not a mapping of keys to values")
    return BenchConfig.from_dict(d, base=path.parent)
