"""dlib's 68-point facial landmarks and the binary facial mask of ID-Guard's L2-face.

ID-Guard computes its facial mask with dlib: 1 on the facial components (eyebrows, eyes, nose, mouth),
0 elsewhere. pdbench takes the convex hull of dlib's landmarks 17–67 (eyebrows, nose, eyes, mouth;
the jaw line 0–16 is left out), found by dlib's HOG detector and its 68-point shape predictor
(``shape_predictor_68_face_landmarks.dat`` from the PyPI package face-recognition-models).

Small images (CelebA at 64–128 px) are upsampled to ``UPSAMPLE_TO`` pixels before detection, since
the HOG detector misses faces under ~80 px. Where it still finds none on an aligned crop, the shape
predictor is run on the crop's central face box (``ALIGNED_BOX``) and the mask is marked as such.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..errors import AssetMissingError
from ..tensors import check_images, to_uint8

UPSAMPLE_TO = 256
ALIGNED_BOX = (0.15, 0.20, 0.85, 0.95)  # relative left, top, right, bottom of the face in an aligned crop
INNER = slice(17, 68)  # eyebrows 17-26, nose 27-35, eyes 36-47, mouth 48-67
WHOLE = slice(0, 68)  # the jaw line 0-16 too: the whole face up to the eyebrows (what a face swap replaces)


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise AssetMissingError("dlib's landmark model is missing: `pip install dlib-bin face-recognition-models` "
                                "(or `pip install pdbench[faces]`); it ships shape_predictor_68_face_landmarks.dat")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@lru_cache(maxsize=1)
def _dlib():
    try:
        import dlib
    except ImportError as e:
        raise AssetMissingError("dlib is not installed: `pip install dlib-bin face-recognition-models` "
                                "(or `pip install pdbench[faces]`)") from e
    path = _models_dir() / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise AssetMissingError(f"{path} is missing; reinstall face-recognition-models")
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


def require_dlib() -> None:
    """Fail now, with the install command, when dlib or its landmark model is missing (used at config time)."""
    _dlib()


def dlib_images(x: torch.Tensor):
    """Images of x as dlib wants them, one by one: (contiguous uint8 RGB array, scale), upsampled by
    ``scale`` so that the short side is at least ``UPSAMPLE_TO`` (dlib's HOG misses small faces)."""
    for im in to_uint8(x):
        h, w = im.shape[:2]
        s = max(1.0, UPSAMPLE_TO / min(h, w))
        if s > 1:
            im = np.asarray(Image.fromarray(im).resize((round(w * s), round(h * s)), Image.BICUBIC))
        yield np.ascontiguousarray(im), s  # dlib reads the buffer, not the strides


def landmarks68(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, 68, 2) landmarks in pixels of x, and (N,) bool: True where dlib's detector found the face."""
    check_images(x, "landmark input")
    dlib, detector, predictor = _dlib()
    pts, found = [], []
    for big, s in dlib_images(x):
        dets = detector(big, 0)
        if len(dets):
            rect = max(dets, key=lambda r: r.area())
        else:
            bw, bh = big.shape[1], big.shape[0]
            rect = dlib.rectangle(int(ALIGNED_BOX[0] * bw), int(ALIGNED_BOX[1] * bh), int(ALIGNED_BOX[2] * bw),
                                  int(ALIGNED_BOX[3] * bh))
        shape = predictor(big, rect)
        p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64) / s
        pts.append(p)
        found.append(bool(len(dets)))
    return np.stack(pts), np.array(found)


def _hull(p: np.ndarray) -> np.ndarray:
    """Convex hull (Andrew's monotone chain), counter-clockwise."""
    p = sorted(map(tuple, p))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in reversed(p):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1])


def face_mask(x: torch.Tensor, points: slice = INNER) -> torch.Tensor:
    """Binary facial mask (N, 1, H, W) float: the convex hull of the landmarks ``points`` (default the
    facial components, ID-Guard's mask; ``WHOLE`` adds the jaw line: the whole face)."""
    pts, _ = landmarks68(x)
    h, w = x.shape[-2:]
    masks = []
    for p in pts:
        canvas = Image.new("L", (w, h), 0)
        ImageDraw.Draw(canvas).polygon([tuple(q) for q in _hull(p[points])], fill=1)
        masks.append(np.asarray(canvas, dtype=np.float32))
    return torch.from_numpy(np.stack(masks))[:, None].to(x.device)
