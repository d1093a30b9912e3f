"""Identity, Gaussian blur, Gaussian noise and downscale-upscale (the PDB robustness probes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..filters import apply_blur
from . import TRANSFORMS
from .base import Transform, check_param


@TRANSFORMS.register("none")
class Identity(Transform):
    differentiable = True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


@TRANSFORMS.register("blur")
class GaussianBlur(Transform):
    """Gaussian blur with standard deviation ``sigma`` pixels (reflect padding)."""

    differentiable = True

    def __init__(self, sigma: float = 1.0):
        super().__init__(sigma=sigma)
        self.sigma = check_param("blur", "sigma", sigma, 0.0, 50.0, lo_open=True)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return apply_blur(x, "gaussian", self.sigma)


@TRANSFORMS.register("noise")
class GaussianNoise(Transform):
    """Additive Gaussian noise with standard deviation ``std`` on the [-1, 1] scale, fixed seed, clamped."""

    def __init__(self, std: float = 0.02, seed: int = 0):
        super().__init__(std=std)
        self.std = check_param("noise", "std", std, 0.0, 2.0)
        self.seed = int(check_param("noise", "seed", seed, 0, 2**63 - 1, integer=True))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(x.shape, generator=g).to(x.device, x.dtype)
        return (x + self.std * noise).clamp(-1, 1)


@TRANSFORMS.register("resize")
class DownUp(Transform):
    """Downscale by ``factor`` (bilinear, antialiased) and upscale back to the original size."""

    differentiable = True

    def __init__(self, factor: float = 0.5):
        super().__init__(factor=factor)
        self.factor = check_param("resize", "factor", factor, 0.0, 1.0, lo_open=True)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        small = F.interpolate(x, size=(max(1, round(h * self.factor)), max(1, round(w * self.factor))),
                              mode="bilinear", antialias=True, align_corners=False)
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(-1, 1)
