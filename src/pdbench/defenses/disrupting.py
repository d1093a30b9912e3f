"""Disrupting Deepfakes (Ruiz et al., 2020) and its blur-evasion variant.

The paper calls the attack I-FGSM; its code (natanielruiz/disrupting-deepfakes: stargan/attacks.py,
``LinfPGDAttack``) sets ``self.rand = True`` and so starts from x + U(-ε, ε): without that start the
MSE-to-clean loss has zero gradient at x and nothing happens. pdbench follows the code (pass
``random_start=False`` to see the degenerate paper form). ε 0.05, α 0.01, 30 steps as PDB runs it, so
``disrupting`` is ``pgd`` with its own random starts; the method's own contribution is the
blur-evasion variant ``disrupting-blur``, which cycles blur inside the loop: Gaussian σ 1.0, 1.5, …,
3.0 (σ 1 → 3.2 in steps of 0.5), then average blur with kernel 3, 5, 7, 9, one blur per iteration,
so that the perturbation survives blurring.
"""

from __future__ import annotations

import torch

from ..filters import apply_blur
from . import DEFENSES
from .base import IterativeSignAttack


@DEFENSES.register("disrupting")
class Disrupting(IterativeSignAttack):
    random_start = True


def blur_schedule() -> list[tuple[str, float]]:
    gauss = [("gaussian", 1.0 + 0.5 * i) for i in range(int((3.2 - 1.0) / 0.5) + 1)]  # 1.0 … 3.0
    box = [("average", float(k)) for k in range(3, 10, 2)]  # 3, 5, 7, 9
    return gauss + box


@DEFENSES.register("disrupting-blur")
class DisruptingBlur(Disrupting):
    """Blur-evasion variant: the generator sees a blurred x_adv, cycling through the schedule."""

    def transform(self, x_adv: torch.Tensor, step: int) -> torch.Tensor:
        sched = blur_schedule()
        kind, size = sched[step % len(sched)]
        return apply_blur(x_adv, kind, size)
