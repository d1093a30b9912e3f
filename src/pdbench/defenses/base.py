"""The defense interface and the shared PGD machinery.

``Defense.protect(x, target, keys=None) -> x_adv`` takes images in the pdbench convention
(:mod:`pdbench.tensors`) and a :class:`~pdbench.generators.Target` (one generator or an ensemble, with
the edit conditions per image) and returns protected images with ``‖x_adv − x‖∞ ≤ ε`` exactly (checked
in float32) and values inside [-1, 1]. ``keys`` are per-image integers that seed each image's random
start, so a batch and a per-image loop give the same result.

Defaults (the PDB code, on the [-1, 1] scale) live here and nowhere else.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..generators.base import Target
from ..tensors import check_images

EPS = 0.05  # L∞ budget on [-1, 1] (= 0.025 on [0, 1])
ALPHA = 0.01  # step size
STEPS = 30  # iterations


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto {‖x_adv − x‖∞ ≤ ε} ∩ [-1, 1] so that ``|x_adv − x| <= ε`` holds exactly.

    The bound is the largest float of x's dtype not above ε, so the check holds in float32 and against
    the Python float ε alike.
    """
    eps_t = torch.tensor(eps, dtype=x.dtype, device=x.device)
    if float(eps_t) > eps:
        eps_t = torch.nextafter(eps_t, torch.zeros_like(eps_t))
    y = torch.min(torch.max(x_adv, x - eps_t), x + eps_t).clamp(-1.0, 1.0)
    for _ in range(4):  # rounding of x ± ε can overshoot by one ulp: step back towards x
        over = (y - x).abs() > eps_t
        if not bool(over.any()):
            break
        y = torch.where(over, torch.nextafter(y, x), y)
    return y


def per_key_uniform(shape: tuple[int, ...], keys: torch.Tensor, eps: float, seed: int, device) -> torch.Tensor:
    """Uniform noise in [-ε, ε] per image, reproducible from (seed, key) alone."""
    out = torch.empty(shape)
    for i, k in enumerate(keys.tolist()):
        g = torch.Generator().manual_seed(seed * 1_000_003 + int(k))
        out[i].uniform_(-eps, eps, generator=g)
    return out.to(device)


class Defense:
    """Base class. Subclasses set ``access``/``norm`` and implement ``protect``."""

    name: str = "?"
    access: str = "white-box"
    norm: str = "linf"
    methodology: str = "optimization"
    objective: str = "synthesis disruption"

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0):
        if not 0 < eps <= 2:
            raise InputError(f"{self.name}: eps must be in (0, 2] on the [-1, 1] scale, got {eps}")
        if steps < 0 or alpha < 0:
            raise InputError(f"{self.name}: steps and alpha must be non-negative, got steps={steps}, alpha={alpha}")
        self.eps, self.alpha, self.steps, self.seed = float(eps), float(alpha), int(steps), int(seed)

    def config(self) -> dict:
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "seed": self.seed}

    def protect(self, x: torch.Tensor, target: Target, keys: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _keys(x: torch.Tensor, keys) -> torch.Tensor:
        if keys is None:
            return torch.arange(x.shape[0])
        keys = torch.as_tensor(keys)
        if keys.shape != (x.shape[0],):
            raise InputError(f"keys must have one entry per image ({x.shape[0]}), got shape {tuple(keys.shape)}")
        return keys


def disruption_loss(outputs: list[torch.Tensor], clean: list[torch.Tensor], target: Target) -> torch.Tensor:
    """Σ over images of the weighted mean (over members, conditions, pixels) squared distance to the clean outputs.

    Summing over images keeps each image's gradient independent of the others in the batch.
    """
    total = 0.0
    for out, ref, m in zip(outputs, clean, target.members):
        per_image = (out - ref).pow(2).mean(dim=(0, 2, 3, 4))  # (N,)
        total = total + m.weight * per_image.sum()
    return total


class IterativeSignAttack(Defense):
    """Projected sign-gradient ascent on :func:`disruption_loss` (PGD / I-FGSM / FGSM).

    ``random_start``: begin from x + U(-ε, ε). Without it the first gradient of
    MSE(G(x_adv), G(x)) at x_adv = x is exactly zero and the attack never moves; this is why the
    official Disrupting code (``LinfPGDAttack``, ``self.rand = True``) starts at random too.
    """

    random_start: bool = True

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0,
                 random_start: bool | None = None):
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)
        if random_start is not None:
            self.random_start = bool(random_start)

    def config(self) -> dict:
        return {**super().config(), "random_start": self.random_start}

    def transform(self, x_adv: torch.Tensor, step: int) -> torch.Tensor:
        """Hook applied to the perturbed image inside the loop (identity; blur variants override)."""
        return x_adv

    def protect(self, x: torch.Tensor, target: Target, keys: torch.Tensor | None = None) -> torch.Tensor:
        check_images(x, f"{self.name} input")
        keys = self._keys(x, keys)
        with torch.inference_mode():
            clean = [o.clone() for o in target.outputs(x)]
        x = x.detach()
        if self.random_start:
            x_adv = project_linf(x + per_key_uniform(tuple(x.shape), keys, self.eps, self.seed, x.device), x, self.eps)
        else:
            x_adv = x.clone()
        for step in range(self.steps):
            x_adv.requires_grad_(True)
            loss = disruption_loss(target.outputs(self.transform(x_adv, step)), clean, target)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = project_linf(x_adv.detach() + self.alpha * grad.sign(), x, self.eps)
        return x_adv.detach()
