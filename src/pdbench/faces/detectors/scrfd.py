"""SCRFD-2.5G with keypoints (Guo et al. 2021, InsightFace), the official ONNX through OpenCV's DNN.

Pre- and post-processing as InsightFace's ``scrfd.py``: the image is scaled to fit a 640×640 canvas
(top-left, zero padding), normalised as (v − 127.5)/128 in RGB; each stride (8, 16, 32) has two anchors
per location whose centres are the grid points; boxes are distances to the four sides and keypoints
offsets from the centre, both in units of the stride; score ≥ 0.5, NMS at IoU 0.4. Not differentiable.
"""

from __future__ import annotations

import numpy as np
import torch

from ...tensors import check_images, to_uint8
from . import DETECTORS
from ._opencv import OpenCVDetector
from .base import Detection, nms

STRIDES = (8, 16, 32)
ANCHORS = 2
SIZE = 640


@DETECTORS.register("scrfd")
class SCRFD(OpenCVDetector):
    has_landmarks = True
    threshold = 0.5
    asset = "scrfd-2.5g"

    def __init__(self, model: str):
        super().__init__(model)
        self.net = self.cv2.dnn.readNetFromONNX(model)
        self.outputs = self.net.getUnconnectedOutLayersNames()

    def detect(self, x: torch.Tensor, threshold: float | None = None, nms_iou: float = 0.4) -> list[list[Detection]]:
        check_images(x, "scrfd input")
        thr = self.threshold if threshold is None else threshold
        cv2 = self.cv2
        out = []
        for im in to_uint8(x):
            h, w = im.shape[:2]
            s = SIZE / max(h, w)
            canvas = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
            canvas[:round(h * s), :round(w * s)] = cv2.resize(im, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
            self.net.setInput(cv2.dnn.blobFromImage(canvas, 1 / 128, (SIZE, SIZE), (127.5, 127.5, 127.5), swapRB=False))
            res = self.net.forward(self.outputs)
            boxes, scores, kps = [], [], []
            for i, stride in enumerate(STRIDES):
                score, dist, pts = res[i].ravel(), res[i + 3] * stride, res[i + 6] * stride
                g = SIZE // stride
                yy, xx = np.mgrid[:g, :g]
                centres = np.repeat(np.stack([xx, yy], -1).reshape(-1, 2) * stride, ANCHORS, axis=0).astype(np.float64)
                keep = score >= thr
                c = centres[keep]
                boxes.append(np.concatenate([c - dist[keep][:, :2], c + dist[keep][:, 2:]], 1))
                kps.append(c[:, None, :] + pts[keep].reshape(-1, 5, 2))
                scores.append(score[keep])
            b, sc, k = np.concatenate(boxes) / s, np.concatenate(scores), np.concatenate(kps) / s
            dets = []
            if len(sc):
                for j in nms(torch.from_numpy(b), torch.from_numpy(sc.astype(np.float64)), nms_iou).tolist():
                    dets.append(Detection(b[j], float(sc[j]), k[j]))
            out.append(dets)
        return out
