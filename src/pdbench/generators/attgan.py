"""AttGAN (He et al., TIP 2019), the official PyTorch architecture (elvisyjlin/AttGAN-PyTorch).

An encoder of ``enc_layers`` stride-2 4×4 convolutions (BatchNorm, LeakyReLU) and a decoder of as many
transposed convolutions (BatchNorm, ReLU; the last one bias + tanh). The attribute vector is tiled and
concatenated to the bottleneck; ``shortcut_layers`` decoder layers also receive the matching encoder
feature map and ``inject_layers`` decoder layers receive the attributes again (the checkpoint the
defense papers attack, ``128_shortcut1_inject1_none``, has one of each).

Parameter names follow the authors' ``attgan.py``/``nn.py`` (``enc_layers.0.layers.0.weight``,
``dec_layers.4.layers.0.bias``, ...), so their released ``weights.199.pth`` (a dict ``{'G': state}``)
loads with ``strict=True``. BatchNorm runs on its running statistics (``eval()``), as in the official
test code.

Attributes are fed scaled: ``(a * 2 - 1) * thres_int`` with ``thres_int = 0.5``; at test time the
edited attribute is pushed to ``± test_int = ±1``. An edit flips one of the 13 attributes and applies
the official conflict rules (turning on one hair colour turns off the others, Bald and Bangs exclude
each other, Mustache turns off No_Beard, ...).

Speed path (on by default, ``PDBENCH_FAST=0`` or ``G.fast = False`` turns it off): for inference on the
CPU the forwards and the hooks run a copy of the network with every eval-mode BatchNorm folded into the
convolution before it and the weights and images in channels-last layout, measured 1.3–1.4× faster per
PGD step (benchmarks/speed.py, docs/results/speed.json) with the same outputs and input gradients to
float rounding (tests/test_fast_path.py). ``self.net`` keeps the checkpoint's weights: ``state_dict()``,
strict loading, the fingerprint and ``pdbench export`` see only them; the copy is rebuilt whenever they
change (loaded, moved, edited in place), and is not used while the net trains or its weights require
gradients (the copy's weights are not the ones an optimiser holds).
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import AssetCorruptError, InputError
from ..tensors import check_images
from . import GENERATORS
from .base import Generator, Preprocessing, checkpoint_state, register_preprocessing

ATTRS = ("Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Bushy_Eyebrows", "Eyeglasses",
         "Male", "Mouth_Slightly_Open", "Mustache", "No_Beard", "Pale_Skin", "Young")
MAX_DIM = 1024
THRES_INT = 0.5
TEST_INT = 1.0
CROP = 170 / 178  # official CelebA preprocessing: CenterCrop(170) of the 178-px-wide aligned image

OFFICIAL = "elvisyjlin/AttGAN-PyTorch data.py: CenterCrop(170), Resize(img_size), Normalize(0.5, 0.5)"
register_preprocessing(Preprocessing(crop=CROP, alignment="celeba", source=OFFICIAL), "attgan")
register_preprocessing(Preprocessing(128, CROP, "celeba", source=OFFICIAL), "attgan-celeba-128-official")
register_preprocessing(Preprocessing(64, CROP, "celeba", source="pdbench train attgan (the official crop)"),
                       "attgan-celeba-64-pdbench")


ACTS = {"lrelu": lambda: nn.LeakyReLU(0.01), "relu": nn.ReLU, "tanh": nn.Tanh, "none": nn.Identity}


class Block(nn.Module):
    """The official ``Conv2dBlock``/``ConvTranspose2dBlock``/``LinearBlock``: ``layers`` = op [+ norm] [+ activation]."""

    def __init__(self, op: nn.Module, norm: str = "none", act: str = "none"):
        super().__init__()
        layers = [op]
        if norm == "batchnorm":
            layers.append(nn.BatchNorm2d(op.out_channels))
        elif norm == "instancenorm":
            layers.append(nn.InstanceNorm2d(op.out_channels, affine=True))
        if act != "none":
            layers.append(ACTS[act]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def conv_block(n_in: int, n_out: int, norm: str, act: str) -> Block:
    return Block(nn.Conv2d(n_in, n_out, 4, 2, 1, bias=norm == "none"), norm, act)


def deconv_block(n_in: int, n_out: int, norm: str, act: str) -> Block:
    return Block(nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=norm == "none"), norm, act)


class AttGANNet(nn.Module):
    def __init__(self, enc_dim: int = 64, enc_layers: int = 5, dec_dim: int = 64, dec_layers: int = 5,
                 n_attrs: int = 13, shortcut_layers: int = 1, inject_layers: int = 1, img_size: int = 128):
        super().__init__()
        self.shortcut_layers = min(shortcut_layers, dec_layers - 1)
        self.inject_layers = min(inject_layers, dec_layers - 1)
        self.f_size = img_size // 2**enc_layers
        self.n_attrs = n_attrs
        enc, n_in = [], 3
        for i in range(enc_layers):
            n_out = min(enc_dim * 2**i, MAX_DIM)
            enc.append(conv_block(n_in, n_out, "batchnorm", "lrelu"))
            n_in = n_out
        self.enc_layers = nn.ModuleList(enc)
        dec, n_in = [], n_in + n_attrs
        for i in range(dec_layers):
            if i < dec_layers - 1:
                n_out = min(dec_dim * 2 ** (dec_layers - i - 1), MAX_DIM)
                dec.append(deconv_block(n_in, n_out, "batchnorm", "relu"))
                n_in = n_out + (n_out // 2 if self.shortcut_layers > i else 0) + (n_attrs if self.inject_layers > i else 0)
            else:
                dec.append(deconv_block(n_in, 3, "none", "tanh"))
        self.dec_layers = nn.ModuleList(dec)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        zs = []
        for layer in self.enc_layers:
            x = layer(x)
            zs.append(x)
        return zs

    def decode(self, zs: list[torch.Tensor], a: torch.Tensor) -> torch.Tensor:
        a = a.to(zs[-1].dtype)[:, :, None, None]
        z = torch.cat([zs[-1], a.expand(-1, -1, *zs[-1].shape[2:])], dim=1)
        for i, layer in enumerate(self.dec_layers):
            z = layer(z)
            if self.shortcut_layers > i:
                z = torch.cat([z, zs[len(self.dec_layers) - 2 - i]], dim=1)
            if self.inject_layers > i:
                z = torch.cat([z, a.expand(-1, -1, *z.shape[2:])], dim=1)
        return z

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), a)


class AttGANDiscriminator(nn.Module):
    """Official ``Discriminators``: InstanceNorm conv trunk, an adversarial and a classification head.

    The official code sizes the heads' input as ``1024 * f²``, which equals the trunk's output only at
    ``dim = 64``; here it is the trunk's real output size, so narrower critics work too.
    """

    def __init__(self, dim: int = 64, fc_dim: int = 1024, n_layers: int = 5, img_size: int = 128, n_attrs: int = 13):
        super().__init__()
        f = img_size // 2**n_layers
        layers, n_in = [], 3
        for i in range(n_layers):
            n_out = min(dim * 2**i, MAX_DIM)
            layers.append(conv_block(n_in, n_out, "instancenorm", "lrelu"))
            n_in = n_out

        self.conv = nn.Sequential(*layers)
        self.fc_adv = nn.Sequential(Block(nn.Linear(n_in * f * f, fc_dim), act="relu"), Block(nn.Linear(fc_dim, 1)))
        self.fc_cls = nn.Sequential(Block(nn.Linear(n_in * f * f, fc_dim), act="relu"), Block(nn.Linear(fc_dim, n_attrs)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x).flatten(1)
        return self.fc_adv(h), self.fc_cls(h)


def fold_batchnorm(net: nn.Module, channels_last: bool = True) -> nn.Module:
    """A copy of ``net`` (in eval mode) with every BatchNorm of a :class:`Block` folded into the
    convolution before it (the BatchNorm becomes ``Identity``), weights without gradients and (by
    default) in channels-last layout. ``net`` itself is not changed."""
    if net.training:
        raise InputError("attgan: BatchNorm folds only in eval mode (running statistics); call .eval() first")
    fast = copy.deepcopy(net)
    for block in fast.modules():
        if isinstance(block, Block) and len(block.layers) > 1 and isinstance(block.layers[1], nn.BatchNorm2d):
            op = block.layers[0]
            block.layers[0] = fuse_conv_bn_eval(op, block.layers[1], transpose=isinstance(op, nn.ConvTranspose2d))
            block.layers[1] = nn.Identity()
    fast.requires_grad_(False)
    return fast.to(memory_format=torch.channels_last) if channels_last else fast


def flip_conditions(labels: torch.Tensor, attrs: tuple[str, ...] = ATTRS) -> torch.Tensor:
    """Binary targets of the official test edits: attribute i flipped, conflicts resolved. (N, A) -> (A, N, A)."""
    idx = {a: i for i, a in enumerate(attrs)}
    groups = [("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"), ("Straight_Hair", "Wavy_Hair"),
              ("Mustache", "No_Beard")]
    out = []
    for i, name in enumerate(attrs):
        b = labels.clone().float()
        b[:, i] = 1.0 - b[:, i]
        on = b[:, i] > 0
        excl: list[str] = []
        if name in ("Bald", "Receding_Hairline"):
            excl = ["Bangs"]
        elif name == "Bangs":
            excl = ["Bald", "Receding_Hairline"]
        else:
            for g in groups:
                if name in g:
                    excl = [n for n in g if n != name]
        for n in excl:
            if n in idx:
                b[on, idx[n]] = 0.0
        out.append(b)
    return torch.stack(out)


def scale_conditions(binary: torch.Tensor, edited: int | None = None) -> torch.Tensor:
    """Binary attributes -> the generator's input: ±thres_int, the edited attribute ±test_int."""
    a = (binary * 2 - 1) * THRES_INT
    if edited is not None:
        a[..., edited] = a[..., edited] * TEST_INT / THRES_INT
    return a


