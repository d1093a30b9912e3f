"""How visible the protection is: L∞, PSNR and SSIM between x and x_adv."""

from __future__ import annotations

import torch

from . import METRICS
from .base import Metric, MetricInputs
from .functional import psnr, ssim


@METRICS.register("linf_adv")
class LinfAdv(Metric):
    description = "‖x_adv − x‖∞ on the [-1, 1] scale (the budget ε bounds it)"
    direction = "lower=less visible"
    range = (0.0, 2.0)
    compares = "x vs x_adv"

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return (inp.x_adv - inp.x).abs().flatten(1).amax(dim=1)


@METRICS.register("psnr_adv")
class PSNRAdv(Metric):
    description = "PSNR (dB) between x and x_adv"
    direction = "higher=less visible"
    range = (0.0, 100.0)
    compares = "x vs x_adv"

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return psnr(inp.x_adv, inp.x)


@METRICS.register("ssim_adv")
class SSIMAdv(Metric):
    description = "SSIM between x and x_adv"
    direction = "higher=less visible"
    range = (-1.0, 1.0)
    compares = "x vs x_adv"

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return ssim(inp.x_adv, inp.x)
