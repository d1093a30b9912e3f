"""TSDF (Zheng et al., "Boosting Active Defense Persistence: A Two-Stage Defense Framework Combining
Interruption and Poisoning Against Deepfake"): a universal interruption δ fused with face-detector poisoning.

Stage 1 (interruption, universal): :func:`pdbench.defenses.found.train_feature_universal` on training
faces, maximising MSE(A(x+W), A(x)) + λ·MSE(F_enh, A(x)) (eqs. 2–9: A the generators' encoder features
summed over channels and members, F_enh the local/global/structural enhancement of
:func:`~pdbench.defenses.found.enhance`) by sign-PGD with step γ = 0.001 inside [-ε, ε].

Stage 2 (poisoning, per image, at protect time): the intensity-separation mask
M = exp(−5|W₀|)·1(|W₀| < τ) (eq. 15) of the stage-1 δ W₀; a poisoning δ_p (from 0) is optimised with Adam
(lr 0.02, cosine-annealed, gradient norm clipped to 1 per image, as ``face_poison_integration.py``; each
detector's gradient is first scaled to unit norm per image, pdbench's stand-in for the code's fusion
weights, so that neither detector dominates) to *minimise*, on x̂ = x + clip(W₀ + δ_p, ±ε), each detector's feature and output losses:

* RetinaFace (the detector TSDF also attacks): its SSH outputs F_l, weights 5, 3, 4, pulled towards
  −F_l(x) (eq. 12 with ν = 0: the code's target −F_clean + noise without the random noise), plus the output
  loss of eq. 13: mean face probability² over the anchors and the L1 size of the boxes of the anchors that
  found the face on x (shrunk to their centre);
* MTCNN: softplus of P-Net's face-vs-background margins over its pyramid and of O-Net's margins on the
  faces it finds on x and, at every step, on x̂ (MTCNN's probabilities saturate at 1, where s² has no gradient);

after every step δ_p ← clip(δ_p, ±ε)·M (eq. 16); the output is Π_ε(x + clip(W₀ + δ_p, ±ε)) (eq. 17) with each
image's best δ_p (lowest loss over the steps), as the code keeps its best δ_p: multiplying by M < 1 at
every step shrinks δ_p geometrically once the cosine-annealed lr is small, so the last δ_p is nearly 0 where
W₀ is saturated (pdbench measured it: without the best δ_p, RetinaFace's F1 stayed 1.00 on 16 faces).

Which detectors: by default RetinaFace only, with MTCNN and YuNet (OpenCV, not differentiable) held out
as unseen detectors. MTCNN can be poisoned too (``detectors: [retinaface, mtcnn]``), but at ε 0.05 on
64 px faces pdbench measured little effect: 50 Adam steps against MTCNN alone left its F1 at 0.75 on 8
held-out faces, and beside RetinaFace at 1.0 (RetinaFace's fell to 0.25-0.375 either way). The paper's
S3FD and DSFD have no weights pdbench can ship or load.

Two variants by name:

* ``tsdf`` (the official code, ``train.py``): τ = 0.04, 50 Adam steps; stage 1 per batch 3 feature steps
  on the DI-augmented input (random resize-and-pad) and one end-to-end gradient-ensemble step on
  0.7·output + 0.3·feature MSE; enhancement weight 0.001 (the code subtracts 0.001·MSE(F_enh, E(x̂)),
  another sign and reference than eq. 8; pdbench uses eq. 8 with the code's weight); 30 epochs.
* ``tsdf-paper`` (§III, §IV-A, Algorithm 1): τ = 0.3, 20 Adam steps; stage 1 only L_feature with λ = 0.1,
  50 iterations (one sign step per batch each).

Where pdbench departs from the code, and why: the code poisons inside its stage-1 loop and averages the
per-image result back into the universal δ, so its shipped δ is universal; Algorithm 1 poisons the image
to protect, which pdbench does (stage 2 per image). The code fuses the detectors' features through 1×1
convolutions drawn at random on every call (a new random projection per step); pdbench compares each
detector's own features. The code evaluates its detectors on x + W₀ + δ_p with δ_p up to 0.4 and clips to
ε only afterwards; pdbench optimises the image it outputs. The per-model EMA/softmax weights of the code's
end-to-end step are replaced by FOUND's per-member gradient normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..faces.detectors import DETECTORS, shared_detector
from ..tensors import check_images
from . import DEFENSES
from .base import EPS, Record, project_linf
from .cmua import UniversalDefense
from .found import train_feature_universal

RECORD = Record(
    paper="Boosting Active Defense Persistence: A Two-Stage Defense Framework Combining Interruption and Poisoning "
          "Against Deepfake (TSDF)",
    venue="arXiv preprint 2508.07795", year=2025, url="https://arxiv.org/abs/2508.07795",
    code="https://github.com/vpsg-research/TSDF (train.py, face_poison_integration.py; weight files are placeholders)",
    official={"eps": 0.05, "train_images": 128, "stage1_alpha": 0.001,
              "stage1": {"paper": "50 iterations, λ 0.1", "code": "30 epochs × (3 feature steps + 1 end-to-end step), "
                         "enhancement weight 0.001, DI augmentation"},
              "tau": {"paper": 0.3, "code": 0.04}, "beta": 5.0,
              "stage2": {"optimiser": "Adam, cosine annealing", "lr": 0.02, "steps": {"paper": 20, "code": 50},
                         "feature_weights": [5.0, 3.0, 4.0], "output_weights": {"score": 12.0, "box": 12.0}},
              "detectors": "RetinaFace-MobileNet0.25, S3FD, DSFD (paper); pdbench: RetinaFace, with MTCNN and YuNet held out"},
    reported={"Table II, CelebA, detector F1 (DSFD / RetinaFace / S3FD): original": [0.99, 0.99, 1.00],
              "Table II, CelebA, detector F1: random noise": [0.99, 0.87, 0.99],
              "Table II, CelebA, detector F1: TSDF": [0.76, 0.78, 0.78],
              "Table I, CelebA, L2mask (StarGAN / AGGAN / AttGAN / HiSD)": [0.63, 0.29, 0.12, 0.17],
              "Table IV, SSIM before -> after retraining (CMUA / FOUND / TSDF)": [[0.59, 0.77], [0.45, 0.65], [0.46, 0.31]],
              "Table V, StarGAN FID of clean outputs, healthy -> poisoned": [43.77, 152.93],
              "Table V, AttGAN FID of clean outputs, healthy -> poisoned": [43.03, 61.30]},
    notes="Detector F1 at IoU 0.7 (pdbench's detector_f1). Stage 2 per image as Algorithm 1 (the code averages it "
          "into a universal δ); see the module docstring for every departure from the code.",
)

FEATURE_WEIGHTS = (5.0, 3.0, 4.0)  # the code's weights of the three feature levels
OUTPUT_WEIGHT = 12.0  # the code's weight of the score and box losses


def intensity_mask(w0: torch.Tensor, tau: float, beta: float = 5.0) -> torch.Tensor:
    """Eq. 15: M = exp(−β|W₀|)·1(|W₀| < τ), where the interruption δ is weak enough to carry poison."""
    a = w0.abs()
    return torch.exp(-beta * a) * (a < tau).to(w0.dtype)


def _retinaface_terms(det, x: torch.Tensor):
    """RetinaFace's SSH feature maps, per-anchor face probabilities and decoded boxes (relative units) on x."""
    from ..faces.detectors.retinaface import decode_boxes, priors

    net, feats = det.net, []
    hooks = [getattr(net, n).register_forward_hook(lambda mod, i, o: feats.append(o)) for n in ("ssh1", "ssh2", "ssh3")]
    try:
        loc, conf, _ = det.raw(x)
    finally:
        for h in hooks:
            h.remove()
    boxes = decode_boxes(loc, priors(x.shape[-2], x.shape[-1], x.device, net.min_sizes))
    return feats, F.softmax(conf, dim=-1)[..., 1], boxes


