"""Retention: how far the deepfake of a protected photo is from the photo itself (Retentive's success notion).

A nullifying defense (Retentive) wants G(x_adv) = x_adv: the generator hands back the protected photo
unedited instead of a broken image. Retentive's paper (§4.2) measures this by "L2" between the input and
the output of the generator, a mean squared error on the [-1, 1] scale (its Table 1: L2 0.0008 with PSNR
36.98 dB), and counts a defense successful on an image when that L2 ≤ 0.05 (its Defense Success Rate,
DSR). The threshold is the paper's; note that on its own CelebA numbers the *undefended* StarGAN already
averages 0.0435 (its Table 2), so the rate is reported beside the mean, never instead of it.

``x_adv`` is the protected photo as published; the output is G of the image the generator was given
(after any practical-setting transform).
"""

from __future__ import annotations

import torch

from . import METRICS
from .base import Metric, MetricInputs
from .functional import rate_above

RETENTION_SUCCESS = 0.05  # Retentive's DSR: MSE(x_adv, G(x_adv)) ≤ 0.05 on [-1, 1]


def _per_edit_retention(inp: MetricInputs) -> torch.Tensor:
    return inp.memo("retention", lambda: (inp.out_adv - inp.x_adv.unsqueeze(0)).pow(2).mean(dim=(2, 3, 4)))  # (K, N)


@METRICS.register("retention_mse")
class RetentionMSE(Metric):
    description = ("Retentive's L2: mean squared error between the protected photo x_adv and its deepfake "
                   "G(x_adv), [-1, 1] scale, mean over edits (0: the generator is nullified)")
    direction = "lower=more disrupted"
    range = (0.0, 4.0)
    compares = "x_adv vs G(x_adv)"

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return _per_edit_retention(inp).mean(0)


@METRICS.register("dsr_retention")
class SuccessRetention(Metric):
    description = (f"Retentive's defense success rate: fraction of edits with MSE(x_adv, G(x_adv)) ≤ {RETENTION_SUCCESS} "
                   "(the paper's threshold, §4.2)")
    range = (0.0, 1.0)
    compares = "x_adv vs G(x_adv)"

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return 1.0 - rate_above(_per_edit_retention(inp), RETENTION_SUCCESS)
