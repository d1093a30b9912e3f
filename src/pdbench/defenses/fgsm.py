"""FGSM (Goodfellow et al.): one sign step of size ε on the disruption loss.

The step starts from a uniform random point in the ε-ball (R+FGSM, Tramèr et al.), as the official
Disrupting code does for all its attacks: from x itself the gradient of MSE(G(x_adv), G(x)) is zero.
"""

from . import DEFENSES
from .base import EPS, IterativeSignAttack, Record


@DEFENSES.register("fgsm")
class FGSM(IterativeSignAttack):
    record = Record(
        paper="Explaining and Harnessing Adversarial Examples", venue="ICLR", year=2015,
        url="https://arxiv.org/abs/1412.6572",
        code="https://github.com/natanielruiz/disrupting-deepfakes (stargan/attacks.py, LinfPGDAttack with k=1)",
        official={"eps": 0.05, "steps": 1, "alpha": "eps", "random_start": True},
        notes="One sign step of size ε from a random start (R+FGSM); PDB lists FGSM among its defenses.",
    )

    def __init__(self, eps: float = EPS, alpha: float | None = None, steps: int = 1, seed: int = 0,
                 random_start: bool | None = None):
        super().__init__(eps=eps, alpha=eps if alpha is None else alpha, steps=steps, seed=seed, random_start=random_start)
