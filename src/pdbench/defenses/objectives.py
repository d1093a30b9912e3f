"""Objectives a defense maximises. Each is weighted; the defense sums ``weight × Σ_terms``.

An objective has ``prepare(x, target)`` (its references on the clean images, computed once without
gradients) and ``terms(x_adv, x, target, ref)``: a list of ``(member_weight, per_image_loss)`` with one
entry per ensemble member (or a single entry for objectives that do not look at a generator).
``per_image_loss`` has shape (N,) and is to be *maximised*; penalties return a negative value.
Keeping terms per member lets an optimiser normalise each member's gradient (LEAT's ensemble rule).

``OBJECTIVES`` maps config names to classes, so a ``composite`` defense (or any config) can list
``[{name: output, weight: 1}, {name: ssim, weight: 0.1}]``.
"""

from __future__ import annotations

import torch

from ..errors import InputError, UnknownNameError
from ..generators.base import Generator, Target


class Objective:
    key: str = "?"

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def prepare(self, x: torch.Tensor, target: Target):
        return None

    def terms(self, x_adv: torch.Tensor, x: torch.Tensor, target: Target, ref) -> list[tuple[float, torch.Tensor]]:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.key, "weight": self.weight}


class OutputDisruption(Objective):
    """MSE(G(x_adv, c), G(x, c)) averaged over the member's conditions and pixels (PDB's PGD loss)."""

    key = "output"

    def prepare(self, x, target):
        return [o.clone() for o in target.outputs(x)]

    def terms(self, x_adv, x, target, ref):
        outs = target.outputs(x_adv)
        return [(m.weight, (out - clean).pow(2).mean(dim=(0, 2, 3, 4))) for out, clean, m in zip(outs, ref, target.members)]


def latents(g: Generator, x: torch.Tensor, cs: torch.Tensor) -> torch.Tensor:
    """The generator's encoder output for every condition: (K, N, ...) — computed once when the encoder
    does not see the condition (``conditional_encoder = False``, e.g. AttGAN)."""
    if not getattr(g, "conditional_encoder", True):
        return g.encode(x, None).unsqueeze(0)
    k, n = cs.shape[:2]
    xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
    h = g.encode(xs, cs.reshape(k * n, -1))
    return h.reshape(k, n, *h.shape[1:])


class LatentDistance(Objective):
    """‖encode(x_adv) − encode(x)‖² (mean over conditions and latent elements): LEAT's loss.

    ``identity_for``: generator names whose "latent" is the image itself, as PDB's wrappers return
    ``encode(x) = x`` for StarGAN (LEAT-PDB); the loss there is ‖x_adv − x‖².
    """

    key = "latent"

    def __init__(self, weight: float = 1.0, identity_for: tuple[str, ...] = ()):
        super().__init__(weight)
        self.identity_for = tuple(identity_for)

    def _latent(self, g, x, cs):
        if g.name in self.identity_for:
            return x.unsqueeze(0)
        try:
            return latents(g, x, cs.to(x.device))
        except NotImplementedError:
            raise InputError(f"latent objective: generator {g.name!r} has no encoder (encode); "
                             "use an output objective for it") from None

    def prepare(self, x, target):
        return [self._latent(m.generator, x, m.conditions) for m in target.members]

    def terms(self, x_adv, x, target, ref):
        out = []
        for m, h0 in zip(target.members, ref):
            h = self._latent(m.generator, x_adv, m.conditions)
            d = (h - h0).pow(2)
            out.append((m.weight, d.transpose(0, 1).flatten(1).mean(dim=1)))
        return out

    def config(self):
        return {**super().config(), "identity_for": list(self.identity_for)}


class PixelDistance(Objective):
    """‖x_adv − x‖² per image (what LEAT reduces to when ``encode(x) = x``)."""

    key = "pixel"

    def terms(self, x_adv, x, target, ref):
        return [(1.0, (x_adv - x).pow(2).flatten(1).mean(dim=1))]


class Retention(Objective):
    """Retention (Retentive defense): G(x_adv, c) ≈ x_adv, i.e. maximise −MSE(G(x_adv, c), x_adv)."""

    key = "retention"

    def terms(self, x_adv, x, target, ref):
        outs = target.outputs(x_adv)
        return [(m.weight, -(out - x_adv.unsqueeze(0)).pow(2).mean(dim=(0, 2, 3, 4))) for out, m in zip(outs, target.members)]


class SSIMPenalty(Objective):
    """Imperceptibility: maximise −(1 − SSIM(x_adv, x)) (Gaussian SSIM of :mod:`pdbench.metrics.functional`)."""

    key = "ssim"

    def terms(self, x_adv, x, target, ref):
        from ..metrics.functional import ssim

        return [(1.0, -(1.0 - ssim(x_adv, x)))]


class PerceptualPenalty(Objective):
    """Imperceptibility: maximise −MSE of Gaussian-blurred x_adv and x (the low-frequency change, GRASP-style)."""

    key = "lowfreq"

    def __init__(self, weight: float = 1.0, sigma: float = 1.0):
        super().__init__(weight)
        self.sigma = float(sigma)

    def terms(self, x_adv, x, target, ref):
        from ..filters import apply_blur

        return [(1.0, -(apply_blur(x_adv, "gaussian", self.sigma) - apply_blur(x, "gaussian", self.sigma)).pow(2).flatten(1).mean(dim=1))]

    def config(self):
        return {**super().config(), "sigma": self.sigma}


class IdentityDistance(Objective):
    """1 − cos(E(x_adv), E(x)) with pdbench's identity embedder (MobileFaceNet, fixed CelebA crop)."""

    key = "identity"

    def __init__(self, weight: float = 1.0, box: str = "celeba"):
        super().__init__(weight)
        self.box = box

    def _embedder(self, x):
        from ..faces.identity import get_embedder

        return get_embedder(self.box, x.device)

    def prepare(self, x, target):
        return self._embedder(x)(x)

    def terms(self, x_adv, x, target, ref):
        e = self._embedder(x_adv)(x_adv)
        # ref was embedded under prepare()'s inference_mode: a plain copy may enter the autograd graph
        return [(1.0, 1.0 - (e * ref.clone()).sum(dim=1))]

    def config(self):
        return {**super().config(), "box": self.box}


OBJECTIVES: dict[str, type[Objective]] = {c.key: c for c in (OutputDisruption, LatentDistance, PixelDistance, Retention,
                                                               SSIMPenalty, PerceptualPenalty, IdentityDistance)}


def build_objective(spec) -> Objective:
    """An objective from a config entry: ``"output"`` or ``{name: latent, weight: 0.5}``."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name", None)
    if name not in OBJECTIVES:
        raise UnknownNameError(f"unknown objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}")
    try:
        return OBJECTIVES[name](**spec)
    except TypeError:
        raise InputError(f"objective {name!r} does not take {sorted(spec)}") from None
