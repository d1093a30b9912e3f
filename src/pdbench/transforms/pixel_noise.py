"""Per-image seeded pixel noise: additive Gaussian noise and salt-and-pepper (PDB's robustness probes).

Both follow PDB's ``attacks/batch_robustness_test.py`` on the [-1, 1] scale:

* ``gaussian_noise``: ``clamp(x + std · N(0, 1), -1, 1)``, one draw per pixel and channel;
* ``salt_pepper``: each pixel *channel value* is set to 1 (salt) where a uniform draw is below
  ``prob / 2``, then to -1 (pepper) where a second, independent uniform draw is below ``prob / 2``
  (pepper wins where both hit), so a fraction ``1 − (1 − prob/2)²`` ≈ ``prob`` of the values is hit.

Unlike PDB (one global ``torch`` seed, so an image's noise depends on what was drawn before it)
and unlike the ``noise`` setting (one draw for the whole batch, so it depends on the batch), the
noise here is a function of the image alone: each image's generator is seeded from ``seed`` and a
hash of the image's own float values. The same image gets the same noise in any batch, order or
resumed run.
"""

from __future__ import annotations

import hashlib

import torch

from ..errors import InputError
from . import TRANSFORMS
from .base import Transform


def image_generators(x: torch.Tensor, seed: int = 0) -> list[torch.Generator]:
    """One CPU generator per image of ``x`` (N, C, H, W), seeded from ``seed`` and the image's content."""
    gens = []
    for img in x.detach().to("cpu", torch.float32).contiguous():
        h = hashlib.blake2b(img.numpy().tobytes(), digest_size=8, key=str(int(seed)).encode())
        gens.append(torch.Generator().manual_seed(int.from_bytes(h.digest(), "little") & (2**63 - 1)))
    return gens


def _draw(x: torch.Tensor, seed: int, fn) -> torch.Tensor:
    """Stack ``fn(generator, shape)`` over the images of ``x``, on ``x``'s device and dtype."""
    shape = tuple(x.shape[1:])
    return torch.stack([fn(g, shape) for g in image_generators(x, seed)]).to(x.device, x.dtype)


@TRANSFORMS.register("gaussian_noise")
class PerImageGaussianNoise(Transform):
    """Additive Gaussian noise, std ``std`` on the [-1, 1] scale, seeded per image, clamped to [-1, 1]."""

    def __init__(self, std: float = 0.01, seed: int = 0):
        if not float(std) >= 0:
            raise InputError(f"gaussian_noise std must be ≥ 0 (on the [-1, 1] scale), got {std}")
        super().__init__(std=float(std), **({"seed": int(seed)} if int(seed) else {}))
        self.std, self.seed = float(std), int(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        noise = _draw(x, self.seed, lambda g, s: torch.randn(s, generator=g))
        return (x + self.std * noise).clamp(-1, 1)


@TRANSFORMS.register("salt_pepper")
class SaltPepper(Transform):
    """Salt-and-pepper noise on pixel channel values with total probability ``prob`` (half salt, half pepper)."""

    def __init__(self, prob: float = 0.01, seed: int = 0):
        if not 0 <= float(prob) <= 1:
            raise InputError(f"salt_pepper prob must be in [0, 1], got {prob}")
        super().__init__(prob=float(prob), **({"seed": int(seed)} if int(seed) else {}))
        self.prob, self.seed = float(prob), int(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        u = _draw(x, self.seed, lambda g, s: torch.rand((2, *s), generator=g))  # (N, 2, C, H, W)
        out = x.clone()
        out[u[:, 0] < self.prob / 2] = 1.0
        out[u[:, 1] < self.prob / 2] = -1.0
        return out
