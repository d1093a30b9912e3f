"""NullSwap (Wang, Cheng, Zhang, Wang, "NullSwap: Proactive Identity Cloaking Against Deepfake Face
Swapping", ICCV 2025; no official code): a trained identity-cloaking perturbation generator.

The network follows the one in PDB's ``wrappers/null_swap_wrapper.py`` block for block, with its width
``ch`` as a parameter (PDB: 64): an *Identity Extraction* branch (conv 3×3/2, max-pool, L = 4
SE-ResNet bottlenecks) feeds the *Perturbation Block* (conv, M = 3 bottlenecks; in training it adds
learnable-scaled Gaussian noise, α·n + η, weighted by β), a *Feature Block* (two stride-2 convs, a conv,
N = 5 bottlenecks) extracts shallow image features, and the *Cloaking Block* fuses the two (γ_p-weighted
concatenation, one bottleneck), upsamples ×4 (transposed convs) back to the image size, concatenates the
image and ends in three convs and tanh. pdbench reads that tanh output as the direction of δ:
x_adv = Π_ε(x + ε·NS(x)), so ‖δ‖∞ ≤ ε holds exactly (the paper reconstructs the image and bounds it by
its losses, not by an ε-ball).

It is trained black-box (``pdbench train nullswap``, :mod:`pdbench.train.nullswap`): through identity
extractors only, never a generator, to lower cos(ID(x), ID(x_adv)) for each extractor, balanced by
dynamic loss weighting. Its effect is measured as the identity similarity between a photo and its
cloaked copy (benchmarks/nullswap.py) and, in a run with a face swapper (a ``swap`` block, configs/swap.yaml),
by the swap metrics of the cloaked photo's swap (:mod:`pdbench.bench.runner`; pdbench's swappers still
have experimental weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import DEFENSES
from .base import CheckpointDefense, Record
from ..errors import AssetCorruptError

ASSET = "nullswap-mobilefacenets-celeba-64-pdbench"


def conv_bn_relu(cin: int, cout: int, k: int = 3, s: int = 1, p: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SEBottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 bottleneck (ratio 4) with squeeze-and-excitation (reduction 16) and a residual."""

    def __init__(self, cin: int, cout: int, reduction: int = 16, ratio: int = 4):
        super().__init__()
        mid, se = max(cout // ratio, 1), max(cout // reduction, 1)
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, 1, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.se = nn.Sequential(nn.Linear(cout, se, bias=False), nn.ReLU(inplace=True), nn.Linear(se, cout, bias=False),
                                nn.Sigmoid())
        self.skip = None if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        y = y * self.se(y.mean((2, 3)))[:, :, None, None]
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class PerturbationBlock(nn.Module):
    def __init__(self, ch: int, m: int = 3):
        super().__init__()
        self.refine = conv_bn_relu(ch, ch)
        self.blocks = nn.Sequential(*[SEBottleneck(ch, ch) for _ in range(m)])
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.beta = nn.Parameter(torch.tensor(0.5))
        self.eta = nn.Parameter(torch.zeros(1, ch, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.blocks(self.refine(x))
        if self.training:  # the training-time noise of PDB's block (deterministic at inference)
            f = f + self.beta * (self.alpha * torch.randn_like(f) + self.eta)
        return f


class NullSwapNet(nn.Module):
    """Image (N, 3, H, W) in [-1, 1] → δ direction in (-1, 1), any H, W."""

    def __init__(self, ch: int = 64, l: int = 4, m: int = 3, n: int = 5):
        super().__init__()
        self.ch = int(ch)
        self.identity = nn.Sequential(conv_bn_relu(3, ch, s=2), nn.MaxPool2d(3, 2, 1),
                                      *[SEBottleneck(ch, ch) for _ in range(l)])
        self.perturb = PerturbationBlock(ch, m)
        self.features = nn.Sequential(conv_bn_relu(3, ch // 2, s=2), conv_bn_relu(ch // 2, ch, s=2), conv_bn_relu(ch, ch),
                                      *[SEBottleneck(ch, ch) for _ in range(n)])
        self.gamma_p = nn.Parameter(torch.tensor(1.0))
        self.fuse = SEBottleneck(2 * ch, 2 * ch)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
            conv_bn_relu(ch, ch),
            nn.ConvTranspose2d(ch, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        self.final = nn.Sequential(conv_bn_relu(ch + 3, ch), conv_bn_relu(ch, ch // 2), nn.Conv2d(ch // 2, 3, 3, 1, 1),
                                   nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img, pert = self.features(x), self.perturb(self.identity(x))
        if pert.shape[-2:] != img.shape[-2:]:
            pert = F.interpolate(pert, size=img.shape[-2:], mode="bilinear", align_corners=False)
        y = self.up(self.fuse(torch.cat([img, pert * self.gamma_p], dim=1)))
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.final(torch.cat([y, x], dim=1))


def nullswap_from_state(state: dict, source: str) -> NullSwapNet:
    """A NullSwap network whose width is read from the state dict, loaded strictly (eval mode)."""
    from ..generators.base import load_frozen

    key = "identity.0.0.weight"
    if key not in state:
        raise AssetCorruptError(f"{source} is not a NullSwap state dict (no {key!r}); pass the weights of "
                                f"`pdbench train nullswap` (its PG.safetensors, or `pdbench export`)")
    net = NullSwapNet(int(state[key].shape[0]))
    return load_frozen(net, state, source)


def load_nullswap(checkpoint: str | None = None, asset: str = ASSET) -> NullSwapNet:
    """The shipped NullSwap network (checksum-verified) or a user's checkpoint file, loaded strictly."""
    from ..generators.base import checkpoint_state

    state, source, _ = checkpoint_state(checkpoint, asset)
    return nullswap_from_state(state, source)


@DEFENSES.register("nullswap")
class NullSwap(CheckpointDefense):
    """NullSwap: one pass of a trained identity-cloaking network (pdbench's weights, trained black-box
    against two MobileFaceNets)."""

    objective = "identity cloaking (lower cos(ID(x), ID(x_adv)) for the face swapper's identity extractor)"
    access = "black-box"
    record = Record(
        paper="NullSwap: Proactive Identity Cloaking Against Deepfake Face Swapping (Wang, Cheng, Zhang, Wang)",
        venue="ICCV 2025", year=2025, url="https://arxiv.org/abs/2503.18678",
        code="(no official code; architecture from PDB's wrappers/null_swap_wrapper.py)",
        official={"access": "black-box (identity extractors only, no generator in training)",
                  "network": "Identity Extraction (L=4) + Perturbation Block (M=3) + Feature Block (N=5) + "
                             "Cloaking Block, SE-ResNet bottlenecks, width 64",
                  "loss": "identity losses of several extractors, balanced by Dynamic Loss Weighting, + image losses",
                  "norm": "none (image reconstruction; pdbench bounds δ by ε·tanh, L∞)"},
        reported={"abstract": "PSNR over 40 dB; cosine similarity of swapped identities ≈ 0.33 (summary of the paper)"},
        notes="pdbench ships a narrow network trained on 1 CPU thread against MobileFaceNet (068.ckpt) and the "
              "ONNX MobileFaceNet; dlib's ResNet is held out as evaluator. pdbench's face swappers (simswap, aeswap) "
              "have experimental weights, so identity similarity photo vs cloaked photo is reported; a run with a "
              "swap block (configs/swap.yaml) measures the swap metrics.",
    )

    def load_checkpoint(self, checkpoint: str | None) -> nn.Module:
        return load_nullswap(checkpoint)
