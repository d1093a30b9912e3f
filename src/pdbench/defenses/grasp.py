"""GRASP (Li et al., 2025): disruption with imperceptibility losses whose conflicting gradients are projected.

GRASP maximises the output disruption L_MSE = MSE(G(x_adv, c), G(x, c)) while minimising a structural
loss L_SSIM = 1 − SSIM(x_adv, x) and a low-frequency loss L_LF between x and x_adv. Each loss gives its
own gradient; the gradients are smoothed with a Gaussian and, where two of them conflict (cos < 0),
each is projected onto the normal plane of the other before they are combined into one step.

There is no public code, and the paper's text available to pdbench (abstract, figure captions and the
method's outline) leaves the following open. pdbench's choices, all constructor parameters:

* **Losses** (per image, so each image's gradient is its own): L_MSE is
  :class:`~pdbench.defenses.objectives.OutputDisruption` (mean over the target's edit conditions and
  pixels); L_SSIM is 1 − Gaussian SSIM (window σ 1.5, K1 0.01, K2 0.03) of the [0, 1] images, the
  standard SSIM (:class:`~pdbench.defenses.objectives.SSIMPenalty` through
  :func:`pdbench.metrics.functional.ssim`; SSIM is not shift-invariant, so not of the [-1, 1] values
  with range 2); L_LF is the MSE between Gaussian low-passed x_adv and x (``lf_sigma`` 2.0,
  kernel radius round(3σ) = 6, i.e. 13 taps, reflect padding: :func:`pdbench.filters.apply_blur`).
* **Gradient smoothing**: each of the three gradients is Gaussian-blurred (``grad_sigma`` 1.0, 7 taps)
  and then scaled to unit L2 norm per image, so the loss weights are weights of directions, not of
  loss scales (L_MSE's gradient is orders of magnitude larger than the others near x).
* **Projection** (``project``): for each gradient g_i in the fixed order (MSE, SSIM, LF) and each other
  gradient g_j in the same order, if cos(g_i', g_j) < 0 (per image), g_i' ← g_i' − (g_i'·g_j / ‖g_j‖²) g_j,
  with g_j the *unprojected* (smoothed, normalised) gradient (PCGrad's rule, with a fixed order instead of
  a random one so results are reproducible). For two gradients this makes the combined step's cosine with
  each of them non-negative; with three it usually does (:func:`resolve_conflicts` documents this).
* **Weights**: step direction d = 1·g_MSE' + ``w_ssim``·g_SSIM' + ``w_lf``·g_LF' (``w_ssim`` 0.3, ``w_lf`` 0.3: on 4 held-out faces against StarGAN, weights 1.0 kept
  PSNR ≈ 50 dB but left the disruption MSE under 0.05; 0.3 and 0.1 both disrupt at PSNR ≈ 45.5–46 dB).
* **Step rule**: x_adv ← Π_ε(x_adv + α·d/‖d‖∞) per image (the largest pixel change per step is α, so
  the step has PGD's scale but keeps the direction's shape; a sign step would push every pixel by α and
  undo the imperceptibility terms), α 0.01 and 30 steps (PGD's); Π_ε is :func:`~pdbench.defenses.base.project_linf`
  (‖x_adv − x‖∞ ≤ ε exactly, and [-1, 1]).
* **Start**: x + U(−``start``·ε, ``start``·ε) per image (``start`` 0.2; at x_adv = x the gradients of L_MSE and
  L_SSIM are exactly zero), seeded per image key.
* **ε** 0.05 on [-1, 1] (pdbench's common budget, = 0.025 on [0, 1]); cosines are per image, never per batch.

``grasp-noproj`` is the ablation without projection (``project=False``): the same smoothed, normalised,
weighted gradients simply summed.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from . import DEFENSES
from .base import EPS, ObjectiveDefense, Record, per_key_uniform, project_linf
from .objectives import OutputDisruption, PerceptualPenalty, SSIMPenalty

RECORD = Record(
    paper="Towards Imperceptible Adversarial Defense: A Gradient-Driven Shield against Facial Manipulations",
    venue="arXiv", year=2025, url="https://arxiv.org/abs/2510.01699",
    code="none public (implemented by pdbench from the paper)",
    official={"losses": "max MSE(G(x_adv), G(x)); min 1 − SSIM(x_adv, x); min low-frequency loss(x_adv, x)",
              "conflicts": "mutual projection onto each other's normal planes when cos < 0",
              "smoothing": "Gaussian smoothing of the gradients",
              "unspecified_in_available_text": ["low-frequency filter", "kernel sizes / σ", "loss weights",
                                                "step rule", "projection order", "ε", "steps", "step size"]},
    reported={"abstract: StarGAN/AttGAN/HiSD attribute editing, PSNR": "> 40 dB",
              "abstract: SSIM": 0.99,
              "abstract: defense success rate": "100 %"},
    notes="pdbench's choices for every open detail are in the module docstring and the constructor defaults.",
)


def _flat_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(dim=1)


def _per_image(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image cosine between two batches of gradients (0 where either is zero)."""
    na, nb = a.flatten(1).norm(dim=1), b.flatten(1).norm(dim=1)
    return _flat_dot(a, b) / (na * nb).clamp_min(1e-30)