class _RetinaFaceLoss:
    def __init__(self, det, x):
        self.det = det
        with torch.no_grad():
            self.f0, s0, _ = _retinaface_terms(det, x)
        self.found = (s0 >= det.threshold).to(x.dtype)  # the anchors that detect the clean face

    def __call__(self, xa: torch.Tensor) -> torch.Tensor:
        feats, s, boxes = _retinaface_terms(self.det, xa)
        loss = sum(w * (f + f0).pow(2).flatten(1).mean(1) for w, f, f0 in zip(FEATURE_WEIGHTS, feats, self.f0))
        size = (boxes[..., 2:] - boxes[..., :2]).abs().sum(-1)  # L1 to the box shrunk to its centre
        box = (size * self.found).sum(1) / self.found.sum(1).clamp_min(1.0)
        return loss + OUTPUT_WEIGHT * (s.pow(2).mean(1) + box)


class _MTCNNLoss:
    """P-Net's margins over its pyramid, and O-Net's on every face the cascade finds on x and on the current
    x̂ (eq. 13's "all detected boxes": a face O-Net rejects is soon proposed again a few pixels away)."""

    def __init__(self, det, x):
        self.det = det
        self.faces = det.detect(x)

    def __call__(self, xa: torch.Tensor) -> torch.Tensor:
        loss = F.softplus(self.det.face_scores(xa)).mean(1)
        now = self.det.detect(xa.detach())
        boxes = [a + b for a, b in zip(self.faces, now)]
        index = torch.tensor([i for i, ds in enumerate(boxes) for _ in ds], dtype=torch.long, device=xa.device)
        if len(index):
            per_box = F.softplus(self.det.box_scores(xa, boxes))
            loss = loss + torch.zeros(xa.shape[0], dtype=xa.dtype, device=xa.device).index_add(0, index, per_box)
        return OUTPUT_WEIGHT * loss


