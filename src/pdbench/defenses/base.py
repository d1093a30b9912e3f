"""The defense contract (v2): a defense is weighted objectives plus an optimiser, or a trained model.

``Defense.protect(x, target, keys=None, progress=None) -> x_adv`` takes images in the pdbench
convention (:mod:`pdbench.tensors`) and a :class:`~pdbench.generators.Target` (one generator or an
ensemble, with the edit conditions per image) and returns protected images inside [-1, 1] whose change
respects the defense's declared ``norm`` with budget ε: ``"linf"`` means ``‖x_adv − x‖∞ ≤ ε`` exactly (checked
in float32); ``"lab-ab"`` (Anti-Forgery) means only the a/b channels of CIE Lab move, each by at most ε
in the normalised units ab/110. ``keys`` are per-image integers that seed each image's random start, so
a batch and a per-image loop give the same result. ``progress(step, total)`` is called after each step.

Three kinds of defense share this base:

* :class:`ObjectiveDefense`: a list of weighted :mod:`~pdbench.defenses.objectives` maximised by one
  :mod:`~pdbench.defenses.optim` optimiser (sign-PGD, Adam on a reparametrised δ, ...);
* :class:`ModelDefense`: a trained network (or a stored universal δ) that outputs δ in one pass; its
  weights are part of :meth:`Defense.fingerprint`;
* anything else that overrides :meth:`Defense.protect`.

Every registered defense carries a :class:`Record` (``DEFENSES.get(name).record``): the paper, the
official code and hyper-parameters, pdbench's defaults and the numbers the paper reports. A defense that
is by construction the same attack as another registered one says so with ``alias_of``.

Defaults (the PDB code, on the [-1, 1] scale) live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

from ..errors import InputError
from ..generators.base import Target
from ..tensors import check_images

EPS = 0.05  # L∞ budget on [-1, 1] (= 0.025 on [0, 1])
ALPHA = 0.01  # step size
STEPS = 30  # iterations

Progress = Callable[[int, int], None]


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


def config_hash(obj) -> str:
    """sha256 (16 hex digits) of a JSON-able description (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def tensor_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 (16 hex digits) of named tensors (names and bytes, sorted by name)."""
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Record:
    """What a method is and where its numbers come from (RobustBench's model_info, per defense).

    ``official``: the hyper-parameters of the official code (or paper, where there is no code).
    ``reported``: numbers the paper itself reports, each keyed by a short description that says where
    (table, setting); only numbers read in the paper, never numbers pdbench measured.
    ``defaults`` (pdbench's own) are read from the class's constructor by :meth:`Defense.info`.
    """

    paper: str
    venue: str = ""
    year: int | None = None
    url: str = ""  # arXiv or DOI
    code: str = ""  # official code
    official: dict = field(default_factory=dict)
    reported: dict = field(default_factory=dict)
    notes: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class Defense:
    """Base class. Subclasses set ``access``/``norm``/``record`` and implement ``protect``."""

    name: str = "?"
    access: str = "white-box"
    norm: str = "linf"  # how ε applies: "linf" on RGB, "lab-ab" on the a/b channels of Lab, "none"
    methodology: str = "optimization"
    objective: str = "synthesis disruption"
    record: Record | None = None
    alias_of: str | None = None  # registered name of the defense this one is, by construction

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0):
        if not 0 < eps <= 2:
            raise InputError(f"{self.name}: eps must be in (0, 2] on the [-1, 1] scale, got {eps}")
        if steps < 0 or alpha < 0:
            raise InputError(f"{self.name}: steps and alpha must be non-negative, got steps={steps}, alpha={alpha}")
        self.eps, self.alpha, self.steps, self.seed = float(eps), float(alpha), int(steps), int(seed)

    def config(self) -> dict:
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "seed": self.seed}

    def fingerprint(self) -> str:
        """What produced a result, for cache keys: the name and configuration (model-based: + weights)."""
        return config_hash({"defense": self.name, **self.config()})

    @classmethod
    def defaults(cls) -> dict:
        """pdbench's defaults: the constructor's keyword defaults."""
        return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                if k != "self" and p.default is not inspect.Parameter.empty}

    @classmethod
    def info(cls) -> dict:
        """The method's record with pdbench's defaults, access, norm and ε (for ``pdbench list``)."""
        rec = cls.record.as_dict() if cls.record is not None else {}
        d = cls.defaults()
        return {"name": cls.name, **rec, "defaults": d, "access": cls.access, "norm": cls.norm,
                "eps": d.get("eps"), "methodology": cls.methodology, "objective": cls.objective,
                "alias_of": cls.alias_of}

    def protect(self, x: torch.Tensor, target: Target, keys: torch.Tensor | None = None,
                progress: Progress | None = None) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _keys(x: torch.Tensor, keys) -> torch.Tensor:
        if keys is None:
            return torch.arange(x.shape[0])
        keys = torch.as_tensor(keys)
        if keys.shape != (x.shape[0],):
            raise InputError(f"keys must have one entry per image ({x.shape[0]}), got shape {tuple(keys.shape)}")
        return keys


def takes_progress(defense) -> bool:
    """Whether ``defense.protect`` takes a per-step ``progress(step, total)`` callback (every defense of
    this package does; a user's older plug-in may not)."""
    return "progress" in inspect.signature(defense.protect).parameters


class ObjectiveDefense(Defense):
    """Weighted objectives maximised by one optimiser.

    Subclasses (or the config-built ``composite`` defense) implement :meth:`build_objectives` and
    :meth:`build_optimiser`. ``grad_norm="member"`` divides each ensemble member's gradient by its
    per-image L2 norm before they are summed (LEAT's ensemble rule), so no member dominates.
    """

    grad_norm: str = "none"

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0):
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)
        self.objectives = self.build_objectives()
        self.optimiser = self.build_optimiser()

    def build_objectives(self) -> list:
        raise NotImplementedError

    def build_optimiser(self):
        raise NotImplementedError

    def transform(self, x_adv: torch.Tensor, step: int) -> torch.Tensor:
        """Hook applied to the perturbed image before the objectives see it (identity; blur variants override)."""
        return x_adv

    # -- what the optimisers call ----------------------------------------------------------------
    def prepare(self, x: torch.Tensor, target: Target) -> list:
        """Each objective's references on the clean images (computed once, without gradients)."""
        with torch.inference_mode():
            return [o.prepare(x, target) for o in self.objectives]

    def _terms(self, x_adv: torch.Tensor, step: int, x: torch.Tensor, target: Target, refs: list) -> list[torch.Tensor]:
        """Weighted per-member scalar terms (each a Σ over images) of the total loss."""
        xt = self.transform(x_adv, step)
        terms = []
        for obj, ref in zip(self.objectives, refs):
            for w, per_image in obj.terms(xt, x, target, ref):
                terms.append(obj.weight * (w * per_image.sum()))
        return terms

    def loss(self, x_adv: torch.Tensor, step: int, x: torch.Tensor, target: Target, refs: list) -> torch.Tensor:
        """The total loss to maximise (a sum over images, so each image's gradient is its own)."""
        total = 0.0
        for t in self._terms(x_adv, step, x, target, refs):
            total = total + t
        return total

    def gradient(self, x_adv: torch.Tensor, step: int, x: torch.Tensor, target: Target, refs: list) -> torch.Tensor:
        """∇ of :meth:`loss` at x_adv (per-member normalised when ``grad_norm == "member"``)."""
        x_adv = x_adv.detach().requires_grad_(True)
        if self.grad_norm == "none":
            (grad,) = torch.autograd.grad(self.loss(x_adv, step, x, target, refs), x_adv)
            return grad
        terms = self._terms(x_adv, step, x, target, refs)
        grad = torch.zeros_like(x_adv)
        for i, t in enumerate(terms):
            (g,) = torch.autograd.grad(t, x_adv, retain_graph=i < len(terms) - 1)
            norm = g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.dim() - 1)))
            grad = grad + g / norm
        return grad

    def protect(self, x: torch.Tensor, target: Target, keys: torch.Tensor | None = None,
                progress: Progress | None = None) -> torch.Tensor:
        check_images(x, f"{self.name} input")
        keys = self._keys(x, keys)
        x = x.detach()
        refs = self.prepare(x, target)
        return self.optimiser.run(self, x, target, keys, refs, progress).detach()


