"""Benchmark configuration (YAML or TOML).

Example::

    name: quickstart
    dataset: {asset: celeba-10k-89px, images: images, attrs: list_attr_celeba_first20k.txt,
              holdout: 1000, split: test, n: 32, seed: 0}
    generators: [stargan]                 # or {name: stargan, checkpoint: path/to/200000-G.ckpt}
    defenses: [none, pgd, disrupting, fgsm]   # or {name: pgd, eps: 0.05, steps: 30}
    settings: [none, {name: jpeg, quality: 75}]
    metrics: [mse, l2_mask, dsr_mse, dsr_l2_mask, ssim_out, psnr_adv]
    batch_size: 16
    device: cpu
    out: results/quickstart

A dataset is either ``path`` (any folder of photos, with optional ``attrs`` file) or ``asset`` (a
dataset from the asset store, with ``images``/``attrs`` relative to it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..registry import spec_label


def _norm_list(items, what: str) -> list[dict]:
    out = []
    for it in items or []:
        if isinstance(it, str):
            out.append({"name": it})
        elif isinstance(it, dict) and "name" in it:
            out.append(dict(it))
        else:
            raise InputError(f"config: each entry of {what} is a name or a mapping with 'name', got {it!r}")
    return out


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
    extra: dict = field(default_factory=dict)
    metric_specs: list[dict] = field(default_factory=list)  # {"name": ..., **params}, parallel to metrics

    def __post_init__(self) -> None:
        if not self.metric_specs:
            self.metric_specs = [{"name": m} for m in self.metrics]

    @classmethod
    def from_dict(cls, d: dict, base: Path | None = None) -> "BenchConfig":
        known = {"name", "dataset", "generators", "defenses", "settings", "metrics", "batch_size", "device", "out", "seed"}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"config: unknown key(s) {sorted(unknown)}; known keys: {sorted(known)}")
        for key in ("dataset", "generators", "defenses", "metrics"):
            if key not in d:
                raise InputError(f"config: missing required key {key!r}")
        metric_specs = _norm_list(d["metrics"], "metrics")
        ds = dict(d["dataset"])
        if base is not None and "path" in ds and not Path(os.path.expandvars(ds["path"])).is_absolute():
            ds["path"] = str(base / os.path.expandvars(ds["path"]))
        return cls(
            name=str(d.get("name", "bench")), dataset=ds,
            generators=_norm_list(d["generators"], "generators"), defenses=_norm_list(d["defenses"], "defenses"),
            settings=list(d.get("settings") or ["none"]), metrics=[spec_label(m) for m in metric_specs],
            metric_specs=metric_specs,
            batch_size=int(d.get("batch_size", 16)), device=str(d.get("device", "cpu")),
            out=str(d.get("out", "results")), seed=int(d.get("seed", 0)),
        )


def load_config(path: str | Path) -> BenchConfig:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        d = tomllib.loads(text)
    else:
        import yaml

        d = yaml.safe_load(text)
    if not isinstance(d, dict):
        raise InputError(f"config file {path} is not a mapping of keys to values")
    return BenchConfig.from_dict(d, base=path.parent)
