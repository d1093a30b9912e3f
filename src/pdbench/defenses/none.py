"""No defense: x_adv = x. The baseline row that shows what a practical setting alone does."""

from __future__ import annotations

import torch

from . import DEFENSES
from .base import Defense, Record


@DEFENSES.register("none")
class NoDefense(Defense):
    access = "none"
    norm = "none"
    methodology = "none"
    objective = "none"
    record = Record(paper="(baseline: no perturbation)", notes="x_adv = x; the reference row of every table.")

    def protect(self, x: torch.Tensor, target, keys=None, progress=None) -> torch.Tensor:
        if progress is not None:
            progress(1, 1)
        return x.detach().clone()
