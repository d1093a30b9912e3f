"""Latent Ensemble ATtack (LEAT; Shim et al.): disrupt the generator's *encoder* latent, not its output.

Maximises ‖encode(x_adv) − encode(x)‖² by sign-PGD from a uniform random start (PDB's
``disrupting_methods/LEAT``: ε 0.05, α 0.01, 30 steps). Against an ensemble (several target members, or
``surrogates=[stargan, attgan]``) each member's gradient is divided by its L2 norm before they are summed
(``leat_ensemble.py``), per image here so that batching never changes a result (PDB normalises over the
whole batch tensor, which equals this at batch size 1).

Which latent: AttGAN's is its real encoder's bottleneck. PDB's StarGAN (and AttentionGAN) wrapper returns
``encode(x) = x``, so there the "latent" attack only maximises ‖x_adv − x‖ and never looks at the model:
that variant is kept by name as ``leat-pdb``. ``leat`` uses StarGAN's bottleneck instead: the features after
the first convolution, both down-samplings and the residual blocks (:meth:`StarGAN.encode`), averaged
over the target edits (StarGAN's condition enters at the input).
"""

from __future__ import annotations

from . import DEFENSES
from .base import ALPHA, EPS, STEPS, IterativeSignAttack, Record
from .ensemble import build_target, check_resolution, parse_members

RECORD = Record(
    paper="LEAT: Towards Robust Deepfake Disruption in Real-World Scenarios via Latent Ensemble Attack "
          "(Shim and Yoon)",
    venue="arXiv", year=2023, url="https://arxiv.org/abs/2307.01520",
    code="(no official code; PDB's disrupting_methods/LEAT/leat.py and leat_ensemble.py)",
    official={"eps": 0.05, "alpha": 0.01, "steps": 30, "random_start": True, "loss": "MSE(encode(x_adv), encode(x))",
              "ensemble": "per-model gradient / ‖gradient‖₂, summed, then sign"},
    notes="PDB's StarGAN/AttentionGAN wrappers return encode(x) = x (pdbench: leat-pdb).",
)


class _Latent(IterativeSignAttack):
    grad_norm = "member"
    identity_for: tuple[str, ...] = ()
    objective = "latent disruption"
    record = RECORD

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0,
                 random_start: bool | None = None, surrogates: list | None = None):
        if surrogates is not None:
            parse_members(surrogates)  # bad entries fail now, in one line
        self.surrogates = surrogates
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed, random_start=random_start)

    def config(self) -> dict:
        return {**super().config(), "surrogates": self.surrogates}

    def build_objectives(self) -> list:
        from .objectives import LatentDistance

        return [LatentDistance(identity_for=self.identity_for)]

    def protect(self, x, target, keys=None, progress=None):
        if self.surrogates is not None:
            target = build_target(self.surrogates, x.shape[0], device=x.device, like=target)
            check_resolution(target, x)
        return super().protect(x, target, keys=keys, progress=progress)


@DEFENSES.register("leat")
class LEAT(_Latent):
    """LEAT through each generator's real encoder (StarGAN: the bottleneck after the residual blocks)."""


@DEFENSES.register("leat-pdb")
class LEATPDB(_Latent):
    """LEAT as PDB runs it: StarGAN's "latent" is the image itself (encode(x) = x)."""

    identity_for = ("stargan",)
