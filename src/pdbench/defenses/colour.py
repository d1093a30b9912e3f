"""Differentiable sRGB ↔ CIE Lab (D65, 2° observer) in Anti-Forgery's normalisation.

``rgb_to_lab`` takes pdbench images ([-1, 1], NCHW) and returns (L − 50)/100 and a/110, b/110, the
space in which Anti-Forgery (AbstractTeen/AntiForgery, ``color_space.py``) perturbs a and b. The
conversion is the standard one (sRGB companding, the sRGB→XYZ matrix, f(t) = t^(1/3) above 0.008856 and
7.787·t + 16/116 below), the same as ``skimage.color.rgb2lab``; ``tests/test_defenses_antiforgery.py``
checks both directions against scikit-image. Each power is taken only on its own branch's domain, so
gradients are finite everywhere.
"""

from __future__ import annotations

import torch

RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
              (0.212671, 0.715160, 0.072169),
              (0.019334, 0.119193, 0.950227))
WHITE = (0.95047, 1.0, 1.08883)
L_CENTRE, L_SCALE, AB_SCALE = 50.0, 100.0, 110.0


def _matrix(m, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(dtype=x.dtype, device=x.device), x)


def _rgb_to_xyz_matrix() -> torch.Tensor:
    return torch.tensor(RGB_TO_XYZ, dtype=torch.float64)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """pdbench RGB in [-1, 1] -> normalised Lab: ((L − 50)/100, a/110, b/110)."""
    c = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    lin = torch.where(c > 0.04045, ((c.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = _matrix(_rgb_to_xyz_matrix(), lin)
    t = xyz / torch.tensor(WHITE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    f = torch.where(t > 0.008856, t.clamp_min(0.008856) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    L = 116.0 * f[:, 1:2] - 16.0
    a = 500.0 * (f[:, 0:1] - f[:, 1:2])
    b = 200.0 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([(L - L_CENTRE) / L_SCALE, a / AB_SCALE, b / AB_SCALE], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Normalised Lab -> pdbench RGB on the [-1, 1] scale (not clamped: out-of-gamut colours fall outside)."""
    L = lab[:, 0:1] * L_SCALE + L_CENTRE
    fy = (L + 16.0) / 116.0
    fx = lab[:, 1:2] * AB_SCALE / 500.0 + fy
    fz = (fy - lab[:, 2:3] * AB_SCALE / 200.0).clamp_min(0.0)
    f = torch.cat([fx, fy, fz], dim=1)
    t = torch.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787)
    xyz = t * torch.tensor(WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    lin = _matrix(torch.linalg.inv(_rgb_to_xyz_matrix()), xyz).clamp_min(0.0)
    c = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * lin)
    return c * 2.0 - 1.0
