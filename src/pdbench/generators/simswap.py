"""SimSwap (Chen et al., ACM MM 2020), the official generator: identity injection by AdaIN.

The network follows neuralchen/SimSwap ``models/fs_networks.py`` (``Generator_Adain_Upsample``,
``ResnetBlock_Adain``, ``ApplyStyle``, ``InstanceNorm``) module for module, so the authors' released
``latest_net_G.pth`` (224 px, ``latent_size`` 512, 9 blocks) loads with ``strict=True``: a 7×7 convolution
and three stride-2 down-samplings (BatchNorm, ReLU), ``n_blocks`` residual blocks whose two instance-
normalised convolutions are each followed by ``ApplyStyle`` (a linear map of the identity vector to a
per-channel scale and shift, x·(1 + s) + b), three bilinear up-samplings and a 7×7 convolution with tanh,
mapped to [0, 1]. The network computes in [0, 1] (the official test scripts feed ``ToTensor()`` images
and read [0, 1] back); ``generate`` converts from and to pdbench's [-1, 1].

What pdbench changes, and why:

* **identity encoder**: SimSwap's is ArcFace (IR-50, 512-d), which cannot be had here (README of the
  assets). pdbench uses its MobileFaceNet (Xiaoccer 068.ckpt, 128-d, :mod:`pdbench.faces.identity`):
  the identity vector is the L2-normalised 128-d embedding of the identity face (its fixed CelebA box,
  112×96, without the mirror image), so ``latent_size`` is 128 for pdbench's weights. The architecture
  takes any ``latent_size``; an official 512-d checkpoint loads strictly, but generating with it needs
  the ArcFace vector pdbench cannot compute (one line says so).
* **width**: the official widths are 64/128/256/512 (``ngf`` 64); ``ngf`` scales them for the CPU
  (pdbench's 64 px weights: see the model card). Parameter names do not change with the width.

Condition: ``Condition(reference=..., role=...)``. ``role="source"``: the protected photo x gives the
identity and the reference is the target face it is pasted onto (the output keeps the reference's pose
and background). ``role="target"``: x is the target face and the reference gives the identity (the
output keeps x's pose and background). Either way the output is the swapped target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AssetCorruptError, InputError
from ..tensors import check_images
from . import GENERATORS
from .base import Generator, Preprocessing, Unsupported, checkpoint_state, register_preprocessing

OFFICIAL = ("neuralchen/SimSwap test_*.py: faces aligned by insightface to its ArcFace template and cropped "
            "to 224 px, ToTensor() into [0, 1], output in [0, 1]")
PDBENCH = "pdbench train simswap: CelebA's aligned crops, centre square, 64 px, [0, 1] as the official network"
register_preprocessing(Preprocessing(224, 1.0, "none", (0.0, 1.0), source=OFFICIAL), "simswap")
register_preprocessing(Preprocessing(64, 1.0, "celeba", (0.0, 1.0), source=PDBENCH), "simswap-celeba-64-pdbench")

ID_BOX = "celeba"  # where MobileFaceNet reads the identity face in a CelebA-aligned crop (faces.identity.BOXES)
ID_DIM = 128  # MobileFaceNet's embedding (SimSwap's ArcFace: 512)


class InstanceNorm(nn.Module):
    """Parameter-free instance normalisation, (x − mean) / sqrt(var + ε) per channel (official ε 1e-8)."""

    def __init__(self, epsilon: float = 1e-8):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean((2, 3), keepdim=True)
        return x * torch.rsqrt(x.pow(2).mean((2, 3), keepdim=True) + self.epsilon)


class ApplyStyle(nn.Module):
    """AdaIN's modulation from the identity vector: x·(1 + scale) + shift, per channel."""

    def __init__(self, latent_size: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(latent_size, channels * 2)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        style = self.linear(latent).view(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


def _pad(padding_type: str) -> tuple[list[nn.Module], int]:
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise InputError(f"simswap: padding_type must be reflect, replicate or zero, got {padding_type!r}")


class ResnetBlock_Adain(nn.Module):  # noqa: N801 (the official class name)
    """Two (pad, 3×3 conv, instance norm) layers, each modulated by the identity vector, plus the skip."""

    def __init__(self, dim: int, latent_size: int, padding_type: str = "reflect"):
        super().__init__()
        pad, p = _pad(padding_type)
        self.conv1 = nn.Sequential(*pad, nn.Conv2d(dim, dim, 3, padding=p), InstanceNorm())
        self.style1 = ApplyStyle(latent_size, dim)
        self.act1 = nn.ReLU(True)
        pad, p = _pad(padding_type)
        self.conv2 = nn.Sequential(*pad, nn.Conv2d(dim, dim, 3, padding=p), InstanceNorm())
        self.style2 = ApplyStyle(latent_size, dim)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.style1(self.conv1(x), latent))
        return x + self.style2(self.conv2(y), latent)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                         nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(True))


