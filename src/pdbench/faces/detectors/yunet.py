"""YuNet-n (Wu et al. 2023, libfacedetection) through OpenCV's ``cv2.FaceDetectorYN`` and the official ONNX.

The network runs in OpenCV's DNN engine (not differentiable), on BGR uint8 images at their own size
(the dynamic-shape ONNX export). Defaults as OpenCV's sample: score ≥ 0.6 (the same ``vis_thres`` as
RetinaFace here), NMS at IoU 0.3, top 5000 candidates. Landmarks: right eye, left eye, nose tip, right
and left mouth corner in OpenCV's naming, i.e. the image's left eye first, as pdbench orders them.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import AssetMissingError
from ...tensors import check_images, to_uint8
from . import DETECTORS
from ._opencv import OpenCVDetector
from .base import Detection


@DETECTORS.register("yunet")
class YuNet(OpenCVDetector):
    has_landmarks = True
    threshold = 0.6
    asset = "yunet-n-onnx-dynamic"

    def __init__(self, model: str):
        super().__init__(model)
        if not hasattr(self.cv2, "FaceDetectorYN"):
            raise AssetMissingError(f"OpenCV {self.cv2.__version__} has no FaceDetectorYN; install opencv >= 4.8")
        self._det = None

    def detect(self, x: torch.Tensor, threshold: float | None = None, nms_iou: float = 0.3) -> list[list[Detection]]:
        check_images(x, "yunet input")
        thr = self.threshold if threshold is None else threshold
        out = []
        for im in to_uint8(x):
            bgr = np.ascontiguousarray(im[..., ::-1])
            h, w = bgr.shape[:2]
            if self._det is None:
                self._det = self.cv2.FaceDetectorYN.create(self.model, "", (w, h), thr, nms_iou, 5000)
            self._det.setInputSize((w, h))
            self._det.setScoreThreshold(thr)
            self._det.setNMSThreshold(nms_iou)
            _, faces = self._det.detect(bgr)
            dets = []
            for f in ([] if faces is None else faces):
                box = np.array([f[0], f[1], f[0] + f[2], f[1] + f[3]], dtype=np.float64)
                dets.append(Detection(box, float(f[14]), f[4:14].reshape(5, 2).astype(np.float64)))
            out.append(sorted(dets, key=lambda d: -d.score))
        return out
