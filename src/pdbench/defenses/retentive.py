"""Retentive (Jiang et al., "Towards Retentive Proactive Defense Against DeepFakes"): a trained U-Net
perturbation generator.

x_adv = Π_ε(x + ε·PG(x)), PG a U-Net with a tanh head (so ‖δ‖∞ ≤ ε by construction, then the usual
projection onto [-1, 1]). PG is trained (``pdbench train retentive``, :mod:`pdbench.train.retentive`)
against a frozen deepfake generator G with L = λ_mag (L_pix + λ_feat L_feat) + λ_adv L_adv,
L_pix = ‖x − x_adv‖², L_feat = ‖F(x) − F(x_adv)‖² (ImageNet VGG-16 features), L_adv = ‖x_adv − G(x_adv)‖²:
the deepfake of a protected photo comes out *equal to the photo* (the generator is nullified, not
broken), so its success is measured by ``retention_mse`` / ``dsr_retention`` (:mod:`pdbench.metrics.retention`),
not by the output-disruption metrics.

The network is pix2pix's ``UnetGenerator`` (the paper uses "UNet-128" from that code base): ``num_downs``
stride-2 4×4 convolutions down to 1×1 (LeakyReLU 0.2, BatchNorm), transposed convolutions back with skip
connections, channel widths ngf·(1, 2, 4, 8, 8, …). Inputs whose side is not a multiple of 2^num_downs
are edge-padded and the output cropped back, so any image size works. The paper gives no code, no λ
values and no ε mechanism beyond "‖P(x)‖ < ε"; pdbench's choices are in :class:`RetentiveRecipe` and
the model card (docs/model-cards/retentive-stargan-celeba-64-pdbench.md).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from . import DEFENSES
from .base import CheckpointDefense, Record, project_linf
from ..errors import AssetCorruptError
from ..tensors import check_images

ASSET = "retentive-stargan-celeba-64-pdbench"


class UNetBlock(nn.Module):
    """One level of pix2pix's U-Net: down (conv 4×4/2), the inner levels, up (transposed conv 4×4/2), skip."""

    def __init__(self, outer: int, inner: int, in_ch: int | None = None, sub: nn.Module | None = None,
                 outermost: bool = False, out_ch: int | None = None):
        super().__init__()
        in_ch = outer if in_ch is None else in_ch
        self.outermost = outermost
        down = nn.Conv2d(in_ch, inner, 4, 2, 1, bias=outermost or sub is None)
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, out_ch or outer, 4, 2, 1)
            layers = [down, sub, nn.ReLU(True), up, nn.Tanh()]
        elif sub is None:  # innermost: no norm on the way down (1×1 maps)
            up = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, nn.BatchNorm2d(outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), sub, nn.ReLU(True), up, nn.BatchNorm2d(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], dim=1)


