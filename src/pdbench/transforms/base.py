"""The transform interface: ``T(x) -> x'`` on images in the pdbench convention, batched.

A setting is written as a name with optional parameters: ``"none"``, ``"jpeg"``,
``{"name": "jpeg", "quality": 75}`` or the string ``"jpeg:quality=75"``.
"""

from __future__ import annotations

from ..errors import InputError
from ..registry import label


class Transform:
    name: str = "?"
    differentiable: bool = False

    def __init__(self, **params):
        self.params = params

    def label(self) -> str:
        return label(self.name, self.params)

    def __call__(self, x):
        raise NotImplementedError


def parse_setting(spec) -> Transform:
    from . import TRANSFORMS

    if isinstance(spec, Transform):
        return spec
    if isinstance(spec, str):
        name, _, rest = spec.partition(":")
        params = {}
        for part in filter(None, rest.split(",")):
            k, eq, v = part.partition("=")
            if not eq:
                raise InputError(f"setting {spec!r}: parameters are written name:key=value,key=value")
            params[k.strip()] = float(v) if any(ch in v for ch in ".e") else int(v)
    elif isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name", None)
        if name is None:
            raise InputError(f"setting {spec!r} has no 'name'")
    else:
        raise InputError(f"setting {spec!r}: expected a name or a mapping with 'name'")
    cls = TRANSFORMS.get(name)
    try:
        return cls(**params)
    except TypeError as e:
        raise InputError(f"setting {name!r}: bad parameters {params} ({e})") from e
