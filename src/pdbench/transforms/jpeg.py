"""JPEG compression through a real codec (libjpeg via Pillow), baseline 4:2:0 as social networks use.

Images are quantised to 8 bits, encoded at ``quality``, decoded, and returned in [-1, 1]. Not
differentiable: it is an evaluation setting, not an attack surrogate.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ..tensors import from_uint8, to_uint8
from . import TRANSFORMS
from .base import Transform, check_param


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


@TRANSFORMS.register("jpeg")
class JPEG(Transform):
    def __init__(self, quality: int = 75):
        quality = int(check_param("jpeg", "quality", quality, 1, 100, integer=True))
        super().__init__(quality=int(quality))
        self.quality = int(quality)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        imgs = to_uint8(x)
        out = np.stack([jpeg_roundtrip(im, self.quality) for im in imgs])
        return from_uint8(out).to(x.device)