class UNet(nn.Module):
    """pix2pix ``UnetGenerator(3, 3, num_downs, ngf)``: image (N,3,H,W) in [-1, 1] → δ direction in (-1, 1)."""

    def __init__(self, ngf: int = 64, num_downs: int = 7):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"U-Net depth must be at least 5, got {num_downs}")
        self.ngf, self.num_downs = int(ngf), int(num_downs)
        block = UNetBlock(ngf * 8, ngf * 8)
        for _ in range(num_downs - 5):
            block = UNetBlock(ngf * 8, ngf * 8, sub=block)
        for mult in (4, 2, 1):
            block = UNetBlock(ngf * mult, ngf * mult * 2, sub=block)
        self.model = UNetBlock(3, ngf, in_ch=3, sub=block, outermost=True, out_ch=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2 ** self.num_downs
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        y = self.model(x)
        return y[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w] if (ph or pw) else y


def unet_from_state(state: dict, source: str) -> UNet:
    """A U-Net whose width and depth are read from the state dict itself, loaded strictly (eval mode)."""
    from ..generators.base import load_frozen

    key = "model.model.0.weight"
    if key not in state:
        raise AssetCorruptError(f"{source} is not a Retentive U-Net state dict (no {key!r}); pass the weights of "
                                f"`pdbench train retentive` (its PG.safetensors, or `pdbench export`)")
    ngf = int(state[key].shape[0])
    # the down convolutions: the outermost one, then one per nested level (model.model.1(.model.3)*.model.1)
    depth = 1 + sum(1 for k in state if re.fullmatch(r"model\.model\.1(\.model\.3)*\.model\.1\.weight", k))
    net = UNet(ngf, depth)
    return load_frozen(net, state, source)


@DEFENSES.register("retentive")
class Retentive(CheckpointDefense):
    """Retentive: one pass of a trained U-Net perturbation generator (pdbench's weights against its StarGAN)."""

    objective = "generator nullification (G(x_adv) = x_adv)"
    record = Record(
        paper="Towards Retentive Proactive Defense Against DeepFakes (Jiang, Yu, Meng, Qi)",
        venue="TRIDENTCOM 2023 (Springer LNICST)", year=2024, url="https://doi.org/10.1007/978-3-031-51399-2_8",
        code="(no public code; implemented from the paper)",
        official={"generator": "U-Net (UNet-128 of pix2pix)", "eps": 0.05, "batch_size": 16, "lr": 1e-4,
                  "iters": 200_000, "resolution": 128, "data": "CelebA 200,600 train / 1,999 test, 178 crop → 128",
                  "target": "StarGAN, 5 edits (black, blond, brown hair, male, young)",
                  "loss": "λ_mag (L_pix + λ_feat L_feat) + λ_adv L_adv (λ values not given)",
                  "success": "DSR: L2(x_adv, G(x_adv)) ≤ 0.05"},
        reported={"Table 1 CelebA L2(x, x_adv) PGD / ours": [0.0008, 0.0002],
                  "Table 1 CelebA PSNR(x, x_adv) PGD / ours": [36.9832, 42.6844],
                  "Table 1 CelebA SSIM(x, x_adv) PGD / ours": [0.9360, 0.9887],
                  "Table 1 CelebA LPIPS(x, x_adv) PGD / ours": [0.0115, 0.0012],
                  "Table 2 CelebA L2(x_adv, G(x_adv)) none / PGD / ours": [0.0435, 0.0039, 0.0018],
                  "Table 2 CelebA PSNR(x_adv, G(x_adv)) none / PGD / ours": [21.5832, 30.2694, 34.0527],
                  "Table 3 CelebA L2(x, G(x_adv)) PGD / ours": [0.0032, 0.0024],
                  "inference time PGD / ours": "> 10x"},
        notes="The trained network is the defense: pdbench ships a narrow U-Net trained on 1 CPU thread against "
              "stargan-celeba-64-pdbench (see its model card); other generators only see it in transfer.",
    )

    def load_checkpoint(self, checkpoint: str | None) -> nn.Module:
        return load_retentive(checkpoint)

    def protect(self, x: torch.Tensor, target, keys: torch.Tensor | None = None, progress=None) -> torch.Tensor:
        """At the generator's input size: one pass, x + ε·PG(x). On whole photos (``pdbench protect``'s
        native mode, where the target crops and resizes them), PG sees what it was trained on: δ is
        computed on the generator's input (its crop, resized) and upsampled bilinearly onto the crop
        square, nothing outside it changes, then projected onto the ε-ball."""
        gens = [m.generator for m in target.members]
        if not gens or not all(hasattr(g, "model_input") and hasattr(g, "box") for g in gens) \
                or len({g.box for g in gens}) != 1 or len({g.inner.resolution for g in gens}) != 1:
            return super().protect(x, target, keys=keys, progress=progress)
        check_images(x, f"{self.name} input")
        self._keys(x, keys)
        g = gens[0]
        left, top, right, bottom = g.box
        net = self.load_network(x, target)
        with torch.inference_mode():
            delta = self.eps * net(g.model_input(x.float()))
            delta = F.interpolate(delta, size=(bottom - top, right - left), mode="bilinear", align_corners=False)
            full = torch.zeros_like(x)
            full[..., top:bottom, left:right] = delta.to(x.dtype)
        out = project_linf(x + full, x, self.eps)
        if progress is not None:
            progress(1, 1)
        return out


def load_retentive(checkpoint: str | None = None, asset: str = ASSET) -> UNet:
    """The shipped Retentive U-Net (checksum-verified) or a user's checkpoint file, loaded strictly."""
    from ..generators.base import checkpoint_state

    state, source, _ = checkpoint_state(checkpoint, asset)
    return unet_from_state(state, source)
