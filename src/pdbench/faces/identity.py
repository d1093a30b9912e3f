"""Identity embedding with MobileFaceNet (Chen et al. 2018, ArcFace loss), 128-d at 112×96.

The architecture follows Xiaoccer/MobileFaceNet_Pytorch (core/model.py) module for module, so its
released ``068.ckpt`` (CASIA-WebFace, 99.5 % LFW accuracy as reported there) loads with
``strict=True``. As in that repository's LFW evaluation, an image is embedded together with its
mirror image and the two 128-d features are concatenated; inputs are normalised as (v − 127.5)/128.
Everything is differentiable, so identity losses can be optimised through it.

Alignment: the model expects faces aligned to the 96×112 five-point template. ``box="detect"``
finds the five landmarks with RetinaFace (:mod:`pdbench.faces.detectors`) and warps each face onto
that template (:mod:`pdbench.faces.align`; the most confident face per image, the whole image where
none is found). For photos that are already aligned crops, a fixed crop box (relative coordinates)
is cheaper and needs no detector: ``"celeba"`` maps CelebA's mean aligned landmarks, after StarGAN's
centre crop, onto the template; ``"full"`` uses the whole image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..assets import ASSETS, load_state_dict, resolve
from ..tensors import check_images

# (t expansion, c channels, n repeats, s stride) per stage, as the MobileFaceNet paper's Table 1
SETTING = [(2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)]

BOXES = {
    # left, top, right, bottom, relative to a square aligned crop
    "celeba": (0.214, 0.206, 0.781, 0.871),
    "lfw": (0.30, 0.28, 0.70, 0.75),  # LFW's 250×250 photos, face centred by their detector
    "full": (0.0, 0.0, 1.0, 1.0),
}


class ConvBlock(nn.Module):
    def __init__(self, inp: int, oup: int, k, s: int, p: int, dw: bool = False, linear: bool = False):
        super().__init__()
        self.linear = linear
        self.conv = nn.Conv2d(inp, oup, k, s, p, groups=inp if dw else 1, bias=False)
        self.bn = nn.BatchNorm2d(oup)
        if not linear:
            self.prelu = nn.PReLU(oup)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.linear else self.prelu(x)


class Bottleneck(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, t: int):
        super().__init__()
        self.connect = stride == 1 and inp == oup
        h = inp * t
        self.conv = nn.Sequential(
            nn.Conv2d(inp, h, 1, 1, 0, bias=False), nn.BatchNorm2d(h), nn.PReLU(h),
            nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.PReLU(h),
            nn.Conv2d(h, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.connect else self.conv(x)


class MobileFaceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, dw=True)
        layers, inp = [], 64
        for t, c, n, s in SETTING:
            for i in range(n):
                layers.append(Bottleneck(inp, c, s if i == 0 else 1, t))
                inp = c
        self.blocks = nn.Sequential(*layers)
        self.conv2 = ConvBlock(128, 512, 1, 1, 0)
        self.linear7 = ConvBlock(512, 512, (7, 6), 1, 0, dw=True, linear=True)
        self.linear1 = ConvBlock(512, 128, 1, 1, 0, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.dw_conv1(self.conv1(x)))
        return self.linear1(self.linear7(self.conv2(x))).flatten(1)


class IdentityEmbedder(nn.Module):
    """Images (pdbench convention) -> L2-normalised identity embeddings (N, 256)."""

    size = (112, 96)

    def __init__(self, net: MobileFaceNet, box: str | tuple = "celeba"):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.detect = box == "detect"
        self.box = BOXES["full"] if self.detect else BOXES[box] if isinstance(box, str) else tuple(box)
        self.found: torch.Tensor | None = None  # detect mode: which images of the last batch had a face

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        l, t, r, b = self.box
        crop = x[..., round(t * h):round(b * h), round(l * w):round(r * w)]
        return F.interpolate(crop, size=self.size, mode="bilinear", align_corners=False, antialias=True)

    def _aligned(self, x: torch.Tensor) -> torch.Tensor:
        from .align import MOBILEFACENET_112x96, align
        from .detectors import shared_detector

        det = shared_detector("retinaface", str(x.device))
        f = max(1.0, DETECT_MIN / min(x.shape[-2:]))
        xs = F.interpolate(x.detach(), scale_factor=f, mode="bilinear", align_corners=False) if f > 1 else x.detach()
        found = det.detect(xs)
        lm = torch.zeros(x.shape[0], 5, 2)
        ok = torch.zeros(x.shape[0], dtype=torch.bool)
        for i, d in enumerate(found):
            if d:
                lm[i] = torch.as_tensor(d[0].landmarks, dtype=torch.float32) / f
                ok[i] = True
        self.found = ok
        out = self._crop(x)
        if ok.any():
            al = align(x[ok], lm[ok], MOBILEFACENET_112x96, self.size)
            out = out.clone()
            out[ok.to(x.device)] = al
        return out

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "identity input")
        crop = self._aligned(x) if self.detect else self._crop(x)
        # pdbench [-1, 1] -> the model's (v − 127.5) / 128 on 0..255
        return (crop + 1.0) * 127.5 / 128.0 - 127.5 / 128.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.prepare(x)
        f = torch.cat([self.net(v), self.net(v.flip(-1))], dim=1)
        return F.normalize(f, dim=1)


_CACHE: dict = {}
DETECT_MIN = 128  # images are upsampled to this short side for landmark detection


def _mobilefacenet() -> nn.Module:
    spec = ASSETS.get("mobilefacenet")
    state = load_state_dict(resolve("mobilefacenet"), asset=spec)
    state = state.get("net_state_dict", state)
    net = MobileFaceNet()
    net.load_state_dict(state, strict=True)
    return net


def _mobilefacenet_onnx() -> nn.Module:
    from .mobilefacenet_onnx import load_onnx_mobilefacenet

    return load_onnx_mobilefacenet()


def _onnx_embedder(net, box):
    from .mobilefacenet_onnx import OnnxIdentityEmbedder

    return OnnxIdentityEmbedder(net, box)


# the differentiable identity extractors, by name: (network loader, embedder class, default box)
EMBEDDERS: dict = {
    "mobilefacenet": (_mobilefacenet, IdentityEmbedder, "celeba"),  # Xiaoccer's 068.ckpt, 112×96
    "mobilefacenet-onnx": (_mobilefacenet_onnx, _onnx_embedder, "celeba-square"),  # pixamatch's ONNX, 112×112
}


def get_embedder(box: str | tuple | None = "celeba", device: str | torch.device = "cpu",
                 model: str = "mobilefacenet") -> IdentityEmbedder:
    """An identity embedder from the asset store (checksum-verified, strict load), cached per process.

    ``model`` names one of :data:`EMBEDDERS`; ``box=None`` takes that model's default crop."""
    from ..errors import UnknownNameError

    if model not in EMBEDDERS:
        raise UnknownNameError(f"unknown identity model {model!r}; known: {', '.join(EMBEDDERS)}")
    load, cls, default = EMBEDDERS[model]
    if box is None:
        box = default
    key = (model, box if isinstance(box, str) else tuple(box), str(device))
    if key not in _CACHE:
        # built outside inference mode even when first asked for inside it (an objective's references):
        # weights created there would be inference tensors, unusable for the gradients of a later attack
        with torch.inference_mode(False):
            _CACHE[key] = cls(load(), box).to(device)
    return _CACHE[key]
