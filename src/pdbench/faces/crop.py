"""An attacker's data preparation: detect the face in each collected photo, crop it square, resize it.

This is the step TSDF poisons (§III-B, §IV-D): a deepfaker who collects photos to (re)train a generator
runs a face detector over them first and trains on the crops. A photo where the detector finds no face
is dropped; a misplaced box yields a misframed crop. :func:`crop_faces` does exactly this, with any
registered detector (:mod:`pdbench.faces.detectors`):

1. the detector runs on the photo as published (8-bit RGB, its own size), with the detector's own
   threshold (RetinaFace: score ≥ 0.6, its ``vis_thres``); the highest-scoring face is used;
2. box → square: centred on the box centre, side ``scale`` × the box's longer side, rounded to whole
   pixels and capped at the photo's short side; a square that leaves the photo is shifted back inside
   it (no padding, so no black borders enter the training data);
3. the square is cut out and resized to ``size`` × ``size`` with Pillow's bilinear resize (antialiased,
   as the generators' own preprocessing, :func:`pdbench.data.folder.preprocess`); a square already
   of that size is not resampled.

``SCALE`` = 1.6 reproduces the framing pdbench's generators were trained on: on 200 clean CelebA
training photos at 64 px, RetinaFace's longest box side is 40 px (median) and 64 / side has median
1.58 (5–95 %: 1.40–1.80), so a clean photo's crop is nearly the whole photo, as in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..tensors import from_uint8
from .detectors import FaceDetector, shared_detector

SCALE = 1.6


@dataclass
class FaceCrop:
    """One kept face: the crop (size × size × 3 uint8), the detection it came from, the square cut out."""

    image: np.ndarray
    box: np.ndarray  # (4,) x1, y1, x2, y2 in photo pixels
    score: float
    square: tuple[int, int, int, int]  # left, top, right, bottom in photo pixels


def square_around(box, width: int, height: int, scale: float = SCALE) -> tuple[int, int, int, int]:
    """The crop square (left, top, right, bottom) of ``box`` in a ``width`` × ``height`` photo (see the module)."""
    if scale <= 0:
        raise InputError(f"crop scale must be positive, got {scale}")
    x1, y1, x2, y2 = (float(v) for v in box)
    side = int(round(scale * max(x2 - x1, y2 - y1)))
    side = max(1, min(side, width, height))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(int(round(cx - side / 2)), 0), width - side)
    top = min(max(int(round(cy - side / 2)), 0), height - side)
    return left, top, left + side, top + side


def crop_faces(photos: list[np.ndarray], detector: str | FaceDetector = "retinaface", size: int = 64,
               scale: float = SCALE, batch_size: int = 64) -> list[FaceCrop | None]:
    """Each photo's face crop (see the module), or None where the detector finds no face.

    ``photos``: uint8 RGB arrays (H, W, 3), any sizes (photos of one size are detected together)."""
    if size < 1:
        raise InputError(f"crop size must be at least 1 px, got {size}")
    det = shared_detector(detector) if isinstance(detector, str) else detector
    for i, p in enumerate(photos):
        if p.dtype != np.uint8 or p.ndim != 3 or p.shape[2] != 3:
            raise InputError(f"crop_faces: photo {i} is not an 8-bit RGB array (H, W, 3): dtype {p.dtype}, "
                             f"shape {p.shape}; load photos with pdbench.data.folder.load_photo")
    groups: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(photos):
        groups.setdefault(p.shape[:2], []).append(i)
    out: list[FaceCrop | None] = [None] * len(photos)
    for (h, w), idx in groups.items():
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            with torch.inference_mode():
                found = det.detect(from_uint8(np.stack([photos[i] for i in part])))
            for i, faces in zip(part, found):
                if not faces:
                    continue
                best = max(faces, key=lambda d: d.score)
                sq = square_around(best.box, w, h, scale)
                im = Image.fromarray(photos[i]).crop(sq)
                if sq[2] - sq[0] != size:
                    im = im.resize((size, size), Image.BILINEAR)
                out[i] = FaceCrop(np.asarray(im, dtype=np.uint8), np.asarray(best.box, dtype=np.float64),
                                  float(best.score), sq)
    return out
