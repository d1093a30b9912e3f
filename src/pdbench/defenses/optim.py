"""Optimisers of an :class:`~pdbench.defenses.base.ObjectiveDefense`'s loss.

Each has ``run(defense, x, target, keys, refs, progress) -> x_adv`` and calls ``defense.gradient`` or
``defense.loss``, so the objectives never know which optimiser drives them.

* :class:`SignPGD`: x ← Π_ε(x + α·sign ∇) from a per-image random start (PGD, I-FGSM, FGSM).
* :class:`AdamDelta`: Adam on a reparametrised perturbation: ``"tanh"`` (δ = ε·tanh w in RGB, always
  inside the ε-ball) or ``"lab-ab"`` (w added to the a/b channels of Lab, clamped to ±ε: Anti-Forgery),
  with an optional per-image gradient-norm clip.
* A universal δ shared by all images is trained by :func:`pdbench.defenses.cmua.train_universal`.

``OPTIMISERS`` maps config names to classes (``{name: adam, lr: 0.001, steps: 100, param: tanh}``).
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError, UnknownNameError
from .base import project_linf, per_key_uniform


SCHEDULES = ("constant", "cosine")


class SignPGD:
    """x ← Π_ε(x + α_t·sign ∇). ``schedule``: ``constant`` (α_t = α, PDB's PGD) or ``cosine``
    (α_t = α·½(1 + cos(π t / T)), t = 0…T−1: large steps first, vanishing ones at the end; at α = 0.02 it
    reaches more than the constant α = 0.01 through the published photo's resize,
    ``benchmarks/publish_bound.py``)."""

    key = "sign-pgd"

    def __init__(self, alpha: float, steps: int, random_start: bool = True, schedule: str = "constant"):
        if schedule not in SCHEDULES:
            raise InputError(f"sign-pgd: schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        self.alpha, self.steps, self.random_start = float(alpha), int(steps), bool(random_start)
        self.schedule = schedule

    def config(self) -> dict:
        cfg = {"name": self.key, "alpha": self.alpha, "steps": self.steps, "random_start": self.random_start}
        return cfg if self.schedule == "constant" else {**cfg, "schedule": self.schedule}  # old keys stay

    def step_size(self, step: int) -> float:
        """α_t of step ``step`` (0-based)."""
        if self.schedule == "cosine":
            return self.alpha * 0.5 * (1 + math.cos(math.pi * step / self.steps))
        return self.alpha

    def iterates(self, defense, x, target, keys, refs):
        """The iterates x_adv: the start, then after each of the ``steps`` steps (``steps + 1`` in all)."""
        eps = defense.eps
        if self.random_start:
            x_adv = project_linf(x + per_key_uniform(tuple(x.shape), keys, eps, defense.seed, x.device), x, eps)
        else:
            x_adv = x.clone()
        yield x_adv
        for step in range(self.steps):
            grad = defense.gradient(x_adv, step, x, target, refs)
            x_adv = project_linf(x_adv.detach() + self.step_size(step) * grad.sign(), x, eps)
            yield x_adv

    def run(self, defense, x, target, keys, refs, progress=None) -> torch.Tensor:
        for step, x_adv in enumerate(self.iterates(defense, x, target, keys, refs)):
            if progress is not None and step > 0:
                progress(step, self.steps)
        return x_adv


class TanhParam:
    """δ = ε·tanh(w) on RGB; w starts at atanh of a per-image uniform start (at δ = 0 the gradient of an
    output-disruption loss is exactly zero)."""

    def __init__(self, eps: float, seed: int):
        self.eps, self.seed = eps, seed

    def init(self, x, keys):
        u = per_key_uniform(tuple(x.shape), keys, 1.0, self.seed, x.device).mul_(0.99)
        return torch.atanh(u)

    def apply(self, w, x):
        return (x + self.eps * torch.tanh(w)).clamp(-1.0, 1.0)

    def final(self, w, x):
        return project_linf(self.apply(w, x), x, self.eps)


class LabABParam:
    """Anti-Forgery's colour-space perturbation: w (N, 2, H, W) is added to Lab's normalised a/b channels
    after clamping to ±ε; L is left as it is. Starts at w = 0 (the official code)."""

    def __init__(self, eps: float, seed: int):
        self.eps = eps

    def init(self, x, keys):
        return torch.zeros(x.shape[0], 2, *x.shape[2:], device=x.device, dtype=x.dtype)

    def apply(self, w, x):
        from .colour import lab_to_rgb, rgb_to_lab

        lab = rgb_to_lab(x)
        lab = torch.cat([lab[:, :1], lab[:, 1:] + w.clamp(-self.eps, self.eps)], dim=1)
        return lab_to_rgb(lab).clamp(-1.0, 1.0)

    def final(self, w, x):
        return self.apply(w, x)


PARAMS = {"tanh": TanhParam, "lab-ab": LabABParam}


ADAM_EPS = 1e-8


class AdamDelta:
    key = "adam"

    def __init__(self, lr: float, steps: int, param: str = "tanh", clip_grad: float | None = None,
                 betas: tuple[float, float] = (0.9, 0.999)):
        if param not in PARAMS:
            raise InputError(f"adam: param must be one of {sorted(PARAMS)}, got {param!r}")
        self.lr, self.steps, self.param = float(lr), int(steps), param
        self.clip_grad = None if clip_grad is None else float(clip_grad)
        self.betas = tuple(float(b) for b in betas)

    def config(self) -> dict:
        return {"name": self.key, "lr": self.lr, "steps": self.steps, "param": self.param, "clip_grad": self.clip_grad,
                "betas": list(self.betas)}

    def run(self, defense, x, target, keys, refs, progress=None) -> torch.Tensor:
        if defense.grad_norm != "none":
            raise InputError(f"{defense.name}: per-member gradient normalisation needs the sign-pgd optimiser")
        p = PARAMS[self.param](defense.eps, defense.seed)
        w = p.init(x, keys)
        m, v = torch.zeros_like(w), torch.zeros_like(w)
        b1, b2 = self.betas
        for step in range(self.steps):
            w.requires_grad_(True)
            loss = defense.loss(p.apply(w, x), step, x, target, refs)
            (g,) = torch.autograd.grad(-loss, w)
            w = w.detach()
            if self.clip_grad is not None:  # per image, as the official code does at batch size 1
                norm = g.flatten(1).norm(dim=1).view(-1, *([1] * (g.dim() - 1)))
                g = g * (self.clip_grad / (norm + 1e-6)).clamp(max=1.0)
            # torch.optim.Adam's update (without importing torch.optim, which pulls in the compiler stack)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            t = step + 1
            denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(ADAM_EPS)
            w = w.addcdiv(m, denom, value=-self.lr / (1 - b1**t))
            if progress is not None:
                progress(step + 1, self.steps)
        with torch.no_grad():
            return p.final(w.detach(), x)


OPTIMISERS = {c.key: c for c in (SignPGD, AdamDelta)}


def build_optimiser(spec, alpha: float, steps: int):
    """An optimiser from a config entry (``"sign-pgd"`` or ``{name: adam, lr: ...}``); α and steps default
    to the defense's own."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name", None)
    if name not in OPTIMISERS:
        raise UnknownNameError(f"unknown optimiser {name!r}; known: {', '.join(sorted(OPTIMISERS))}")
    spec.setdefault("steps", steps)
    if name == "sign-pgd":
        spec.setdefault("alpha", alpha)
    try:
        return OPTIMISERS[name](**spec)
    except TypeError:
        raise InputError(f"optimiser {name!r} does not take {sorted(spec)}") from None