def infer_config(state: dict[str, torch.Tensor]) -> dict:
    """Architecture hyper-parameters from an official or pdbench state dict."""
    enc = sorted({int(k.split(".")[1]) for k in state if k.startswith("enc_layers.")})
    dec = sorted({int(k.split(".")[1]) for k in state if k.startswith("dec_layers.")})
    if not enc or not dec:
        raise AssetCorruptError("not an AttGAN generator state dict (no enc_layers/dec_layers)")
    enc_dim = int(state["enc_layers.0.layers.0.weight"].shape[0])
    bottleneck = int(state[f"enc_layers.{enc[-1]}.layers.0.weight"].shape[0])
    n_attrs = int(state["dec_layers.0.layers.0.weight"].shape[0]) - bottleneck
    dec_dim = int(state[f"dec_layers.{dec[-2]}.layers.0.weight"].shape[1]) // 2  # layer n-2 outputs 2 * dec_dim
    shortcut = inject = 0
    for i in range(len(dec) - 1):
        n_out = int(state[f"dec_layers.{i}.layers.0.weight"].shape[1])
        extra = int(state[f"dec_layers.{i + 1}.layers.0.weight"].shape[0]) - n_out
        if extra in (n_out // 2, n_out // 2 + n_attrs):
            shortcut = i + 1
        if extra in (n_attrs, n_out // 2 + n_attrs):
            inject = i + 1
    return {"enc_dim": enc_dim, "enc_layers": len(enc), "dec_dim": dec_dim, "dec_layers": len(dec), "n_attrs": n_attrs,
            "shortcut_layers": shortcut, "inject_layers": inject}


@GENERATORS.register("attgan")
class AttGAN(Generator):
    """AttGAN editing 13 CelebA attributes; ``conditions`` gives the 13 official single-attribute edits."""

    attributes = ATTRS
    condition_names = tuple(f"flip_{a}" for a in ATTRS)
    # judged real on 200 held-out faces (docs/results/attribute-judge.json): eyeglasses are read as added or
    # removed on 96 % of the faces (unedited 10.5 %) and change the eyes 3.6x more than the mouth (0.137 vs
    # 0.038 mean |Δ|, edit_report). The bangs flip passes the classifier (77.5 % / 20 %) but pdbench's regions
    # cannot show that it acts in the hair: 0.021 in the hair region against 0.059 in the face box (it paints the
    # forehead, rows 25-35 % of the crop, which neither region covers), so it is not listed until a region can.
    judged_edits = ("flip_Eyeglasses",)
    judged_asset = "attgan-celeba-64-pdbench"

    def __init__(self, resolution: int = 128, **arch):
        super().__init__()
        self.resolution = resolution
        self.net = AttGANNet(img_size=resolution, **arch)
        self.eval()

    @classmethod
    def from_assets(cls, checkpoint: str | None = None, asset: str = "attgan-celeba-64-pdbench",
                    resolution: int | None = None, device: str | torch.device = "cpu",
                    preprocessing: str | None = None) -> "AttGAN":
        """An official or user checkpoint (``weights.*.pth`` holding 'G', or a plain state dict), or an asset.

        The default is pdbench's own 64 px AttGAN, shipped in the package
        (docs/model-cards/attgan-celeba-64-pdbench.md); ``asset="attgan-celeba-128-official"`` asks for
        the authors' checkpoint in the asset directory. ``preprocessing``: the registered weights whose
        preprocessing record a checkpoint path follows (default: the asset's, or AttGAN's official one).
        """
        state, path, meta = checkpoint_state(checkpoint, asset)
        if "G" in state and isinstance(state["G"], dict):
            state = state["G"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            arch = infer_config(state)
        except AssetCorruptError as e:
            raise AssetCorruptError(f"{path}: {e}") from None
        model = cls(resolution or int(meta.get("resolution", 128)), **arch)
        return model._loaded(state, checkpoint, asset, preprocessing, device)

    # -- the speed path (module docstring) ----------------------------------------------------------
    def _weights_key(self) -> tuple:
        """What the folded copy was built from: each tensor's storage, in-place version, dtype, device."""
        return tuple((t.data_ptr(), -1 if t.is_inference() else t._version, t.dtype, t.device)  # inference tensors have no version
                     for t in itertools.chain(self.net.parameters(), self.net.buffers()))

    def _fast_applies(self) -> bool:
        if not self.fast_path or self.net.training:
            return False
        p = next(self.net.parameters())
        if p.device.type != "cpu":  # measured on the CPU only
            return False
        return not (torch.is_grad_enabled() and any(q.requires_grad for q in self.net.parameters()))

    def _runner(self) -> nn.Module:
        """The network a forward runs: the folded channels-last copy when the speed path applies, else ``net``."""
        if not self._fast_applies():
            return self.net
        key = self._weights_key()
        cached = self.__dict__.get("_fast_net")  # kept out of the module tree: not in state_dict()
        if cached is None or cached[0] != key:
            # normal tensors even when first called under inference_mode: the copy serves autograd later
            with torch.inference_mode(False), torch.no_grad():
                cached = (key, fold_batchnorm(self.net))
            self.__dict__["_fast_net"] = cached
        return cached[1]

    def optimise_for_inference(self) -> "AttGAN":
        """Build the folded channels-last copy now (see the module docstring); the weights are untouched."""
        with torch.no_grad():
            self._runner()
        return self

    def _run_input(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x if net is self.net else x.contiguous(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> "AttGAN":
        """The wrapper is an inference model: BatchNorm stays on its running statistics (as the official test)."""
        return super().train(False)

    def conditions(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The 13 official single-attribute edits, scaled as the official test does. -> (13, N, 13)."""
        if labels is None:
            labels = torch.zeros(n, len(ATTRS))
        if labels.shape != (n, len(ATTRS)):
            raise InputError(f"attgan: expected labels of shape ({n}, {len(ATTRS)}) for {ATTRS}, got {tuple(labels.shape)}")
        flips = flip_conditions(labels)
        return torch.stack([scale_conditions(flips[i], i) for i in range(len(ATTRS))])

    def unedited(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The official reconstruction input: every attribute at ±thres_int."""
        return scale_conditions(torch.zeros(n, len(ATTRS)) if labels is None else labels.float())

    def _check(self, x: torch.Tensor) -> None:
        check_images(x, "attgan input")
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise InputError(f"attgan: expects {self.resolution}x{self.resolution} images, got {x.shape[-2]}x{x.shape[-1]}; "
                             "resize with pdbench.data (or load a checkpoint for that resolution)")

    def edit(self, x: torch.Tensor, attrs: torch.Tensor | None, **inputs) -> torch.Tensor:
        """One forward: images (B, 3, H, W) with the scaled attributes (B, 13) at the bottleneck."""
        self._check(x)
        if attrs is None:
            raise InputError("attgan: needs attrs (the scaled attributes of conditions())")
        net = self._runner()
        out = net(self._run_input(net, x), attrs)
        return out if net is self.net else out.contiguous()

    conditional_encoder = False  # the attributes enter only at the bottleneck (and the injection layer)

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The bottleneck feature map (what latent-level defenses attack); c is not used."""
        self._check(x)
        net = self._runner()
        return net.encode(self._run_input(net, x))[-1].contiguous()

    def decode(self, h, c: torch.Tensor | None = None) -> torch.Tensor:
        """Images from the list of every encoder layer's output (``net.encode(x)``: the shortcut needs them)
        and the scaled attributes c. A single bottleneck tensor is not enough when the net has shortcuts."""
        if isinstance(h, torch.Tensor):
            if self.net.shortcut_layers:
                raise InputError("attgan: decode needs every encoder feature map (net.encode(x)), not only the "
                                 "bottleneck, because this AttGAN has shortcut layers")
            h = [h]
        if c is None:
            raise InputError("attgan: decode needs the scaled attributes c")
        net = self._runner()
        out = net.decode(list(h), c)
        return out if net is self.net else out.contiguous()

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every encoder layer's output (``enc1`` … ``encN``, the last = :meth:`encode`); c is not used."""
        self._check(x)
        net = self._runner()
        return {f"enc{i + 1}": z.contiguous() for i, z in enumerate(net.encode(self._run_input(net, x)))}
