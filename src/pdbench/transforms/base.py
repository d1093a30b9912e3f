"""The transform interface: ``T(x) -> x'`` on images in the pdbench convention, batched.

A setting is written as a name with optional parameters: ``"none"``, ``"jpeg"``,
``{"name": "jpeg", "quality": 75}`` or the string ``"jpeg:quality=75"``.
"""

from __future__ import annotations

from ..errors import InputError
from ..registry import label


def check_param(setting: str, key: str, value, lo: float, hi: float, lo_open: bool = False, integer: bool = False) -> float:
    """One setting parameter as a finite number in its range (``lo_open``: ``lo`` itself excluded), else one line."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise InputError(f"setting {setting!r}: {key} must be {'an integer' if integer else 'a number'}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise InputError(f"setting {setting!r}: {key} must be in {rng}, got {value!r}")
    return v


class Transform:
    name: str = "?"
    differentiable: bool = False

    def __init__(self, **params):
        self.params = params

    def label(self) -> str:
        return label(self.name, self.params)

    def __call__(self, x):
        raise NotImplementedError


def split_setting(spec) -> tuple[str, dict]:
    """``(name, params)`` of a setting written as a name, ``"name:key=value,..."`` or a mapping."""
    if isinstance(spec, str):
        name, _, rest = spec.partition(":")
        params = {}
        for part in filter(None, rest.split(",")):
            k, eq, v = part.partition("=")
            if not eq or not k.strip():
                raise InputError(f"setting {spec!r}: parameters are written name:key=value,key=value")
            try:
                params[k.strip()] = float(v) if any(ch in v.lower() for ch in ".en") else int(v)
            except ValueError:
                raise InputError(f"setting {spec!r}: {k.strip()}={v!r} is not a number") from None
        return name.strip(), params
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise InputError(f"setting {spec!r} has no 'name'")
        return name, params
    raise InputError(f"setting {spec!r}: expected a name or a mapping with 'name'")


def parse_setting(spec) -> Transform:
    from . import TRANSFORMS

    if isinstance(spec, Transform):
        return spec
    name, params = split_setting(spec)
    cls = TRANSFORMS.get(name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"setting {name!r}: bad parameters {params} ({e})") from e
