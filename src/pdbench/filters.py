"""Image filters shared by the defenses (blur-evasion loops), the practical settings (blur) and the
publish stage (the generators' own resize).

Separable, on NCHW tensors of any range, differentiable. The blurs are reflect-padded so the image size
is kept; :func:`resize_bilinear` is Pillow's antialiased bilinear resize as two matrix products.
"""

from __future__ import annotations

import functools

import numpy as np
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


@functools.lru_cache(maxsize=64)
def _pil_bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    in0 = 0.0
    scale = n_in / n_out
    filterscale = max(scale, 1.0)  # downscaling widens the triangle: that is the antialiasing
    support = 1.0 * filterscale  # the bilinear filter's support is 1 input pixel at scale 1
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = in0 + (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)  # C's (int) truncates; lo < 0 is clamped either way
        hi = min(int(center + support + 0.5), n_in)
        t = (np.arange(lo, hi) - center + 0.5) / filterscale
        k = np.clip(1.0 - np.abs(t), 0.0, None)
        if k.sum() != 0:
            k = k / k.sum()
        w[i, lo:hi] = k
    w.setflags(write=False)
    return w


def pil_bilinear_weights(n_in: int, n_out: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The (n_out, n_in) matrix of Pillow's ``Image.resize(..., Image.BILINEAR)`` along one axis.

    Computed as Pillow's ``precompute_coeffs`` (libImaging/Resample.c) does: output pixel i is centred at
    (i + 0.5)·scale in input pixels, the triangle filter's support grows with the downscale factor, and
    each row is normalised to sum 1. Rows are non-negative, so a perturbation within ±ε stays within ±ε.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"resize sizes must be positive, got {n_in} -> {n_out}")
    return torch.tensor(_pil_bilinear_weights(int(n_in), int(n_out)), dtype=dtype, device=device)


def resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize NCHW ``x`` to ``size`` = (height, width) exactly as Pillow's antialiased bilinear does
    (in float: Pillow also rounds to 8 bits after each pass, so uint8 results agree within one grey level).

    Differentiable; the width pass comes first, as in Pillow. Each image is its own pair of matrix
    products, so an image's result (and gradient) does not depend on the batch it is in.
    """
    h, w = int(size[0]), int(size[1])
    if x.shape[-2:] == (h, w):
        return x
    ww = pil_bilinear_weights(x.shape[-1], w, x.device, x.dtype)
    wh = pil_bilinear_weights(x.shape[-2], h, x.device, x.dtype)
    return torch.stack([wh @ (xi @ ww.T) for xi in x.unbind(0)]) if x.dim() == 4 else wh @ (x @ ww.T)
