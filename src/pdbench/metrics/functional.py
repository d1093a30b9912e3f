"""Plain functions behind the metrics (images in [-1, 1], NCHW)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError

DATA_RANGE = 2.0  # [-1, 1]


def check_pair(a: torch.Tensor, b: torch.Tensor, what: str, data_range: float = DATA_RANGE) -> None:
    """Two image batches (N, C, H, W) of one shape, finite, spanning no more than ``data_range``
    (so [0, 255] images given with the [-1, 1] range are refused instead of giving PSNR −39)."""
    for name, t in (("first", a), ("second", b)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise InputError(f"{what}: expected images of shape (N, C, H, W), got {tuple(getattr(t, 'shape', ()))} "
                             f"for the {name} argument; flatten the edit dimension or add a batch dimension")
    if a.shape != b.shape:
        raise InputError(f"{what}: the two batches differ in shape, {tuple(a.shape)} vs {tuple(b.shape)}; pass matching "
                         "images (no broadcasting)")
    if a.shape[0] == 0:
        raise InputError(f"{what}: the batch is empty; pass at least one image")
    for t in (a, b):
        lo, hi = float(t.detach().min()), float(t.detach().max())
        if hi - lo > data_range * (1 + 1e-4) or (data_range == DATA_RANGE and (lo < -1 - 1e-4 or hi > 1 + 1e-4)):
            hint = " (looks like [0, 255]: use pdbench.tensors.from_uint8)" if hi > 2 else ""
            raise InputError(f"{what}: values span [{lo:.3f}, {hi:.3f}], wider than the data range {data_range:g}{hint}")


def rate_above(values: torch.Tensor, threshold: float, dim: int = 0) -> torch.Tensor:
    """Fraction of ``values`` above ``threshold`` along ``dim``; NaN where any value is NaN (undefined is
    never counted as "not disrupted")."""
    hit = (values > threshold).float()
    return torch.where(torch.isnan(values).any(dim), torch.full_like(hit.mean(dim), float("nan")), hit.mean(dim))


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = DATA_RANGE, cap: float = 100.0) -> torch.Tensor:
    """Per-image PSNR in dB, ``10·log10(range² / MSE)``, capped at ``cap`` for identical images."""
    check_pair(a, b, "psnr", data_range)
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(dim=1)
    out = 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-300))
    return out.clamp(max=cap).float()


def _gaussian_window(sigma: float, truncate: float, device) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = DATA_RANGE, sigma: float = 1.5,
         low: float | None = None) -> torch.Tensor:
    """Per-image SSIM averaged over channels (Wang et al. 2004: Gaussian window σ = 1.5, K1 0.01, K2 0.03).

    SSIM is not shift-invariant (its luminance term compares means), so it is computed on the images
    shifted to start at 0 (``low`` is the bottom of their range; by default -1 for the [-1, 1]
    convention, ``data_range`` 2, and 0 otherwise, e.g. [0, 1] with ``data_range`` 1): the standard SSIM
    of the 8-bit images. It equals
    ``skimage.metrics.structural_similarity(u8_a, u8_b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``; statistics are computed only
    where the 11-tap window fits inside the image, as scikit-image's border crop does.
    """
    check_pair(a, b, "ssim", data_range)
    if low is None:
        low = -1.0 if data_range == DATA_RANGE else 0.0
    a, b = a.double() - low, b.double() - low
    n, c = a.shape[:2]
    k = _gaussian_window(sigma, 3.5, a.device)
    if min(a.shape[-2:]) < k.numel():
        raise InputError(f"ssim: images of {a.shape[-2]}x{a.shape[-1]} px are smaller than the {k.numel()}-px window")
    kx = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    ky = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    mu_a, mu_b = filt(a), filt(b)
    vaa = filt(a * a) - mu_a**2
    vbb = filt(b * b) - mu_b**2
    vab = filt(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * vab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (vaa + vbb + c2))
    return s.mean(dim=(2, 3)).mean(dim=1).float()


def cmua_mask(out_clean: torch.Tensor, x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """CMUA/TSDF edit-region mask: 1 where Σ_c |G(x) − x| > threshold (shape ``(..., 1, H, W)``)."""
    return ((out_clean - x).abs().sum(dim=-3, keepdim=True) > threshold).to(out_clean.dtype)


def roc_auc(pos, neg) -> float:
    """Area under the ROC curve of scores for positives vs negatives (ties count half): the probability
    that a random positive scores above a random negative."""
    return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))
