"""RelGAN (Wu et al., ICCV 2019), the official architecture (elvisyjlin/RelGAN-PyTorch: ``nn.py``).

The generator is conditioned on a **relative attribute vector** v = c_target − c_source (what to
change, 0 where nothing changes) tiled onto the image, not on the target attributes themselves:
``G(x, 0)`` must return x. Its layout and parameter names are the official ones (``conv_in``,
``down1``, ``down2``, ``resb.<i>.f``, ``up2``, ``up1``, ``conv_out``; convolutions with biases,
Switchable Normalization ``SwitchNorm2d(momentum=0.9)`` with ``mean_weight``/``var_weight`` and the
running batch statistics) so that a checkpoint of the official code (``torch.load(...)['G']``) loads
with ``strict=True``. The official width is fixed at 64 channels (``conv_dim`` 64 here); pdbench's own
CPU weights are narrower.

Test time follows the official ``test.py`` (and ID-Guard, which puts only RelGAN in ``eval()``): the
generator runs in eval mode, so the batch-norm part of each Switchable Norm uses its running
statistics and one photo's edit does not depend on the other photos in its batch. :class:`RelGAN`
keeps its network in eval mode whatever ``.train()`` is called with.

Edits (``conditions``) are StarGAN's five official test domains (each hair colour one-hot, gender and
age flipped) made relative: v = c_trg − c_org from the photo's own labels. With unknown labels (taken
as 0, as StarGAN does) they are the official code's fixed test vectors ``('Black_Hair', 1)``,
``('Blond_Hair', 1)``, ``('Brown_Hair', 1)``, ``('Male', 1)``, ``('Young', 1)``.

Sign: pdbench (and the paper, and the authors' Keras code willylulu/RelGAN: ``vec_ab = att_b − att_a``)
feeds v = c_trg − c_src. elvisyjlin/RelGAN-PyTorch's ``train.py`` computes ``vec_ab = att_a − att_b``
for the translation a → b, so its checkpoints expect −v: load them with ``vector="source-target"``;
``conditions()`` and a condition's ``attrs`` are always c_trg − c_src.

Preprocessing: the official CelebA loader ``Resize(image_size)``, ``CenterCrop(image_size)`` of the
aligned 178 × 218 images (the central square of the short side), ``Normalize(0.5, 0.5)``: StarGAN's.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import AssetCorruptError, InputError
from ..tensors import check_images
from . import GENERATORS
from .base import Generator, Preprocessing, checkpoint_state, register_preprocessing

# the official attributes.yaml (17) and StarGAN's five, which ID-Guard's RelGAN (n_z = 5) uses
OFFICIAL_ATTRS = ("5_o_Clock_Shadow", "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Goatee",
                  "Gray_Hair", "Male", "Mustache", "Pale_Skin", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Hat",
                  "Young")
STARGAN_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
ATTRIBUTE_SETS = {"official17": OFFICIAL_ATTRS, "stargan5": STARGAN_ATTRS}
HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")  # the one-hot hair colours of the edits
EDITS = ("to_Black_Hair", "to_Blond_Hair", "to_Brown_Hair", "flip_Male", "flip_Young")
VECTORS = ("target-source", "source-target")  # what the network was trained to read (see the module notes)

OFFICIAL = "elvisyjlin/RelGAN-PyTorch data.py: Resize(image_size), CenterCrop(image_size), Normalize(0.5, 0.5)"
register_preprocessing(Preprocessing(crop=1.0, alignment="celeba", source=OFFICIAL), "relgan")
register_preprocessing(Preprocessing(64, 1.0, "celeba", source="pdbench train relgan (the official loader's crop)"),
                       "relgan-celeba-64-pdbench")


def attributes_for(n_z: int) -> tuple[str, ...]:
    """The attribute list of a RelGAN with an n_z-dimensional vector: the official 17 or StarGAN's 5."""
    for attrs in ATTRIBUTE_SETS.values():
        if len(attrs) == n_z:
            return attrs
    raise InputError(f"relgan: a {n_z}-attribute vector is neither the official 17 attributes nor StarGAN's 5; "
                     "train with --set attribute_set=official17 or stargan5")


