"""dlib's ResNet face descriptor (128-d; 99.38 % on LFW as dlib reports), pdbench's second identity model.

dlib's own pipeline: HOG face detector (one upsampling), the 5-point shape predictor, then
``compute_face_descriptor`` on the 150×150 chip; the weights come with the PyPI package
face-recognition-models (``dlib_face_recognition_resnet_model_v1.dat``). Same person when the
Euclidean distance is below 0.6 (dlib's threshold). Not differentiable (dlib runs its own C++ network):
use MobileFaceNet for identity losses.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..errors import AssetMissingError
from ..tensors import check_images
from .landmarks import _models_dir, dlib_images

THRESHOLD = 0.6


@lru_cache(maxsize=1)
def _models():
    try:
        import dlib
    except ImportError as e:
        raise AssetMissingError("dlib is not installed: `pip install dlib-bin face-recognition-models` (or pdbench[faces])") from e
    d = _models_dir()
    need = ["shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"]
    for n in need:
        if not (d / n).is_file():
            raise AssetMissingError(f"{d / n} is missing; reinstall face-recognition-models")
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(d / need[0])),
            dlib.face_recognition_model_v1(str(d / need[1])))


def dlib_descriptors(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, 128) descriptors (NaN where no face was found) and (N,) bool found."""
    check_images(x, "dlib input")
    detector, sp5, rec = _models()
    out = np.full((x.shape[0], 128), np.nan)
    found = np.zeros(x.shape[0], dtype=bool)
    for i, (im, _) in enumerate(dlib_images(x)):
        dets = detector(im, 1)
        if not len(dets):
            continue
        rect = max(dets, key=lambda r: r.area())
        out[i] = np.array(rec.compute_face_descriptor(im, sp5(im, rect)))
        found[i] = True
    return out, found
