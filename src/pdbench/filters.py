"""Image filters shared by the defenses (blur-evasion loops) and the practical settings (blur).

Separable, on NCHW tensors of any range, reflect-padded so the image size is kept; differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float, device, dtype) -> torch.Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def apply_blur(x: torch.Tensor, kind: str, size: float) -> torch.Tensor:
    c = x.shape[1]
    if kind == "gaussian":
        k = gaussian_kernel(size, x.device, x.dtype)
    else:
        k = torch.full((int(size),), 1.0 / int(size), device=x.device, dtype=x.dtype)
    pad = k.numel() // 2
    y = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