class SwitchNorm2d(nn.Module):
    """Switchable Normalization (Luo et al., 2019) as the official code uses it: instance, layer and
    batch statistics mixed by softmax weights (``mean_weight``, ``var_weight``), affine ``weight`` and
    ``bias`` of shape (1, C, 1, 1), running batch statistics (1, C, 1) updated as
    ``running ← momentum · running + (1 − momentum) · batch`` in training and used in eval mode."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.997):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.mean_weight = nn.Parameter(torch.ones(3))
        self.var_weight = nn.Parameter(torch.ones(3))
        self.register_buffer("running_mean", torch.zeros(1, num_features, 1))
        self.register_buffer("running_var", torch.zeros(1, num_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, c, -1)
        mean_in = x.mean(-1, keepdim=True)
        var_in = x.var(-1, keepdim=True)  # unbiased, as the official code
        mean_ln = mean_in.mean(1, keepdim=True)
        temp = var_in + mean_in ** 2
        var_ln = temp.mean(1, keepdim=True) - mean_ln ** 2
        if self.training:
            mean_bn = mean_in.mean(0, keepdim=True)
            var_bn = temp.mean(0, keepdim=True) - mean_bn ** 2
            with torch.no_grad():
                self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mean_bn)
                self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var_bn)
        else:
            mean_bn, var_bn = self.running_mean, self.running_var
        mw = torch.softmax(self.mean_weight, 0)
        vw = torch.softmax(self.var_weight, 0)
        mean = mw[0] * mean_in + mw[1] * mean_ln + mw[2] * mean_bn
        var = vw[0] * var_in + vw[1] * var_ln + vw[2] * var_bn
        x = (x - mean) / (var + self.eps).sqrt()
        return x.reshape(n, c, h, w) * self.weight + self.bias


def _block(conv: nn.Module, dim: int) -> nn.Sequential:
    return nn.Sequential(conv, SwitchNorm2d(dim, momentum=0.9), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1), SwitchNorm2d(dim, momentum=0.9), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1), SwitchNorm2d(dim, momentum=0.9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class RelGANNet(nn.Module):
    """The official generator ``G(n_c=3, n_z, n_repeat=6)``: 7×7 conv, two stride-2 downs, residual
    blocks, two transposed-conv ups, 7×7 conv and tanh; v tiled onto the image. ``conv_dim`` is the
    official 64 (hard-coded there); narrower for the CPU."""

    def __init__(self, conv_dim: int = 64, n_z: int = 17, repeat_num: int = 6):
        super().__init__()
        d = conv_dim
        self.n_z = n_z
        self.conv_in = _block(nn.Conv2d(3 + n_z, d, 7, 1, 3), d)
        self.down1 = _block(nn.Conv2d(d, 2 * d, 4, 2, 1), 2 * d)
        self.down2 = _block(nn.Conv2d(2 * d, 4 * d, 4, 2, 1), 4 * d)
        self.resb = nn.Sequential(*[ResidualBlock(4 * d) for _ in range(repeat_num)])
        self.up2 = _block(nn.ConvTranspose2d(4 * d, 2 * d, 4, 2, 1), 2 * d)
        self.up1 = _block(nn.ConvTranspose2d(2 * d, d, 4, 2, 1), d)
        self.conv_out = nn.Sequential(nn.Conv2d(d, 3, 7, 1, 3), nn.Tanh())

    STAGES = ("conv_in", "down1", "down2", "resb", "up2", "up1", "conv_out")

    @staticmethod
    def tiled(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        z = z.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return torch.cat([x, z], dim=1)

    def encode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.tiled(x, z)
        for s in self.STAGES[:4]:
            h = getattr(self, s)(h)
        return h

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        for s in self.STAGES[4:]:
            h = getattr(self, s)(h)
        return h

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x, z))


class RelGANDiscriminator(nn.Module):
    """The official ``D(n_c=3, n_z, n_filters)``: a shared stack ``convs`` (4×4 stride-2 convolutions,
    LeakyReLU 0.01) and three heads — ``conv_adv`` (real/fake of the second image, a patch map),
    ``convs_cls`` (the matching-aware head: is (img_a, img_b, v) a real pair with the right relative
    attributes) and ``conv_int`` (the interpolation head: 16 channels, global mean, how far an image is
    from a real endpoint). Official filters 64 … 2048 (``conv_dim`` 64, ``repeat_num`` 6, 256 px) and a
    2048-wide classifier (``cls_dim``)."""

    def __init__(self, conv_dim: int = 64, n_z: int = 17, repeat_num: int = 6, cls_dim: int = 2048):
        super().__init__()
        layers: list[nn.Module] = []
        n_in = 3
        for i in range(repeat_num):
            n_f = conv_dim * 2 ** i
            layers += [nn.Conv2d(n_in, n_f, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)]
            n_in = n_f
        self.convs = nn.Sequential(*layers)
        self.conv_adv = nn.Conv2d(n_in, 1, 1)
        self.conv_int = nn.Conv2d(n_in, 16, 1)
        self.convs_cls = nn.Sequential(nn.Conv2d(2 * n_in + n_z, cls_dim, 1), nn.LeakyReLU(0.01, inplace=True),
                                       nn.Conv2d(cls_dim, 1, 1))

    def heads(self, h_a: torch.Tensor, h_b: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(adversarial patch map of b, matching-aware patch map of (a, b, z)) from the two images' features."""
        return self.conv_adv(h_b), self.convs_cls(torch.cat([h_a, RelGANNet.tiled(h_b, z)], dim=1))

    def interp(self, h: torch.Tensor) -> torch.Tensor:
        """The interpolation head on an image's features: (B, 1)."""
        return self.conv_int(h).flatten(1).mean(1, keepdim=True)

    def forward(self, img_a, img_b=None, z=None, critic: bool = False):
        """The official call: ``D(a, b, z)`` -> (adversarial, matching-aware); ``D(x, critic=True)`` -> interpolation."""
        if critic:
            return self.interp(self.convs(img_a))
        if img_b is None or z is None:
            raise InputError("relgan critic: D(img_a, img_b, z) needs both images and the relative attributes")
        return self.heads(self.convs(img_a), self.convs(img_b), z)