def _norm(g: torch.Tensor) -> torch.Tensor:
    return g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.dim() - 1)))


LOSSES = {"retinaface": _RetinaFaceLoss, "mtcnn": _MTCNNLoss}


def poison(x: torch.Tensor, w0: torch.Tensor, detectors=("retinaface",), eps: float = EPS, tau: float = 0.04,
           steps: int = 50, lr: float = 0.02, beta: float = 5.0, progress=None) -> torch.Tensor:
    """Stage 2: x̂ = Π_ε(x + clip(W₀ + δ_p, ±ε)) with δ_p optimised inside the mask of W₀ against the detectors."""
    check_images(x, "tsdf input")
    x = x.detach()
    base = w0.to(x.device, x.dtype).clamp(-eps, eps).expand_as(x)
    mask = intensity_mask(base, tau, beta)
    losses = [LOSSES[name](shared_detector(name, str(x.device)), x) for name in detectors]
    delta = torch.zeros_like(x, requires_grad=True)
    best, best_loss = delta.detach().clone(), torch.full((x.shape[0],), float("inf"), device=x.device)
    opt = torch.optim.Adam([delta], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    for t in range(steps):
        with torch.enable_grad():
            xa = (x + (base + delta).clamp(-eps, eps)).clamp(-1.0, 1.0)
            grad, per_image = torch.zeros_like(x), 0.0
            for i, f in enumerate(losses):  # per image sums, so each image's gradient is its own
                li = f(xa)
                per_image = per_image + li.detach()
                (g,) = torch.autograd.grad(li.sum(), delta, retain_graph=i < len(losses) - 1)
                grad = grad + g / _norm(g)  # each detector's gradient at unit norm: none dominates
        with torch.no_grad():
            better = per_image < best_loss  # keep each image's best δ_p (the code keeps its best one)
            best[better], best_loss[better] = delta.detach()[better], per_image[better]
            opt.zero_grad()
            delta.grad = grad / _norm(grad).clamp_min(1.0)  # clip each image's gradient norm to 1
        opt.step()
        sched.step()
        with torch.no_grad():
            delta.copy_(delta.clamp(-eps, eps) * mask)
        if progress is not None:
            progress(t + 1, steps)
    if steps:
        with torch.no_grad():  # the last δ_p too
            last = sum(f((x + (base + delta).clamp(-eps, eps)).clamp(-1.0, 1.0)) for f in losses)
            better = last < best_loss
            best[better] = delta.detach()[better]
    return project_linf(x + (base + best).clamp(-eps, eps), x, eps)


class _TSDF(UniversalDefense):
    record = RECORD
    delta_method = "tsdf"
    objective = "feature disruption (universal) + face-detector poisoning"
    access = "white-box (universal generators, per-image detectors)"
    stage1: dict = {}

    def __init__(self, eps, alpha, steps, seed, delta, surrogates, train_n, batch_size, tau, poison_steps, lr, detectors,
                 faces, save_to):
        detectors = [detectors] if isinstance(detectors, str) else list(detectors)
        for name in detectors:
            DETECTORS.get(name)  # unknown names fail here, with the known ones listed
            if name not in LOSSES:
                raise InputError(f"{self.name}: detector {name!r} cannot be poisoned (not differentiable here); "
                                 f"use {' or '.join(LOSSES)}, and hold {name} out for evaluation")
        if not 0 <= tau or poison_steps < 0 or lr <= 0:
            raise InputError(f"{self.name}: tau must be ≥ 0, poison_steps ≥ 0 and lr > 0, got {tau}, {poison_steps}, {lr}")
        self.tau, self.poison_steps, self.lr, self.detectors = float(tau), int(poison_steps), float(lr), detectors
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed, delta=delta, surrogates=surrogates,
                         train_n=train_n, batch_size=batch_size, faces=faces, save_to=save_to)

    def config(self) -> dict:
        return {**super().config(), **self.stage1, "tau": self.tau, "poison_steps": self.poison_steps, "lr": self.lr,
                "detectors": self.detectors}

    def train_kwargs(self) -> dict:
        return {**super().train_kwargs(), **self.stage1}

    def train_delta(self, x, target, **kw):
        return train_feature_universal(x, target, **kw)

    def protect(self, x, target, keys=None, progress=None):
        check_images(x, f"{self.name} input")
        self._keys(x, keys)
        w0 = self.load_network(x, target).delta
        if tuple(w0.shape) != tuple(x.shape[1:]):
            self.network(x)  # the one-line resolution error
        return poison(x, w0, self.detectors, self.eps, self.tau, self.poison_steps, self.lr, progress=progress)


