"""MTCNN (Zhang et al. 2016) with facenet-pytorch's weights and parameter names (timesler/facenet-pytorch).

P-Net on an image pyramid (smallest face 20 px, scale factor 0.709), R-Net on 24×24 crops, O-Net on
48×48 crops with five landmarks; thresholds 0.6 / 0.7 / 0.7, NMS 0.5 per scale, 0.7 across scales and
after R-Net, 0.7 "min" after O-Net; boxes squared between stages; pixels normalised as (v − 127.5)/128;
crops resampled with area interpolation: the algorithm of facenet-pytorch's ``detect_face``, written
for pdbench's tensors (facenet-pytorch itself needs torchvision and is not imported).

Weights: facenet-pytorch's ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (assets ``mtcnn-*``, ``detectors/mtcnn/``
in the asset directory or the fetch cache), sha256-checked. Their official source is the facenet-pytorch
2.6.0 wheel: ``pdbench assets fetch mtcnn-pnet mtcnn-rnet mtcnn-onet`` (or ``--for-tests``) takes the three
files out of it; the package itself is never installed or imported.

``face_scores`` (P-Net's face probabilities over the whole pyramid) and ``box_scores`` (O-Net's verdict
on given boxes) are differentiable w.r.t. the input, for detector-poisoning attacks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...assets import load_state_dict, resolve
from ...tensors import check_images
from . import DETECTORS
from .base import Detection, FaceDetector, nms

MIN_FACE = 20
FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)


class PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x)))))))
        return self.conv4_2(x), self.conv4_1(x)  # box offsets, class logits (softmax is the caller's)


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # the Caffe layout
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.dense5_1(x)


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x)


def _weights(stage: str) -> Path:
    return resolve(f"mtcnn-{stage}")  # asset directory, else the fetch cache; sha256-checked


def _resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="area")


def _square(b: torch.Tensor) -> torch.Tensor:
    """rerec: grow each box to a square around its centre."""
    b = b.clone()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = torch.maximum(w, h)
    b[:, 0] += w * 0.5 - side * 0.5
    b[:, 1] += h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _regress(b: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    b = b.clone()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] = b[:, :4] + reg * torch.stack([w, h, w, h], 1)
    return b


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, img: torch.Tensor, iou: float, mode: str = "union"):
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    off = img.to(boxes) * (boxes.max() + 1)
    return nms(boxes + off[:, None], scores, iou, mode)


def _crops(imgs: torch.Tensor, boxes: torch.Tensor, inds: torch.Tensor, size: int) -> torch.Tensor:
    h, w = imgs.shape[-2:]
    b = boxes[:, :4].trunc().int()
    out = []
    for k in range(len(b)):
        x0, y0 = max(int(b[k, 0]), 1), max(int(b[k, 1]), 1)
        x1, y1 = min(int(b[k, 2]), w), min(int(b[k, 3]), h)
        crop = imgs[inds[k], :, y0 - 1:y1, x0 - 1:x1][None]
        if crop.shape[-1] == 0 or crop.shape[-2] == 0:
            crop = torch.zeros(1, 3, 1, 1, dtype=imgs.dtype)
        out.append(_resample(crop, (size, size)))
    return (torch.cat(out) - 127.5) * 0.0078125


@DETECTORS.register("mtcnn")
class MTCNN(FaceDetector):
    differentiable = True
    has_landmarks = True
    threshold = THRESHOLDS[2]

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for stage, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            net.load_state_dict(load_state_dict(_weights(stage)), strict=True)
            net.to(self.device).eval().requires_grad_(False)

    @classmethod
    def load(cls, device: str | torch.device = "cpu") -> "MTCNN":
        return cls(device)

    @staticmethod
    def scales(h: int, w: int) -> list[float]:
        m = 12.0 / MIN_FACE
        minl, s, out = min(h, w) * m, m, []
        while minl >= 12:
            out.append(s)
            s *= FACTOR
            minl *= FACTOR
        return out

    def face_scores(self, x: torch.Tensor) -> torch.Tensor:
        """P-Net face-vs-background logit margin at every pyramid cell (N, cells), differentiable w.r.t. x.

        Margins rather than probabilities: MTCNN's probabilities saturate at 1 on clear faces, where
        their gradient vanishes."""
        check_images(x, "mtcnn input")
        px = (x + 1.0) * 127.5
        h, w = x.shape[-2:]
        out = []
        for s in self.scales(h, w):
            logits = self.pnet((_resample(px, (int(h * s + 1), int(w * s + 1))) - 127.5) * 0.0078125)[1]
            out.append((logits[:, 1] - logits[:, 0]).flatten(1))
        return torch.cat(out, dim=1)

    def box_scores(self, x: torch.Tensor, detections: list[list[Detection]]) -> torch.Tensor:
        """O-Net face-vs-background logit margin of the given boxes (e.g. the clean image's faces) on x,
        differentiable w.r.t. x.

        Returns a flat tensor over all boxes of all images; attacking it (with ``face_scores`` for the
        proposals) makes the cascade reject the faces it found before.
        """
        check_images(x, "mtcnn input")
        boxes = [torch.as_tensor(_square(torch.as_tensor(np.array([d.box]))).numpy()[0]) for ds in detections for d in ds]
        inds = torch.tensor([i for i, ds in enumerate(detections) for _ in ds], dtype=torch.long)
        if not boxes:
            return x.new_zeros(0)
        px = (x + 1.0) * 127.5
        logits = self.onet(_crops(px, torch.stack(boxes).to(x.dtype), inds, 48))[2]
        return logits[:, 1] - logits[:, 0]

    @torch.inference_mode()
    def detect(self, x: torch.Tensor, threshold: float | None = None) -> list[list[Detection]]:
        check_images(x, "mtcnn input")
        thr = list(THRESHOLDS)
        if threshold is not None:
            thr[2] = threshold
        imgs = ((x.to(self.device).float() + 1.0) * 127.5).round()  # the uint8 photo MTCNN was written for
        n, (h, w) = x.shape[0], x.shape[-2:]
        boxes, inds = [], []
        for s in self.scales(h, w):
            reg, logit = self.pnet((_resample(imgs, (int(h * s + 1), int(w * s + 1))) - 127.5) * 0.0078125)
            prob = F.softmax(logit, dim=1)
            mask = prob[:, 1] >= thr[0]
            mi = mask.nonzero()
            if not len(mi):
                continue
            cell = mi[:, 1:].to(imgs.dtype).flip(1)  # (x, y) of the cell
            q1 = ((2 * cell + 1) / s).floor()
            q2 = ((2 * cell + 12) / s).floor()
            bb = torch.cat([q1, q2, prob[:, 1][mask][:, None], reg.permute(0, 2, 3, 1)[mask]], 1)
            keep = _batched_nms(bb[:, :4], bb[:, 4], mi[:, 0], 0.5)
            boxes.append(bb[keep])
            inds.append(mi[keep, 0])
        if not boxes:
            return [[] for _ in range(n)]
        bb, ii = torch.cat(boxes), torch.cat(inds)
        keep = _batched_nms(bb[:, :4], bb[:, 4], ii, 0.7)
        bb, ii = bb[keep], ii[keep]
        wh = (bb[:, 2:4] - bb[:, :2]).repeat(1, 2)
        b = _square(torch.cat([bb[:, :4] + bb[:, 5:9] * wh, bb[:, 4:5]], 1))
        # R-Net
        reg, logit = self.rnet(_crops(imgs, b, ii, 24))
        prob = F.softmax(logit, dim=1)
        ok = prob[:, 1] > thr[1]
        b, ii, reg = torch.cat([b[ok, :4], prob[ok, 1:2]], 1), ii[ok], reg[ok]
        keep = _batched_nms(b[:, :4], b[:, 4], ii, 0.7)
        b = _square(_regress(b[keep], reg[keep]))
        ii = ii[keep]
        if not len(b):
            return [[] for _ in range(n)]
        # O-Net
        reg, pts, logit = self.onet(_crops(imgs, b, ii, 48))
        prob = F.softmax(logit, dim=1)
        ok = prob[:, 1] > thr[2]
        b, ii, reg, pts = torch.cat([b[ok, :4], prob[ok, 1:2]], 1), ii[ok], reg[ok], pts[ok]
        bw, bh = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
        px = bw[:, None] * pts[:, :5] + b[:, 0:1] - 1
        py = bh[:, None] * pts[:, 5:] + b[:, 1:2] - 1
        lm = torch.stack([px, py], -1)
        b = _regress(b, reg)
        keep = _batched_nms(b[:, :4], b[:, 4], ii, 0.7, mode="min")
        out: list[list[Detection]] = [[] for _ in range(n)]
        for k in keep.tolist():
            out[int(ii[k])].append(Detection(b[k, :4].double().cpu().numpy(), float(b[k, 4]), lm[k].double().cpu().numpy()))
        return [sorted(d, key=lambda z: -z.score) for d in out]
