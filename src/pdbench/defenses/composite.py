"""A defense assembled in the config from weighted objectives and an optimiser.

    defenses:
      - {name: composite, objectives: [output, {name: ssim, weight: 0.1}], optimiser: sign-pgd}
      - {name: composite, objectives: [latent, {name: output, weight: 0.5}], grad_norm: member}
      - {name: composite, optimiser: {name: adam, lr: 0.001, param: tanh}, steps: 100}

Objectives: :data:`~pdbench.defenses.objectives.OBJECTIVES` (output, latent, pixel, retention, ssim,
lowfreq, identity); optimisers: :data:`~pdbench.defenses.optim.OPTIMISERS` (sign-pgd, adam). ``alpha``
and ``steps`` are the optimiser's unless it sets its own. At its defaults (the output objective,
sign-PGD) it is PDB's PGD, so it is declared an alias of ``pgd``.
"""

from __future__ import annotations

from . import DEFENSES
from .base import ALPHA, EPS, STEPS, ObjectiveDefense, Record
from ..errors import InputError


@DEFENSES.register("composite")
class Composite(ObjectiveDefense):
    alias_of = "pgd"
    record = Record(paper="(pdbench: a defense built from configured objectives and an optimiser)",
                    notes="At its defaults: PGD on the output disruption (alias of pgd).")

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0,
                 objectives: list | None = None, optimiser=None, grad_norm: str = "none", random_start: bool = True):
        if grad_norm not in ("none", "member"):
            raise InputError(f"composite: grad_norm must be 'none' or 'member', got {grad_norm!r}")
        self._obj_specs = list(objectives) if objectives is not None else ["output"]
        self._opt_spec = optimiser if optimiser is not None else {"name": "sign-pgd", "random_start": random_start}
        self.grad_norm = grad_norm
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)
        if getattr(self.optimiser, "param", None) == "lab-ab":
            self.norm = "lab-ab"

    def build_objectives(self) -> list:
        from .objectives import build_objective

        objs = [build_objective(s) for s in self._obj_specs]
        if not objs:
            raise InputError("composite: give at least one objective, e.g. objectives: [output]")
        return objs

    def build_optimiser(self):
        from .optim import build_optimiser

        return build_optimiser(self._opt_spec, self.alpha, self.steps)

    def config(self) -> dict:
        return {**super().config(), "objectives": [o.config() for o in self.objectives],
                "optimiser": self.optimiser.config(), "grad_norm": self.grad_norm}