def resolve_conflicts(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """GRASP's mutual projection, per image: each g_i is projected onto the normal plane of every g_j it
    conflicts with (cos < 0), in list order, against the unprojected g_j.

    For two gradients the sum of the results has a non-negative dot product with both originals
    (g_1'·g_2 = 0 and (g_1' + g_2')·g_1 = ‖g_1‖² − (g_1·g_2)²/‖g_2‖² ≥ 0); for three or more that
    holds in most but not all configurations (as for PCGrad).
    """
    out = []
    for i, g in enumerate(grads):
        gi = g.clone()
        for j, gj in enumerate(grads):
            if i == j:
                continue
            dot = _flat_dot(gi, gj)
            conflict = dot < 0
            if not bool(conflict.any()):
                continue
            coef = torch.where(conflict, dot / _flat_dot(gj, gj).clamp_min(1e-30), torch.zeros_like(dot))
            gi = gi - _per_image(coef, gi) * gj
        out.append(gi)
    return out


class GradientProjectionAscent:
    """GRASP's optimiser: per-objective gradients, Gaussian-smoothed and unit-normalised per image,
    conflicts resolved by :func:`resolve_conflicts` (``project``), weighted sum, an L∞-normalised step."""

    key = "grasp"

    def __init__(self, alpha: float, steps: int, grad_sigma: float, project: bool, start: float):
        self.alpha, self.steps, self.grad_sigma = float(alpha), int(steps), float(grad_sigma)
        self.project, self.start = bool(project), float(start)

    def config(self) -> dict:
        return {"name": self.key, "alpha": self.alpha, "steps": self.steps, "grad_sigma": self.grad_sigma,
                "project": self.project, "start": self.start}

    def directions(self, defense, x_adv, step, x, target, refs) -> list[torch.Tensor]:
        """Each objective's smoothed, unit-norm ascent direction at x_adv (one tensor per objective)."""
        from ..filters import apply_blur

        x_adv = x_adv.detach().requires_grad_(True)
        xt = defense.transform(x_adv, step)
        grads = []
        for k, (obj, ref) in enumerate(zip(defense.objectives, refs)):
            loss = sum(w * per_image.sum() for w, per_image in obj.terms(xt, x, target, ref))
            (g,) = torch.autograd.grad(loss, x_adv, retain_graph=k < len(defense.objectives) - 1)
            if self.grad_sigma > 0:
                g = apply_blur(g, "gaussian", self.grad_sigma)
            grads.append(g / _per_image(g.flatten(1).norm(dim=1).clamp_min(1e-30), g))
        return grads

    def combine(self, defense, grads: list[torch.Tensor]) -> torch.Tensor:
        if self.project:
            grads = resolve_conflicts(grads)
        d = torch.zeros_like(grads[0])
        for obj, g in zip(defense.objectives, grads):
            d = d + obj.weight * g
        return d

    def run(self, defense, x, target, keys, refs, progress=None) -> torch.Tensor:
        eps = defense.eps
        x_adv = x.clone()
        if self.start > 0:
            x_adv = project_linf(x + per_key_uniform(tuple(x.shape), keys, self.start * eps, defense.seed, x.device),
                                 x, eps)
        for step in range(self.steps):
            d = self.combine(defense, self.directions(defense, x_adv, step, x, target, refs))
            scale = d.flatten(1).abs().amax(dim=1).clamp_min(1e-30)
            x_adv = project_linf(x_adv.detach() + self.alpha * d / _per_image(scale, d), x, eps)
            if progress is not None:
                progress(step + 1, self.steps)
        return x_adv


@DEFENSES.register("grasp")
class GRASP(ObjectiveDefense):
    """GRASP with gradient projection (see the module docstring for every choice pdbench made)."""

    record = RECORD
    project: bool = True

    def __init__(self, eps: float = EPS, alpha: float = 0.01, steps: int = 30, seed: int = 0,
                 w_ssim: float = 0.3, w_lf: float = 0.3, lf_sigma: float = 2.0, grad_sigma: float = 1.0,
                 start: float = 0.2, project: bool | None = None):
        if project is not None:
            self.project = bool(project)
        if min(w_ssim, w_lf, grad_sigma) < 0 or lf_sigma <= 0 or not 0 <= start <= 1:
            raise InputError(f"grasp: w_ssim, w_lf and grad_sigma must be >= 0, lf_sigma > 0 and start in [0, 1]; got "
                             f"w_ssim={w_ssim}, w_lf={w_lf}, grad_sigma={grad_sigma}, lf_sigma={lf_sigma}, start={start}")
        self.w_ssim, self.w_lf, self.lf_sigma = float(w_ssim), float(w_lf), float(lf_sigma)
        self.grad_sigma, self.start = float(grad_sigma), float(start)
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)

    def config(self) -> dict:
        return {**super().config(), "w_ssim": self.w_ssim, "w_lf": self.w_lf, "lf_sigma": self.lf_sigma,
                "grad_sigma": self.grad_sigma, "start": self.start, "project": self.project}

    def build_objectives(self) -> list:
        return [OutputDisruption(1.0), SSIMPenalty(self.w_ssim), PerceptualPenalty(self.w_lf, sigma=self.lf_sigma)]

    def build_optimiser(self):
        return GradientProjectionAscent(self.alpha, self.steps, self.grad_sigma, self.project, self.start)


@DEFENSES.register("grasp-noproj")
class GRASPNoProjection(GRASP):
    """GRASP's ablation: the same gradients summed without resolving their conflicts (``project=False``)."""

    project = False
