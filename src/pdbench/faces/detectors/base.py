"""What a face detector returns, and the box arithmetic every detector and metric shares.

Inputs follow the pdbench convention (NCHW float RGB in [-1, 1], :mod:`pdbench.tensors`). Boxes are
``(x1, y1, x2, y2)`` in pixels of the input image; landmarks are five ``(x, y)`` points in the order
left eye, right eye, nose tip, left mouth corner, right mouth corner (as seen in the image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Detection:
    box: np.ndarray  # (4,) x1, y1, x2, y2 in pixels
    score: float
    landmarks: np.ndarray | None = None  # (5, 2) pixels, or None

    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


class FaceDetector:
    name = "?"
    differentiable = False  # True: ``scores`` has gradients w.r.t. the input (detector poisoning)
    has_landmarks = False

    @classmethod
    def load(cls, device: str | torch.device = "cpu", **kwargs) -> "FaceDetector":
        """Build the detector; ``device`` matters only to the PyTorch ones (they override this)."""
        return cls(**kwargs)

    def detect(self, x: torch.Tensor, threshold: float | None = None) -> list[list[Detection]]:
        raise NotImplementedError


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a (n, 4) and b (m, 4), xyxy."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float, mode: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression; returns kept indices, best first.

    ``mode="min"`` divides the overlap by the smaller box instead of the union (MTCNN's last stage).
    """
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    keep: list[int] = []
    alive = torch.ones(len(order), dtype=torch.bool)
    areas = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(i)
        lt = torch.maximum(boxes[i, :2], boxes[i + 1:, :2])
        rb = torch.minimum(boxes[i, 2:], boxes[i + 1:, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        denom = torch.minimum(areas[i], areas[i + 1:]) if mode == "min" else areas[i] + areas[i + 1:] - inter
        ov = inter / denom.clamp(min=1e-12)
        alive[i + 1:] &= ov <= iou
    return order[torch.tensor(keep, dtype=torch.long)]