@DEFENSES.register("tsdf")
class TSDF(_TSDF):
    """TSDF as its official code runs it: τ 0.04, 50 poisoning steps, stage 1 with DI and end-to-end steps."""

    stage1 = {"inner": 3, "individual": False, "enh_weight": 0.001, "output_step": True, "output_feature_weight": 0.3,
              "diverse": True}

    def __init__(self, eps: float = EPS, alpha: float = 0.001, steps: int = 30, seed: int = 0, delta: str | None = None,
                 surrogates: list | None = None, train_n: int = 128, batch_size: int = 32, tau: float = 0.04,
                 poison_steps: int = 50, lr: float = 0.02, detectors: list | tuple = ("retinaface",),
                 faces: str | None = None, save_to: str | None = None):
        super().__init__(eps, alpha, steps, seed, delta, surrogates, train_n, batch_size, tau, poison_steps, lr,
                         detectors, faces, save_to)


@DEFENSES.register("tsdf-paper")
class TSDFPaper(_TSDF):
    """TSDF as the paper states it: τ 0.3, 20 poisoning steps, stage 1 on L_feature (λ 0.1) for 50 iterations."""

    stage1 = {"inner": 1, "individual": False, "enh_weight": 0.1, "output_step": False, "output_feature_weight": 0.0,
              "diverse": False}

    def __init__(self, eps: float = EPS, alpha: float = 0.001, steps: int = 50, seed: int = 0, delta: str | None = None,
                 surrogates: list | None = None, train_n: int = 128, batch_size: int = 32, tau: float = 0.3,
                 poison_steps: int = 20, lr: float = 0.02, detectors: list | tuple = ("retinaface",),
                 faces: str | None = None, save_to: str | None = None):
        super().__init__(eps, alpha, steps, seed, delta, surrogates, train_n, batch_size, tau, poison_steps, lr,
                         detectors, faces, save_to)


if __name__ == "__main__":
    import sys

    from .found import main

    raise SystemExit(main(name="tsdf-paper" if "--paper" in sys.argv else "tsdf",
                          argv=[a for a in sys.argv[1:] if a != "--paper"]))
