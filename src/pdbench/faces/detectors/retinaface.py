"""RetinaFace with the MobileNet-0.25 backbone (Deng et al. 2020), the detector TSDF poisons.

Module and parameter names follow biubug6's code (``models/net.py``, ``models/retinaface.py``,
``cfg_mnet``), so a released ``mobilenet0.25_Final.pth`` loads with ``strict=True``: a MobileNet-V1
×0.25 trunk (``body.stage1..3``), a three-level FPN, SSH context modules and per-level class / box /
five-landmark heads with two anchors per location at strides 8, 16, 32 (variances 0.1, 0.2).

Two trainings share these names and differ in activations and anchors, so the variant matters:

* ``"1mb"`` (biubug6/Face-Detector-1MB-with-landmark; the asset ``retinaface-mobilenet0.25``):
  plain ReLU everywhere, anchor sizes 10/20, 32/64, 128/256;
* ``"pytorch_retinaface"`` (biubug6/Pytorch_Retinaface): LeakyReLU 0.1 in the trunk, FPN and SSH,
  anchor sizes 16/32, 64/128, 256/512.

The asset's weights only work as ``"1mb"``: on 30 photos of ``deepface-unit`` its eye landmarks fall
within 0.09 inter-ocular distances (median) of dlib's, against 0.54–1.0 with either change.

Preprocessing is the official ``detect.py``'s: BGR pixel values in 0..255 minus the mean
(104, 117, 123), no resizing. Post-processing as there: softmax face score, boxes and landmarks
decoded from the anchors, candidates above 0.02, NMS at IoU 0.4; a face counts as detected at score
≥ 0.6 (``vis_thres``). ``raw`` and ``face_scores`` are differentiable w.r.t. the input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...assets import ASSETS, load_state_dict, resolve
from ...errors import UnknownNameError
from ...tensors import check_images
from . import DETECTORS
from .base import Detection, FaceDetector, nms

VARIANTS = {  # activation slope, anchor min sizes per level
    "1mb": (0.0, ((10, 20), (32, 64), (128, 256))),
    "pytorch_retinaface": (0.1, ((16, 32), (64, 128), (256, 512))),
}
STEPS = (8, 16, 32)
VARIANCE = (0.1, 0.2)
MEAN_BGR = (104.0, 117.0, 123.0)


def conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky, inplace=True))


def conv_bn_no_relu(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup))


def conv_bn1x1(inp: int, oup: int, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky, inplace=True))


def conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp), nn.LeakyReLU(leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky, inplace=True),
    )


class MobileNetV1Body(nn.Module):
    """The three stages of MobileNet-V1 ×0.25 that RetinaFace keeps (its ``IntermediateLayerGetter``)."""

    def __init__(self, slope: float = 0.0):
        super().__init__()
        dw = lambda i, o, s: conv_dw(i, o, s, slope)  # noqa: E731
        self.stage1 = nn.Sequential(conv_bn(3, 8, 2, leaky=slope), dw(8, 16, 1), dw(16, 32, 2),
                                    dw(32, 32, 1), dw(32, 64, 2), dw(64, 64, 1))
        self.stage2 = nn.Sequential(dw(64, 128, 2), *[dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(dw(128, 256, 2), dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int] = (64, 128, 256), out: int = 64, slope: float = 0.0):
        super().__init__()
        leaky = slope if out <= 64 else 0.0
        self.output1 = conv_bn1x1(in_channels[0], out, leaky)
        self.output2 = conv_bn1x1(in_channels[1], out, leaky)
        self.output3 = conv_bn1x1(in_channels[2], out, leaky)
        self.merge1 = conv_bn(out, out, leaky=leaky)
        self.merge2 = conv_bn(out, out, leaky=leaky)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[2:], mode="nearest"))
        return [o1, o2, o3]


class SSH(nn.Module):
    def __init__(self, inp: int = 64, out: int = 64, slope: float = 0.0):
        super().__init__()
        leaky = slope if out <= 64 else 0.0
        self.conv3X3 = conv_bn_no_relu(inp, out // 2)
        self.conv5X5_1 = conv_bn(inp, out // 4, leaky=leaky)
        self.conv5X5_2 = conv_bn_no_relu(out // 4, out // 4)
        self.conv7X7_2 = conv_bn(out // 4, out // 4, leaky=leaky)
        self.conv7x7_3 = conv_bn_no_relu(out // 4, out // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv3X3(x)
        b1 = self.conv5X5_1(x)
        b = self.conv5X5_2(b1)
        c = self.conv7x7_3(self.conv7X7_2(b1))
        return F.relu(torch.cat([a, b, c], dim=1))


class _Head(nn.Module):
    def __init__(self, inp: int, per_anchor: int, anchors: int = 2):
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(inp, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFaceNet(nn.Module):
    def __init__(self, variant: str = "1mb"):
        super().__init__()
        slope, self.min_sizes = VARIANTS[variant]
        self.body = MobileNetV1Body(slope)
        self.fpn = FPN(slope=slope)
        self.ssh1, self.ssh2, self.ssh3 = SSH(slope=slope), SSH(slope=slope), SSH(slope=slope)
        self.ClassHead = nn.ModuleList(_Head(64, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(64, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(64, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """BGR-mean-subtracted input -> (box offsets (N,A,4), class logits (N,A,2), landmark offsets (N,A,10))."""
        f = self.fpn(self.body(x))
        feats = [self.ssh1(f[0]), self.ssh2(f[1]), self.ssh3(f[2])]
        loc = torch.cat([h(t) for h, t in zip(self.BboxHead, feats)], dim=1)
        conf = torch.cat([h(t) for h, t in zip(self.ClassHead, feats)], dim=1)
        landm = torch.cat([h(t) for h, t in zip(self.LandmarkHead, feats)], dim=1)
        return loc, conf, landm


def priors(h: int, w: int, device: torch.device | str = "cpu", min_sizes=VARIANTS["1mb"][1]) -> torch.Tensor:
    """Anchors (A, 4) as (cx, cy, s_kx, s_ky) relative to the image, in the heads' order."""
    out = []
    for step, sizes in zip(STEPS, min_sizes):
        fh, fw = math.ceil(h / step), math.ceil(w / step)
        ii, jj = torch.meshgrid(torch.arange(fh), torch.arange(fw), indexing="ij")
        cx = ((jj.flatten().float() + 0.5) * step / w)[:, None].expand(-1, len(sizes))
        cy = ((ii.flatten().float() + 0.5) * step / h)[:, None].expand(-1, len(sizes))
        sx = torch.tensor([s / w for s in sizes]).expand(fh * fw, -1)
        sy = torch.tensor([s / h for s in sizes]).expand(fh * fw, -1)
        out.append(torch.stack([cx, cy, sx, sy], dim=-1).reshape(-1, 4))
    return torch.cat(out).to(device)


