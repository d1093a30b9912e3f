"""A small name -> class registry with plug-in discovery.

Each stage (generators, defenses, transforms, metrics) owns one :class:`Registry`. A plug-in is one
module in that stage's package which decorates its class with ``@REGISTRY.register("name")``;
:meth:`Registry.discover` imports every module of the package, so adding a method never edits a list.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


def label(name: str, params: dict) -> str:
    """How a configured method is named in results: ``name`` or ``name(k=v,...)`` with sorted keys."""
    if not params:
        return name
    return name + "(" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"


def spec_params(spec: dict) -> dict:
    """The method parameters of a configured entry ``{"name": ..., "label": ..., **params}``: all but the
    registered name and the optional display label."""
    return {k: v for k, v in spec.items() if k not in ("name", "label")}


def spec_label(spec: dict) -> str:
    """How a configured entry is named in results: its ``label`` when the config gives one (a short display
    name, e.g. for a defense with long parameters), else :func:`label` of its name and parameters."""
    if "label" in spec:
        return spec["label"]
    return label(spec["name"], spec_params(spec))


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package
        self._items: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return deco

    def discover(self) -> None:
        if self._discovered:
            return
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")
        self._discovered = True

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def get(self, name: str) -> T:
        self.discover()
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}.{hint}"
            )
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self._items
