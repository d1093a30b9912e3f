"""Alignment of faces to a five-point template by a similarity transform (differentiable in the image).

Templates (pixel centres at integer coordinates, as ``cv2.warpAffine`` has them; points in pdbench's
order: image-left eye, image-right eye, nose tip, left and right mouth corner):

* ``ARCFACE_112``: InsightFace's 112×112 ArcFace template;
* ``MOBILEFACENET_112x96``: the 96×112 (W×H) SphereFace template MobileFaceNet was trained on, which is
  the ArcFace one 8 px narrower on each side.

The transform is Umeyama's least-squares similarity (rotation, uniform scale, translation, no
reflection) from the detected landmarks to the template; the warp is bilinear sampling, so gradients
flow from the aligned face back to the photo (identity losses through alignment).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ARCFACE_112 = torch.tensor([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                            [70.7299, 92.2041]])
MOBILEFACENET_112x96 = ARCFACE_112 - torch.tensor([8.0, 0.0])


def similarity(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity mapping src points onto dst (Umeyama 1991). src (N, P, 2), dst (P, 2) -> (N, 3, 3)."""
    src = src.double()
    dst = dst.double().to(src.device).expand_as(src)
    mu_s, mu_d = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - mu_s, dst - mu_d
    cov = d.transpose(1, 2) @ s / src.shape[1]
    u, sig, vt = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u @ vt))
    e = torch.diag_embed(torch.stack([torch.ones_like(sign), sign], dim=1))
    rot = u @ e @ vt
    var = s.pow(2).sum((1, 2)) / src.shape[1]
    scale = (sig * torch.diagonal(e, dim1=1, dim2=2)).sum(1) / var
    t = mu_d.squeeze(1) - scale[:, None] * (rot @ mu_s.transpose(1, 2)).squeeze(2)
    m = torch.zeros(src.shape[0], 3, 3, dtype=torch.float64, device=src.device)
    m[:, :2, :2] = scale[:, None, None] * rot
    m[:, :2, 2] = t
    m[:, 2, 2] = 1.0
    return m


def _pix_to_norm(size: int) -> torch.Tensor:
    """1-D map pixel coordinate -> grid_sample coordinate (align_corners=False)."""
    return torch.tensor([2.0 / size, 1.0 / size - 1.0], dtype=torch.float64)


def warp(x: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Apply pixel-space similarities m (N, 3, 3) (input -> output) to images x; bilinear, zeros outside."""
    hi, wi = x.shape[-2:]
    ho, wo = out_hw
    a_in, b_in = _pix_to_norm(wi), _pix_to_norm(hi)
    to_norm_in = torch.tensor([[a_in[0], 0, a_in[1]], [0, b_in[0], b_in[1]], [0, 0, 1]], dtype=torch.float64)
    a_out, b_out = _pix_to_norm(wo), _pix_to_norm(ho)
    from_norm_out = torch.linalg.inv(torch.tensor([[a_out[0], 0, a_out[1]], [0, b_out[0], b_out[1]], [0, 0, 1]],
                                                  dtype=torch.float64))
    theta = to_norm_in.to(m.device) @ torch.linalg.inv(m) @ from_norm_out.to(m.device)
    grid = F.affine_grid(theta[:, :2].to(x.dtype), [x.shape[0], x.shape[1], ho, wo], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def align(x: torch.Tensor, landmarks: torch.Tensor, template: torch.Tensor = ARCFACE_112,
          out_hw: tuple[int, int] = (112, 112)) -> torch.Tensor:
    """Faces of x (N,3,H,W) with five landmarks (N,5,2, pixels) warped onto the template."""
    return warp(x, similarity(landmarks.to(x.device), template), out_hw)
