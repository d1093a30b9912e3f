"""I-FGSM (Kurakin et al.) as the Disrupting Deepfakes code runs it: sign steps on MSE(G(x_adv), G(x))
from a uniform random start (``LinfPGDAttack`` with ``self.rand = True``). That is PGD by construction,
so it is declared an alias of ``pgd``: the same x_adv for the same seed. (The paper's form without a
random start, ``random_start=False``, never moves: the loss has zero gradient at x.)"""

from . import DEFENSES
from .base import IterativeSignAttack, Record


@DEFENSES.register("ifgsm")
class IFGSM(IterativeSignAttack):
    random_start = True
    alias_of = "pgd"
    record = Record(
        paper="Adversarial examples in the physical world (I-FGSM), as used in Disrupting Deepfakes",
        venue="ICLR workshop", year=2017, url="https://arxiv.org/abs/1607.02533",
        code="https://github.com/natanielruiz/disrupting-deepfakes (stargan/attacks.py, LinfPGDAttack.perturb)",
        official={"eps": 0.05, "alpha": 0.01, "steps": 10, "random_start": True},
        notes="pdbench's defaults follow PDB (30 steps); this is what pdbench's `disrupting` was before it became PDB's blur variant.",
    )
