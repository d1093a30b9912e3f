"""The metric interface.

A metric receives :class:`MetricInputs` (all in the pdbench convention, see :mod:`pdbench.tensors`)
and returns one value per image, shape ``(N,)``. Metrics on generator outputs average over the K edit
conditions of each image. Generator outputs are clamped to [-1, 1] before any metric (the PDB code
measures unclamped tensors, where MSE can exceed 4; pdbench does not).

``direction`` says how to read a number: ``"higher=more disrupted"`` / ``"lower=more disrupted"`` for
disruption metrics, ``"lower=less visible"`` / ``"higher=less visible"`` for the visibility of the
perturbation itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import InputError
from ..tensors import check_images


@dataclass
class MetricInputs:
    x: torch.Tensor  # clean images (N,3,H,W)
    x_adv: torch.Tensor  # protected images as published, before any practical-setting transform
    out_clean: torch.Tensor  # G(x): (K,N,3,H,W)
    out_adv: torch.Tensor  # G(T(x_adv)): (K,N,3,H,W)
    x_memo: dict = field(default_factory=dict, repr=False)  # quantities of x alone; may be shared across inputs
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_metric_inputs(self.x, self.x_adv, self.out_clean, self.out_adv)
        self.out_clean = self.out_clean.clamp(-1, 1)
        self.out_adv = self.out_adv.clamp(-1, 1)

    def memo(self, key: str, compute: Callable[[], object]):
        """Compute a quantity shared by several metrics (embeddings, per-edit errors) once per input."""
        return _cached(self._memo, key, compute)

    def memo_x(self, key: str, compute: Callable[[], object]):
        """Like :meth:`memo` for what depends on the clean images x alone (the runner shares these across
        every defense and setting of a batch)."""
        return _cached(self.x_memo, key, compute)


def check_metric_inputs(x: torch.Tensor, x_adv: torch.Tensor, out_clean: torch.Tensor, out_adv: torch.Tensor) -> None:
    """The metric boundary: x and x_adv are image batches of one shape in the pdbench convention, the
    outputs are (K, N, 3, H, W) of one shape with the same N. Outputs may hold NaN (metrics propagate it)."""
    check_images(x, "metric input x")
    check_images(x_adv, "metric input x_adv")
    if x_adv.shape != x.shape:
        raise InputError(f"metric inputs: x_adv has shape {tuple(x_adv.shape)}, x {tuple(x.shape)}; pass the protected "
                         "images of the same batch")
    for what, o in (("out_clean", out_clean), ("out_adv", out_adv)):
        if not isinstance(o, torch.Tensor) or o.dim() != 5 or o.shape[1] != x.shape[0] or o.shape[2] != 3:
            raise InputError(f"metric inputs: {what} must be generator outputs of shape (K, {x.shape[0]}, 3, H, W), got "
                             f"{tuple(getattr(o, 'shape', ()))}; use Target.outputs(x)[0] (add the edit dimension with o[None])")
        if not o.is_floating_point():
            raise InputError(f"metric inputs: {what} must be a float tensor, got {o.dtype}")
    if out_adv.shape != out_clean.shape:
        raise InputError(f"metric inputs: out_adv has shape {tuple(out_adv.shape)}, out_clean {tuple(out_clean.shape)}; "
                         "both must hold the same edits of the same images")


def _cached(store: dict, key: str, compute: Callable[[], object]):
    if key not in store:
        store[key] = compute()
    return store[key]


class Metric:
    name: str = "?"
    direction: str = "higher=more disrupted"
    range: tuple[float, float] = (0.0, float("inf"))
    compares: str = "G(x) vs G(x_adv)"
    description: str = ""
    undefined_when: str = ""  # when set, the metric returns NaN for such images (left out of the means)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def info(cls) -> dict:
        return {"name": cls.name, "direction": cls.direction, "range": list(cls.range), "compares": cls.compares,
                "description": cls.description, **({"undefined_when": cls.undefined_when} if cls.undefined_when else {})}


def in_chunks(fn: Callable[..., torch.Tensor], *xs: torch.Tensor, size: int = 64) -> torch.Tensor:
    """fn over the first dimension of xs in slices of ``size`` (bounded memory), results concatenated."""
    return torch.cat([fn(*(x[i:i + size] for x in xs)) for i in range(0, xs[0].shape[0], size)])


def per_edit(fn: Callable[..., torch.Tensor], *outputs: torch.Tensor) -> torch.Tensor:
    """Apply a per-image function to (K,N,C,H,W) outputs as K*N images; returns its values as (K, N)."""
    k, n = outputs[0].shape[:2]
    return fn(*(o.flatten(0, 1) for o in outputs)).view(k, n)