class Generator_Adain_Upsample(nn.Module):  # noqa: N801 (the official class name)
    """The official SimSwap generator (names as ``fs_networks.py``); ``ngf`` = 64 is the official width.

    ``forward(target, latent)``: target (B, 3, H, W) in [0, 1], latent (B, latent_size) the normalised
    identity vector -> (B, 3, H, W) in [0, 1]. H and W must be multiples of 8 (16 with ``deep``)."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, latent_size: int = 512, n_blocks: int = 9,
                 deep: bool = False, ngf: int = 64, padding_type: str = "reflect"):
        super().__init__()
        if n_blocks < 0 or ngf < 1:
            raise InputError(f"simswap: n_blocks must be ≥ 0 and ngf ≥ 1, got {n_blocks}, {ngf}")
        c1, c2, c3, c4 = ngf, ngf * 2, ngf * 4, ngf * 8
        relu = nn.ReLU(True)
        self.deep = deep
        self.latent_size = latent_size
        self.first_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(input_nc, c1, 7), nn.BatchNorm2d(c1), relu)
        self.down1 = nn.Sequential(nn.Conv2d(c1, c2, 3, 2, 1), nn.BatchNorm2d(c2), relu)
        self.down2 = nn.Sequential(nn.Conv2d(c2, c3, 3, 2, 1), nn.BatchNorm2d(c3), relu)
        self.down3 = nn.Sequential(nn.Conv2d(c3, c4, 3, 2, 1), nn.BatchNorm2d(c4), relu)
        if deep:
            self.down4 = nn.Sequential(nn.Conv2d(c4, c4, 3, 2, 1), nn.BatchNorm2d(c4), relu)
        self.BottleNeck = nn.Sequential(*[ResnetBlock_Adain(c4, latent_size, padding_type) for _ in range(n_blocks)])
        if deep:
            self.up4 = _up(c4, c4)
        self.up3 = _up(c4, c3)
        self.up2 = _up(c3, c2)
        self.up1 = _up(c2, c1)
        self.last_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c1, output_nc, 7), nn.Tanh())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The target's features before the identity enters (after the last down-sampling)."""
        x = self.down3(self.down2(self.down1(self.first_layer(x))))
        return self.down4(x) if self.deep else x

    def inject(self, h: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """The AdaIN residual blocks: the identity vector modulates the bottleneck."""
        for block in self.BottleNeck:
            h = block(h, latent)
        return h

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        if self.deep:
            h = self.up4(h)
        return (self.last_layer(self.up1(self.up2(self.up3(h)))) + 1) / 2

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return self.decode(self.inject(self.encode(x), latent.to(x.dtype)))


def identity_vector(face: torch.Tensor, device=None) -> torch.Tensor:
    """SimSwap's identity vector with pdbench's encoder: the L2-normalised 128-d MobileFaceNet embedding
    of face (N, 3, H, W) in [-1, 1] (CelebA-aligned; its fixed identity box, no mirror image).
    Differentiable in ``face`` (the encoder's weights are frozen)."""
    from ..faces.identity import get_embedder

    e = get_embedder(ID_BOX, device if device is not None else face.device)
    return F.normalize(e.net(e.prepare(face)).float(), dim=1)


def net_config(state: dict) -> dict:
    """Width, depth, identity size and ``deep`` of a state dict in the official names (any checkpoint)."""
    if "first_layer.1.weight" not in state or "BottleNeck.0.style1.linear.weight" not in state:
        raise AssetCorruptError("not a SimSwap generator state dict (no 'first_layer.1.weight' or "
                                "'BottleNeck.0.style1.linear.weight')")
    blocks = {k.split(".")[1] for k in state if k.startswith("BottleNeck.")}
    return {"ngf": int(state["first_layer.1.weight"].shape[0]), "n_blocks": len(blocks),
            "latent_size": int(state["BottleNeck.0.style1.linear.weight"].shape[1]),
            "deep": "down4.0.weight" in state}


@GENERATORS.register("simswap")
class SimSwap(Generator):
    """Face swap: the target's pose, expression and background with the source's identity (see the
    module docstring for ``role``)."""

    kind = "swap"
    inputs = ("reference",)
    conditional_encoder = False
    default_asset = "simswap-celeba-64-pdbench"
    # pdbench's shipped weights (a checkpoint path clears this): measured by benchmarks/simswap.py
    experimental: str | None = ("pdbench's 64 px weights: 1,040 CPU steps of a 1,000,000-step recipe; not a real "
                                "swapper (closer to the source than to the target for 37.5 % of 120 held-out pairs under "
                                "MobileFaceNet and 0 % under dlib, which finds a face in 3 % of its outputs; the 80 % "
                                "rule is not met): the output barely depends on the identity")

    def __init__(self, resolution: int = 224, ngf: int = 64, n_blocks: int = 9, latent_size: int = 512,
                 deep: bool = False):
        super().__init__()
        self.resolution = resolution
        self.net = Generator_Adain_Upsample(3, 3, latent_size, n_blocks, deep, ngf)

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def from_assets(cls, checkpoint: str | None = None, asset: str | None = None, resolution: int | None = None,
                    device: str | torch.device = "cpu", preprocessing: str | None = None) -> "SimSwap":
        """pdbench's weights (default :attr:`default_asset`) or a checkpoint path in the official names
        (the authors' ``latest_net_G.pth``), loaded strictly; width, depth and identity size are read
        from the weights. A checkpoint path clears ``experimental``."""
        asset = asset or cls.default_asset
        state, path, meta = checkpoint_state(checkpoint, asset)
        try:
            cfg = net_config(state)
        except AssetCorruptError as e:
            raise AssetCorruptError(f"{path}: {e}") from None
        model = cls(resolution or int(meta.get("resolution", 224)), **cfg)
        return model._loaded(state, checkpoint, asset, preprocessing, device)

    # -- interface ---------------------------------------------------------------------------
    def conditions(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        raise Unsupported(f"{self.name}: swaps faces and has no attribute edits; give Condition(reference=<faces>, "
                          "role='source' or 'target')")

    def unedited(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        raise Unsupported(f"{self.name}: a swap's reconstruction is Condition(reference=x, role='target') (x's own identity)")

    def _check(self, x: torch.Tensor, what: str) -> None:
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise InputError(f"{self.name}: expects {self.resolution}x{self.resolution} {what}, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; resize with pdbench.data (or load weights for that size)")

    def identity(self, face: torch.Tensor) -> torch.Tensor:
        """The identity vector of face (N, 3, H, W) in [-1, 1] (:func:`identity_vector`)."""
        check_images(face, f"{self.name} identity face")
        if self.net.latent_size != ID_DIM:
            raise Unsupported(f"{self.name}: these weights take a {self.net.latent_size}-d identity vector (SimSwap's "
                              f"ArcFace), which pdbench cannot compute (its encoder is the {ID_DIM}-d MobileFaceNet); "
                              "use weights trained with `pdbench train simswap`")
        return identity_vector(face)

    def swap(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """target and source (B, 3, H, W) in [-1, 1] -> the target with the source's identity, in [-1, 1]."""
        self._check(target, "target faces")
        return self.net(target * 0.5 + 0.5, self.identity(source)) * 2 - 1

    def edit(self, x: torch.Tensor, attrs: torch.Tensor | None, reference: torch.Tensor | None = None,
             role: str | None = None, **inputs) -> torch.Tensor:
        """One forward: x and the reference (B, 3, H, W) in the record's [0, 1]; ``role`` says which of
        the two is the target (whose pose and background the output keeps) and which gives the identity."""
        if reference is None:
            raise InputError(f"{self.name}: needs a reference face: Condition(reference=<faces>, role='source' "
                             "(x gives the identity) or 'target' (x is the face it goes onto))")
        self._check(x, "images")
        self._check(reference, "reference faces")
        target, source = (reference, x) if role == "source" else (x, reference)
        return self.net(target, self.identity(self.from_model_range(source)))

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The target's bottleneck features before identity injection (x in [-1, 1] as the target)."""
        self._check(x, "images")
        return self.net.encode(x * 0.5 + 0.5)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The target path's activations (x in [-1, 1] as the target): ``first``, ``down1``–``down3``
        (``down4`` with ``deep``); the identity enters after them."""
        self._check(x, "images")
        h, out = x * 0.5 + 0.5, {}
        names = ["first_layer", "down1", "down2", "down3"] + (["down4"] if self.net.deep else [])
        for n in names:
            h = getattr(self.net, n)(h)
            out["first" if n == "first_layer" else n] = h
        return out