class IterativeSignAttack(ObjectiveDefense):
    """Projected sign-gradient ascent on the output disruption MSE(G(x_adv), G(x)) (PGD / I-FGSM / FGSM).

    ``random_start``: begin from x + U(-ε, ε). Without it the first gradient of
    MSE(G(x_adv), G(x)) at x_adv = x is exactly zero and the attack never moves; this is why the
    official Disrupting code (``LinfPGDAttack``, ``self.rand = True``) starts at random too.
    """

    random_start: bool = True

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0,
                 random_start: bool | None = None, schedule: str = "constant"):
        if random_start is not None:
            self.random_start = bool(random_start)
        self.schedule = schedule  # the step size: "constant" (PDB) or "cosine" (SignPGD)
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)

    def config(self) -> dict:
        cfg = {**super().config(), "random_start": self.random_start}
        return cfg if self.schedule == "constant" else {**cfg, "schedule": self.schedule}  # PDB's keys stay

    def build_objectives(self) -> list:
        from .objectives import OutputDisruption

        return [OutputDisruption()]

    def build_optimiser(self):
        from .optim import SignPGD

        return SignPGD(alpha=self.alpha, steps=self.steps, random_start=self.random_start, schedule=self.schedule)


class ModelDefense(Defense):
    """A trained network that outputs δ in one pass: x_adv = Π_ε(x + δ(x)).

    The network's output is taken as δ in [-1, 1] units and scaled by ε when ``scale_output`` (a tanh
    head), then projected onto the ε-ball and [-1, 1]. :meth:`fingerprint` hashes the configuration and
    every weight, so a cache never mixes results of two trainings.
    """

    methodology = "model"
    scale_output: bool = True

    def __init__(self, network: nn.Module | None = None, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS,
                 seed: int = 0):
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed)
        self.network = network

    def load_network(self, x: torch.Tensor, target: Target) -> nn.Module:
        """The network to run (subclasses may build or train it lazily)."""
        if self.network is None:
            raise InputError(f"{self.name}: no network given; pass network=... (a trained perturbation generator)")
        return self.network

    def weights_hash(self) -> str:
        if self.network is None:
            return "untrained"
        return tensor_hash(dict(self.network.state_dict()))

    def fingerprint(self) -> str:
        return config_hash({"defense": self.name, **self.config(), "weights": self.weights_hash()})

    def protect(self, x: torch.Tensor, target: Target, keys: torch.Tensor | None = None,
                progress: Progress | None = None) -> torch.Tensor:
        check_images(x, f"{self.name} input")
        self._keys(x, keys)
        net = self.load_network(x, target)
        with torch.inference_mode():
            param = next(iter(net.parameters()), None)
            dev = param.device if param is not None else x.device
            delta = net(x.to(dev)).to(x.device)
        if delta.shape != x.shape:
            raise InputError(f"{self.name}: the network returned δ of shape {tuple(delta.shape)} for images of "
                             f"shape {tuple(x.shape)}; it must return one δ per image")
        if self.scale_output:
            delta = self.eps * delta
        out = project_linf(x + delta, x, self.eps)
        if progress is not None:
            progress(1, 1)
        return out


class CheckpointDefense(ModelDefense):
    """A model defense whose network is trained weights: pdbench's shipped asset (``checkpoint=None``) or a
    user's file, loaded strictly by :meth:`load_checkpoint`; ``network=`` runs a network in hand instead. The
    checkpoint is part of the configuration, the weights of the fingerprint."""

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = STEPS, seed: int = 0,
                 checkpoint: str | None = None, network: nn.Module | None = None):
        super().__init__(network=network, eps=eps, alpha=alpha, steps=steps, seed=seed)
        self.checkpoint = checkpoint
        if self.network is None:
            self.network = self.load_checkpoint(checkpoint)

    def load_checkpoint(self, checkpoint: str | None) -> nn.Module:
        """The trained network of ``checkpoint`` (None: the shipped weights)."""
        raise NotImplementedError

    def config(self) -> dict:
        return {**super().config(), "checkpoint": self.checkpoint}

    def load_network(self, x: torch.Tensor, target: Target) -> nn.Module:
        return self.network.eval()
