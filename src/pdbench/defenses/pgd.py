"""PGD (Madry et al.) as PDB runs it: L∞, uniform random start, sign steps, maximising
MSE(G(x_adv, c), G(x, c)) over all target conditions (and ensemble members). ε 0.05, α 0.01, 30 steps."""

from . import DEFENSES
from .base import IterativeSignAttack, Record


@DEFENSES.register("pgd")
class PGD(IterativeSignAttack):
    random_start = True
    record = Record(
        paper="Towards Deep Learning Models Resistant to Adversarial Attacks",
        venue="ICLR", year=2018, url="https://arxiv.org/abs/1706.06083",
        code="https://github.com/proactivedefensebenchmark/proactivedefensebenchmark (disrupting_methods/PGD)",
        official={"eps": 0.05, "alpha": 0.01, "steps": 30, "random_start": True, "loss": "MSE(G(x_adv), G(x))",
                  "source": "PDB's PGD on the [-1, 1] scale"},
        notes="A classification attack; as a deepfake defense it is PDB's baseline (same loss as Disrupting's I-FGSM).",
    )
