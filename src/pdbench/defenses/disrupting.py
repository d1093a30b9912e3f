"""Disrupting Deepfakes (Ruiz et al., 2020) as PDB runs it: the blur-evasion variant.

PDB's ``disrupting_methods/disrupting_deepfake`` smooths x_adv inside every step before the generator
sees it: Gaussian σ 1.0, 1.5, …, 3.0 (σ 1 → 3.2 in steps of 0.5), then average kernels 3, 5, 7, 9, one
blur per iteration, cycling, so that the perturbation survives blurring; random start, ε 0.05, α 0.01,
30 steps. The loss is the distance of G(blur(x_adv)) to the clean G(x). (PDB uses an 11-tap Gaussian
kernel; pdbench's :func:`~pdbench.filters.gaussian_kernel` has radius round(3σ), i.e. 7 to 19 taps.)

The plain attack of the paper's code (I-FGSM with a random start) is ``ifgsm``, an alias of ``pgd``;
``disrupting-blur`` is kept as an alias of ``disrupting`` for old configs.
"""

from __future__ import annotations

import torch

from ..filters import apply_blur
from . import DEFENSES
from .base import IterativeSignAttack, Record

RECORD = Record(
    paper="Disrupting Deepfakes: Adversarial Attacks Against Conditional Image Translation Networks and Facial "
          "Manipulation Systems",
    venue="ECCV Workshops", year=2020, url="https://arxiv.org/abs/2003.01279",
    code="https://github.com/natanielruiz/disrupting-deepfakes",
    official={"eps": 0.05, "alpha": 0.01, "steps": 10, "random_start": True,
              "blur": "Gaussian σ 1→3.2 step 0.5, then average k 3→9 step 2, cycling (perturb_blur_iter_full)",
              "pdb": {"steps": 30, "gaussian_kernel": 11}},
    notes="Success threshold in the paper: MSE(G(x), G(x_adv)) > 0.05 (on [-1, 1]).",
)


def blur_schedule() -> list[tuple[str, float]]:
    gauss = [("gaussian", 1.0 + 0.5 * i) for i in range(int((3.2 - 1.0) / 0.5) + 1)]  # 1.0 … 3.0
    box = [("average", float(k)) for k in range(3, 10, 2)]  # 3, 5, 7, 9
    return gauss + box


@DEFENSES.register("disrupting")
class Disrupting(IterativeSignAttack):
    """Blur-evasion I-FGSM: the generator sees a blurred x_adv, cycling through :func:`blur_schedule`."""

    random_start = True
    objective = "synthesis disruption (blur-robust)"
    record = RECORD

    def transform(self, x_adv: torch.Tensor, step: int) -> torch.Tensor:
        sched = blur_schedule()
        kind, size = sched[step % len(sched)]
        return apply_blur(x_adv, kind, size)


@DEFENSES.register("disrupting-blur")
class DisruptingBlur(Disrupting):
    """The earlier name of ``disrupting`` (the same attack)."""

    alias_of = "disrupting"
