"""Metrics that need a face model: ID-Guard's L2-face and success rule, TSDF's detector F1.

* ``l2_face``: ID-Guard eq. 16, the mean squared error between G(x) and G(x_adv) inside the binary facial
  mask (:func:`pdbench.faces.landmarks.face_mask`, dlib landmarks of the clean input x; attribute edits
  keep the geometry), on the [-1, 1] scale like every pdbench pixel error, averaged over the edits.
* ``dsr_idguard``: ID-Guard's success rule, per edit L2-face > 0.05 **and** ID sim < 0.4, as a rate over
  the edits. ID sim uses pdbench's identity model (MobileFaceNet; ID-Guard uses ArcFace).
* ``detector_f1``: F1 at IoU ≥ 0.7 (TSDF's protocol) of a face detector (RetinaFace-MobileNet0.25 by
  default; any registered one with ``{name: detector_f1, detector: yunet}`` in a config) on the
  protected image x_adv, with the same detector's faces on the clean image x as ground truth (clean images where it
  finds none are left out: NaN). Per image: a protected-image detection matching a ground-truth face at
  IoU ≥ 0.7 is a true positive, every other detection a false positive, every unmatched face a false
  negative; F1 = 2TP / (2TP + FP + FN), averaged over images (pooled F1 differs slightly when images
  hold several faces). Images run at their own size (RetinaFace finds all of 128 held-out CelebA faces
  at 64 px); smaller ones are upsampled to ``DETECT_SIZE`` px on the short side.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..faces.detectors import shared_detector
from . import METRICS
from .base import Metric, MetricInputs
from .identity import _per_edit as _identity

DETECT_SIZE = 64
IOU = 0.7


def _mask(inp: MetricInputs) -> torch.Tensor:
    from ..faces.landmarks import face_mask

    return inp.memo_x("face_mask", lambda: face_mask(inp.x))


def _l2_face(inp: MetricInputs) -> torch.Tensor:
    """(K, N) masked MSE per edit."""
    def compute():
        m = _mask(inp)  # (N, 1, H, W)
        d = ((inp.out_clean - inp.out_adv) ** 2).mean(2, keepdim=True)  # (K, N, 1, H, W)
        return (d * m).sum((2, 3, 4)) / m.sum((1, 2, 3)).clamp_min(1.0)

    return inp.memo("l2_face", compute)


class _NeedsDlib(Metric):
    def __init__(self):
        from ..faces.landmarks import require_dlib

        require_dlib()  # refused when the run is configured, not after hours of defenses


@METRICS.register("l2_face")
class L2Face(_NeedsDlib):
    description = "ID-Guard L2-face: MSE of G(x) vs G(x_adv) inside the dlib facial mask (eyebrows to mouth)"
    range = (0.0, 4.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return _l2_face(inp).mean(0)


@METRICS.register("dsr_idguard")
class DSRIDGuard(_NeedsDlib):
    description = "ID-Guard success rate over edits: L2-face > 0.05 and ID sim(G(x), G(x_adv)) < 0.4"
    range = (0.0, 1.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        _, fc, fa = _identity(inp)
        sim = (fc * fa).sum(-1)  # (K, N)
        l2 = _l2_face(inp)
        rate = ((l2 > 0.05) & (sim < 0.4)).float().mean(0)
        undefined = (torch.isnan(l2) | torch.isnan(sim)).any(0)  # never counted as "not disrupted"
        return torch.where(undefined, torch.full_like(rate, float("nan")), rate)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    s = min(x.shape[-2:])
    if s >= DETECT_SIZE:
        return x
    size = (round(x.shape[-2] * DETECT_SIZE / s), round(x.shape[-1] * DETECT_SIZE / s))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def f1_against(truth: list, found: list, iou: float = IOU) -> float:
    """Per-image F1 of ``found`` detections against ``truth`` boxes (greedy matching, best score first)."""
    from ..faces.detectors.base import box_iou

    if not truth:
        return float("nan")
    if not found:
        return 0.0
    ious = box_iou(np.stack([d.box for d in found]), np.stack([t.box for t in truth]))
    used: set[int] = set()
    tp = 0
    for i in np.argsort([-d.score for d in found]):
        j = int(np.argmax(np.where([k in used for k in range(len(truth))], -1.0, ious[i])))
        if ious[i, j] >= iou and j not in used:
            used.add(j)
            tp += 1
    fp, fn = len(found) - tp, len(truth) - tp
    return 2 * tp / (2 * tp + fp + fn)


@METRICS.register("detector_f1")
class DetectorF1(Metric):
    description = "RetinaFace F1 at IoU 0.7 on x_adv against its faces on x (TSDF's poisoning metric)"
    direction = "lower=more disrupted"
    range = (0.0, 1.0)
    compares = "detector(x) vs detector(x_adv)"
    undefined_when = "the detector finds no face on the clean image"
    detector = "retinaface"

    def __init__(self, detector: str | None = None):
        """``detector``: any registered face detector (``pdbench list``); default RetinaFace, TSDF's."""
        if detector is not None:
            from ..faces.detectors import DETECTORS

            DETECTORS.get(detector)  # unknown names fail here, with the known ones listed
            self.detector = detector
        shared_detector(self.detector, "cpu")  # a missing weight file is refused now, not after the defenses ran

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        det = shared_detector(self.detector, str(inp.x.device))
        truth = inp.memo_x(f"detections:{self.detector}", lambda: det.detect(_upsample(inp.x)))
        found = det.detect(_upsample(inp.x_adv))
        return torch.tensor([f1_against(t, f) for t, f in zip(truth, found)], dtype=torch.float32)


@METRICS.register("detector_f1_mtcnn")
class DetectorF1MTCNN(DetectorF1):
    description = "MTCNN F1 at IoU 0.7 on x_adv against its faces on x"
    detector = "mtcnn"
