"""Anti-Forgery (Wang et al., IJCAI 2022): a perceptual-aware perturbation in the a/b channels of Lab.

Only a and b move: x_adv = lab2rgb(L, ab + clamp(w, ±ε)) in Anti-Forgery's normalisation
(L → (L − 50)/100, ab → ab/110; :mod:`pdbench.defenses.colour`). w starts at 0 and is trained by Adam
(lr 1e-4, betas 0.9/0.999) on −MSE(G(x_adv), G(x)) with the gradient norm clipped to 1
(AbstractTeen/AntiForgery ``utils.py``; PDB's ``disrupting_methods/anti_forgery``). PDB runs 500
iterations (``antiforgery``); the paper's code 100 (``antiforgery-paper``).

How ε applies: as in the official code, ε bounds the a/b perturbation (0.05 in ab/110 units = 5.5 Lab
units), not RGB; the RGB change can exceed 0.05, so the declared norm is ``"lab-ab"``. x_adv is clamped to
[-1, 1] (PDB does the same), which moves L slightly only where the shifted colour leaves the sRGB gamut.
The gradient-norm clip is per image (the official code clips the whole batch tensor, which equals
per image at its batch size 1), so a batch gives the same result as a per-image loop.
"""

from __future__ import annotations

from . import DEFENSES
from .base import EPS, ObjectiveDefense, Record

RECORD = Record(
    paper="Anti-Forgery: Towards a Stealthy and Robust DeepFake Disruption Attack via Adversarial Perceptual-aware "
          "Perturbations",
    venue="IJCAI", year=2022, url="https://arxiv.org/abs/2206.00477",
    code="https://github.com/AbstractTeen/AntiForgery",
    official={"space": "Lab a/b (L→(L−50)/100, ab→ab/110)", "eps": 0.05, "optimiser": "Adam", "lr": 1e-4,
              "betas": [0.9, 0.999], "grad_clip_norm": 1.0, "iterations": 100, "pdb_iterations": 500,
              "loss": "−MSE(G(x_adv), G(x))"},
    notes="ε bounds the a/b perturbation, not RGB (norm 'lab-ab').",
)


@DEFENSES.register("antiforgery")
class AntiForgery(ObjectiveDefense):
    """Anti-Forgery as PDB runs it (500 Adam iterations)."""

    norm = "lab-ab"
    record = RECORD

    def __init__(self, eps: float = EPS, alpha: float = 1e-4, steps: int = 500, seed: int = 0):
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)

    def build_objectives(self) -> list:
        from .objectives import OutputDisruption

        return [OutputDisruption()]

    def build_optimiser(self):
        from .optim import AdamDelta

        return AdamDelta(lr=self.alpha, steps=self.steps, param="lab-ab", clip_grad=1.0)


@DEFENSES.register("antiforgery-paper")
class AntiForgeryPaper(AntiForgery):
    """Anti-Forgery with the official code's 100 iterations."""

    def __init__(self, eps: float = EPS, alpha: float = 1e-4, steps: int = 100, seed: int = 0):
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)
