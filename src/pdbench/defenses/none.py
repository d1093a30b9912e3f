"""No defense: x_adv = x. The baseline row that shows what a practical setting alone does."""

from __future__ import annotations

import torch

from . import DEFENSES
from .base import Defense


@DEFENSES.register("none")
class NoDefense(Defense):
    access = "none"

    def protect(self, x: torch.Tensor, target, keys=None) -> torch.Tensor:
        return x.detach().clone()