def decode_boxes(loc: torch.Tensor, pri: torch.Tensor) -> torch.Tensor:
    c = pri[..., :2] + loc[..., :2] * VARIANCE[0] * pri[..., 2:]
    s = pri[..., 2:] * torch.exp(loc[..., 2:] * VARIANCE[1])
    return torch.cat([c - s / 2, c + s / 2], dim=-1)


def decode_landmarks(landm: torch.Tensor, pri: torch.Tensor) -> torch.Tensor:
    pts = landm.reshape(*landm.shape[:-1], 5, 2)
    return pri[..., None, :2] + pts * VARIANCE[0] * pri[..., None, 2:]


@DETECTORS.register("retinaface")
class RetinaFace(FaceDetector):
    differentiable = True
    has_landmarks = True
    threshold = 0.6  # the official detect.py's vis_thres

    def __init__(self, net: RetinaFaceNet, device: str | torch.device = "cpu"):
        self.net = net.to(device).eval().requires_grad_(False)
        self.device = torch.device(device)

    @classmethod
    def load(cls, checkpoint: str | None = None, variant: str | None = None,
             device: str | torch.device = "cpu") -> "RetinaFace":
        """The asset (variant "1mb"), or a checkpoint of either training (say which with ``variant``)."""
        spec = ASSETS.get("retinaface-mobilenet0.25") if checkpoint is None else None
        state = load_state_dict(resolve(spec.name) if spec else checkpoint, asset=spec)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        if variant is not None and variant not in VARIANTS:
            raise UnknownNameError(f"unknown RetinaFace variant {variant!r}; known: {', '.join(VARIANTS)}")
        net = RetinaFaceNet(variant or "1mb")
        net.load_state_dict(state, strict=True)
        return cls(net, device)

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """pdbench RGB [-1, 1] -> the official input: BGR in 0..255 minus (104, 117, 123)."""
        bgr = (x.flip(1) + 1.0) * 127.5
        return bgr - torch.tensor(MEAN_BGR, device=x.device, dtype=x.dtype)[None, :, None, None]

    def raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_images(x, "retinaface input")
        return self.net(self.preprocess(x))

    def face_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Per-anchor face probability (N, A), differentiable: what detector-poisoning attacks lower."""
        return F.softmax(self.raw(x)[1], dim=-1)[..., 1]

    def detect(self, x: torch.Tensor, threshold: float | None = None, candidates: float = 0.02,
               nms_iou: float = 0.4) -> list[list[Detection]]:
        thr = self.threshold if threshold is None else threshold
        with torch.inference_mode():
            x = x.to(self.device)
            loc, conf, landm = self.raw(x)
            h, w = x.shape[-2:]
            pri = priors(h, w, x.device, self.net.min_sizes)
            scale = torch.tensor([w, h], device=x.device, dtype=torch.float32)
            boxes = decode_boxes(loc, pri) * scale.repeat(2)
            pts = decode_landmarks(landm, pri) * scale
            score = F.softmax(conf, dim=-1)[..., 1]
        out: list[list[Detection]] = []
        for i in range(x.shape[0]):
            keep = torch.nonzero(score[i] > candidates).flatten()
            keep = keep[nms(boxes[i, keep], score[i, keep], nms_iou)] if len(keep) else keep
            dets = [Detection(boxes[i, k].cpu().numpy(), float(score[i, k]), pts[i, k].cpu().numpy())
                    for k in keep.tolist() if score[i, k] >= thr]
            out.append(dets)
        return out
