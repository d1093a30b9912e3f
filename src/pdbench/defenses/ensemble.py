"""Ensembles of target generators with weights, built from config entries.

A member spec is a generator name or ``{name: attgan, weight: 0.5, checkpoint: ...}`` (every key but
``weight`` and ``label`` goes to :func:`pdbench.generators.get_generator`, e.g. ``edits: [to_Black_Hair]`` for only those
official edits). :func:`build_target` turns a list of specs
into a :class:`~pdbench.generators.Target` for N images, with each generator's official edit
conditions from the images' attribute labels (``labels`` maps a generator name to its (N, A) labels;
a generator without labels gets its conditions for all-zero attributes). Loaded generators are cached
per spec, so a defense that attacks surrogates loads each one once per process.
"""

from __future__ import annotations

import json

import torch

from ..errors import InputError
from ..generators import GENERATORS, Target, TargetMember, get_generator

_LOADED: dict = {}


def parse_members(specs) -> list[tuple[str, dict, float]]:
    """(name, generator kwargs, weight) per member; one-line errors for bad entries."""
    if isinstance(specs, (str, dict)):
        specs = [specs]
    if not specs:
        raise InputError("ensemble: give at least one generator, e.g. [stargan, {name: attgan, weight: 0.5}]")
    out = []
    for s in specs:
        s = {"name": s} if isinstance(s, str) else dict(s)
        name = s.pop("name", None)
        if not isinstance(name, str):
            raise InputError(f"ensemble: each member needs a generator name, got {s!r}")
        GENERATORS.get(name)  # unknown names fail here, with a suggestion
        s.pop("label", None)  # a display name (a zoo entry reused as a member), not a generator parameter
        w = s.pop("weight", 1.0)
        if not isinstance(w, (int, float)) or not w > 0:
            raise InputError(f"ensemble: weight of {name!r} must be a positive number, got {w!r}")
        out.append((name, s, float(w)))
    return out


def load_member(name: str, kwargs: dict, device="cpu"):
    key = (name, json.dumps(kwargs, sort_keys=True, default=str), str(device))
    if key not in _LOADED:
        _LOADED[key] = get_generator(name, device=device, **kwargs)
    return _LOADED[key]


def build_target(specs, n: int, labels: dict | None = None, device="cpu", like: Target | None = None) -> Target:
    """A weighted Target over the configured generators for n images.

    ``like``: a target for the same images whose members' conditions are reused for a generator of the
    same name (the runner's target knows the images' real attributes; a surrogate of the same kind then
    attacks the same edits).
    """
    labels = labels or {}
    members = []
    for name, kw, w in parse_members(specs):
        g = load_member(name, kw, device)
        conds = None
        if like is not None:
            for m in like.members:
                if (m.generator.name == name and m.conditions.shape[1] == n
                        and tuple(m.generator.condition_names) == tuple(g.condition_names)):  # the same edits
                    conds = m.conditions
                    break
        if conds is None:
            conds = g.conditions(labels.get(name), n)
        members.append(TargetMember(g, conds, w))
    return Target(members)


def check_resolution(target: Target, x: torch.Tensor) -> None:
    for m in target.members:
        r = m.generator.resolution
        if x.shape[-1] != r or x.shape[-2] != r:
            raise InputError(f"ensemble member {m.generator.name} works at {r} px but the images are "
                             f"{x.shape[-2]}x{x.shape[-1]}; use members of one resolution")
