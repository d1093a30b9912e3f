"""Pixel-level distortion of the generator output: MSE, L2 norm, CMUA/TSDF masked L2, PSNR, SSIM,
and the defense success rates with their published thresholds."""

from __future__ import annotations

import torch

from . import METRICS
from .base import Metric, MetricInputs, per_edit
from .functional import cmua_mask, psnr, rate_above, ssim

MSE_SUCCESS = 0.05  # Disrupting / Anti-Forgery / PDB "sr": MSE(G(x), G(x_adv)) > 0.05
MASK_SUCCESS = 0.05  # CMUA / TSDF: masked L2 > 0.05


def _per_edit_mse(inp: MetricInputs) -> torch.Tensor:
    return inp.memo("mse", lambda: (inp.out_adv - inp.out_clean).pow(2).mean(dim=(2, 3, 4)))  # (K, N)


def _per_edit_l2_mask(inp: MetricInputs) -> torch.Tensor:
    def compute() -> torch.Tensor:
        k = inp.out_clean.shape[0]
        x = inp.x.unsqueeze(0).expand(k, *inp.x.shape)
        mask = cmua_mask(inp.out_clean, x)  # (K,N,1,H,W)
        return ((inp.out_adv - inp.out_clean) * mask).pow(2).mean(dim=(2, 3, 4))

    return inp.memo("l2_mask", compute)


@METRICS.register("mse")
class MSE(Metric):
    description = "mean squared error per pixel and channel between G(x) and G(x_adv), [-1, 1] scale"
    range = (0.0, 4.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return _per_edit_mse(inp).mean(0)


@METRICS.register("l2_norm")
class L2Norm(Metric):
    description = "Euclidean norm ‖G(x) − G(x_adv)‖₂ over all pixels and channels, [-1, 1] scale"

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return (inp.out_adv - inp.out_clean).flatten(2).norm(dim=2).mean(0)


@METRICS.register("l2_mask")
class L2Mask(Metric):
    description = ("CMUA/TSDF masked L2: mean over all pixels of ((G(x_adv) − G(x))·m)², "
                   "m = 1 where Σ_c |G(x) − x| > 0.5 (the region the edit changes)")
    range = (0.0, 4.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return _per_edit_l2_mask(inp).mean(0)


@METRICS.register("dsr_mse")
class SuccessMSE(Metric):
    description = f"defense success rate: fraction of edits with MSE(G(x), G(x_adv)) > {MSE_SUCCESS}"
    range = (0.0, 1.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return rate_above(_per_edit_mse(inp), MSE_SUCCESS)


@METRICS.register("dsr_l2_mask")
class SuccessMask(Metric):
    description = f"defense success rate (CMUA/TSDF): fraction of edits with masked L2 > {MASK_SUCCESS}"
    range = (0.0, 1.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return rate_above(_per_edit_l2_mask(inp), MASK_SUCCESS)


@METRICS.register("psnr_out")
class PSNROut(Metric):
    description = "PSNR (dB) between G(x) and G(x_adv); capped at 100 dB for identical outputs"
    direction = "lower=more disrupted"
    range = (0.0, 100.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return per_edit(psnr, inp.out_adv, inp.out_clean).mean(0)


@METRICS.register("ssim_out")
class SSIMOut(Metric):
    description = "SSIM (Gaussian σ 1.5, Wang et al.) between G(x) and G(x_adv)"
    direction = "lower=more disrupted"
    range = (-1.0, 1.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return per_edit(ssim, inp.out_adv, inp.out_clean).mean(0)
