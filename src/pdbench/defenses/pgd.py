"""PGD (Madry et al.) as PDB runs it: L∞, uniform random start, sign steps, maximising
MSE(G(x_adv, c), G(x, c)) over all target conditions (and ensemble members). ε 0.05, α 0.01, 30 steps."""

from . import DEFENSES
from .base import IterativeSignAttack


@DEFENSES.register("pgd")
class PGD(IterativeSignAttack):
    random_start = True