def relative_edits(labels: torch.Tensor, attributes: tuple[str, ...]) -> torch.Tensor:
    """StarGAN's five official test domains made relative: (N, C) labels in {0, 1} -> (5, N, C) of
    c_trg − c_org (a hair colour one-hot among black/blond/brown, then Male and Young flipped)."""
    labels = labels.float()
    hair = [attributes.index(a) for a in HAIR]
    out = []
    for name in EDITS:
        c = labels.clone()
        if name.startswith("to_"):
            c[:, hair] = 0.0
            c[:, attributes.index(name[3:])] = 1.0
        else:
            i = attributes.index(name[5:])
            c[:, i] = 1.0 - c[:, i]
        out.append(c - labels)
    return torch.stack(out)


@GENERATORS.register("relgan")
class RelGAN(Generator):
    """RelGAN on relative attribute vectors; five edits (three hair colours, gender, age) from the labels."""

    condition_names = EDITS
    # why pdbench's own weights must not be used for reported numbers (a checkpoint path clears it)
    experimental: str | None = ("pdbench's 64 px weights: 341 iterations fine-tuned from StarGAN on a CPU; edits under half "
                                "StarGAN's strength, gender and age change the hair more than the face, blurry reconstruction "
                                "(docs/model-cards/relgan-celeba-64-pdbench.md); not for reported numbers")
    default_asset = "relgan-celeba-64-pdbench"

    def __init__(self, resolution: int = 256, conv_dim: int = 64, n_z: int = 17, repeat_num: int = 6,
                 vector: str = "target-source"):
        super().__init__()
        if vector not in VECTORS:
            raise InputError(f"relgan: vector must be 'target-source' (pdbench, the paper) or 'source-target' "
                             f"(checkpoints of elvisyjlin/RelGAN-PyTorch's train.py), got {vector!r}")
        self.resolution = resolution
        self.attributes = attributes_for(n_z)
        self.vector = vector
        self.net = RelGANNet(conv_dim, n_z, repeat_num).eval()

    def train(self, mode: bool = True) -> "RelGAN":
        """The network stays in eval mode (the official test-time normalisation, see the module notes)."""
        super().train(mode)
        self.net.eval()
        return self

    @classmethod
    def from_assets(cls, checkpoint: str | None = None, asset: str | None = None, resolution: int | None = None,
                    device: str | torch.device = "cpu", preprocessing: str | None = None,
                    vector: str | None = None) -> "RelGAN":
        """pdbench's weights (default ``relgan-celeba-64-pdbench``) or a checkpoint path (strict; an
        official ``{'G': ..., 'D': ...}`` file is taken by its ``G``). Width, depth and the number of
        attributes come from the weights. ``vector``: the sign the weights were trained with (default:
        the asset's, else ``target-source``). A checkpoint path clears ``experimental``."""
        asset = asset or cls.default_asset
        state, path, meta = checkpoint_state(checkpoint, asset)
        if isinstance(state.get("G"), dict):
            state = state["G"]
        if "conv_in.0.weight" not in state:
            raise AssetCorruptError(f"{path} is not a RelGAN generator state dict (no 'conv_in.0.weight')")
        w = state["conv_in.0.weight"]
        repeat = len({k.split(".")[1] for k in state if k.startswith("resb.")})
        model = cls(resolution or int(meta.get("resolution", 256)), int(w.shape[0]), int(w.shape[1]) - 3, repeat,
                    vector or meta.get("vector", "target-source"))
        return model._loaded(state, checkpoint, asset, preprocessing, device, eval=False)

    # -- interface ---------------------------------------------------------------------------
    def conditions(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The five edits as relative vectors c_trg − c_org (K=5, N, C); unknown labels are taken as 0."""
        k = len(self.attributes)
        if labels is None:
            labels = torch.zeros(n, k)
        if labels.shape != (n, k):
            raise InputError(f"{self.name}: expected labels of shape ({n}, {k}) for {', '.join(self.attributes)}, "
                             f"got {tuple(labels.shape)}")
        return relative_edits(labels, self.attributes)

    def unedited(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """No change is the zero vector, whatever the photo's attributes."""
        return torch.zeros(n, len(self.attributes))

    def _check(self, x: torch.Tensor) -> None:
        check_images(x, f"{self.name} input")
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise InputError(f"{self.name}: expects {self.resolution}x{self.resolution} images, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; resize with pdbench.data (or load a checkpoint for that resolution)")

    def _z(self, v: torch.Tensor | None) -> torch.Tensor:
        if v is None:
            raise InputError(f"{self.name}: needs the relative attributes v = c_trg - c_src (conditions())")
        return v if self.vector == "target-source" else -v

    def edit(self, x: torch.Tensor, attrs: torch.Tensor | None, **inputs) -> torch.Tensor:
        """One forward: the relative attributes (B, C) tiled onto the images (B, 3, H, W)."""
        self._check(x)
        return self.net(x, self._z(attrs))

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The bottleneck (after ``resb``, 1/4 resolution) of x with the relative attributes c tiled on."""
        self._check(x)
        return self.net.encode(x, self._z(c))

    def decode(self, h: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``up2``, ``up1`` and ``conv_out`` (c is already in h)."""
        return self.net.decode(h)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The output of each official stage before ``conv_out``: ``conv_in``, ``down1``, ``down2``,
        ``bottleneck`` (``resb``, = :meth:`encode`), ``up2``, ``up1``."""
        self._check(x)
        h, out = self.net.tiled(x, self._z(c)), {}
        for s in self.net.STAGES[:-1]:
            h = getattr(self.net, s)(h)
            out["bottleneck" if s == "resb" else s] = h
        return out
