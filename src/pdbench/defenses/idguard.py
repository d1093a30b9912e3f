"""ID-Guard (Qu, Lu, Luo, Wang, Cao, "ID-Guard: A Universal Framework for Combating Facial Manipulation via
Breaking Identification"): a trained ResNet perturbation generator, one forward pass per photo.

x_adv = clamp(x + clamp(PG(x ⊕ δ_p), −ε, ε), −1, 1): the generator sees the image concatenated with a
learned prior perturbation δ_p (6 input channels; P-Pert, optimised jointly with the generator and
clamped to the ε-ball), ends in tanh and its output is clamped to ±ε, as in the official
``advGen.generate``. It is trained (``pdbench train idguard``, :mod:`pdbench.train.idguard`) against
several frozen attribute editors at once with the identity-destruction loss
(masked MSE + 0.1·(−cos ID) + 0.01·masked feature MSE per model, on both x_adv and x + δ_p), the
per-model losses combined with dynamic weights (MGDA's min-norm point, S-I; KPI × priors, S-II; or equal
weights).

The network follows the official ``ResnetGenerator`` (ZOMIN28/ID-Guard: net/advGen.py; the parameter
names of its ``model0`` sequence are kept): 7×7 reflection-padded convolution, two stride-2
convolutions, ``n_blocks`` residual blocks, two transposed convolutions, 7×7 convolution, tanh;
BatchNorm (no bias before it), SELU between stages, ReLU inside the blocks. pdbench ships a narrow one
trained on a CPU at 64 px (docs/model-cards/idguard-celeba-64-pdbench.md); ``--dim 64`` with 6 blocks
is the official width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import DEFENSES
from .base import EPS, Record
from .retentive import Retentive
from ..errors import AssetCorruptError

ASSET = "idguard-celeba-64-pdbench"


class ResnetBlock(nn.Module):
    """Reflection pad, 3×3 conv, BatchNorm, ReLU, reflection pad, 3×3 conv, BatchNorm; plus the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.BatchNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The official ``ResnetGenerator(input_nc=6, output_nc=3, ngf, norm_type='batch', act_type='selu')``."""

    def __init__(self, ngf: int = 64, n_blocks: int = 6, input_nc: int = 6, output_nc: int = 3):
        super().__init__()
        self.ngf, self.n_blocks = int(ngf), int(n_blocks)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=False), nn.BatchNorm2d(ngf),
                                   nn.SELU(True)]
        for i in range(2):
            m = 2 ** i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=False), nn.BatchNorm2d(ngf * m * 2), nn.SELU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=False),
                       nn.BatchNorm2d(ngf * m // 2), nn.SELU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model0 = nn.Sequential(*layers)
        for mod in self.modules():  # the official weights_init (normal 0.02; BatchNorm weight N(1, 0.02))
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(mod.weight, 0.0, 0.02)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.normal_(mod.weight, 1.0, 0.02)
                nn.init.zeros_(mod.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model0(x)


class IDGuardNet(nn.Module):
    """The generator with its prior perturbation δ_p: images (N, 3, H, W) → δ with ‖δ‖∞ ≤ ε (:meth:`delta`).

    ``pri_pert`` (1, 3, R, R) is resized bilinearly to other image sizes; inputs whose side is not a
    multiple of 4 are edge-padded and the output cropped back.
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 6, resolution: int = 256, eps: float = EPS):
        super().__init__()
        self.generator = ResnetGenerator(ngf, n_blocks)
        self.pri_pert = nn.Parameter(torch.zeros(1, 3, resolution, resolution))
        self.register_buffer("eps", torch.tensor(float(eps)))

    def prior(self, like: torch.Tensor) -> torch.Tensor:
        """δ_p clamped to the ε-ball, at the size of ``like``, one per image."""
        e = float(self.eps)
        p = self.pri_pert.clamp(-e, e)
        if p.shape[-2:] != like.shape[-2:]:
            p = F.interpolate(p, size=like.shape[-2:], mode="bilinear", align_corners=False).clamp(-e, e)
        return p.to(like.dtype).expand(like.shape[0], -1, -1, -1)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """δ = clamp(PG(x ⊕ δ_p), −ε, ε) (the official ``advGen.generate``)."""
        e = float(self.eps)
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        inp = torch.cat([x, self.prior(x)], dim=1)
        if ph or pw:
            inp = F.pad(inp, (0, pw, 0, ph), mode="replicate")
        d = self.generator(inp)[..., :h, :w]
        return d.clamp(-e, e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """δ / ε in [-1, 1] (the direction :class:`ModelDefense` scales by the defense's ε)."""
        return self.delta(x) / float(self.eps)


def idguard_from_state(state: dict, source: str) -> IDGuardNet:
    """An ID-Guard network whose width, depth, resolution and ε are read from the state dict, loaded strictly."""
    from ..generators.base import load_frozen

    key = "generator.model0.1.weight"
    if key not in state or "pri_pert" not in state:
        raise AssetCorruptError(f"{source} is not an ID-Guard state dict (no {key!r} / 'pri_pert'); pass the weights "
                                f"of `pdbench train idguard` (its PG.safetensors, or `pdbench export`)")
    ngf = int(state[key].shape[0])
    n_blocks = len({k.split(".")[2] for k in state if k.startswith("generator.model0.") and ".conv_block." in k})
    res = int(state["pri_pert"].shape[-1])
    eps = float(state["eps"]) if "eps" in state else EPS
    net = IDGuardNet(ngf, n_blocks, res, eps)
    return load_frozen(net, state, source)


def load_idguard(checkpoint: str | None = None, asset: str = ASSET) -> IDGuardNet:
    """The shipped ID-Guard network (checksum-verified) or a user's checkpoint file, loaded strictly."""
    from ..generators.base import checkpoint_state

    state, source, _ = checkpoint_state(checkpoint, asset)
    return idguard_from_state(state, source)


@DEFENSES.register("idguard")
class IDGuard(Retentive):
    """ID-Guard: one pass of a trained ResNet perturbation generator fed x ⊕ a learned prior δ_p.

    A subclass of :class:`Retentive` only for its ``protect`` (one pass at the generator's input size;
    on whole photos δ is computed on the generator's crop, resized, and upsampled onto it)."""

    objective = "identity destruction: masked MSE + 0.1·(−cos ID) + 0.01·feature MSE on G(x_adv), several G at once"
    record = Record(
        paper="ID-Guard: A Universal Framework for Combating Facial Manipulation via Breaking Identification "
              "(Qu, Lu, Luo, Wang, Cao)",
        venue="arXiv preprint (IEEE-format manuscript)", year=2024, url="https://github.com/ZOMIN28/ID-Guard",
        code="https://github.com/ZOMIN28/ID-Guard",
        official={"generator": "ResnetGenerator(input 6 = x ⊕ δ_p, ngf 64, 6 blocks, BatchNorm, SELU)",
                  "eps": 0.05, "lr": 1e-4, "betas": [0.5, 0.999], "batch_size": 3, "epochs": 1,
                  "resolution": 256, "data": "CelebAMask-HQ (binary facial masks from its annotations)",
                  "id_model": "ArcFace IR-SE50 (or VGGFace)",
                  "loss": "per model: MSE(G(x)·m, G(x_adv)·m) + 0.1·(−cos ID) + 0.01·masked feature MSE, "
                          "on x_adv and on x + δ_p; mask m: binary facial mask × VGGFace Grad-CAM++ heat map",
                  "targets": "StarGAN, AttGAN, FPGAN, RelGAN, HiSD",
                  "dynamic weights": "MGDA (S-I) or KPI (S-II, priors stargan 1, aggan 10, fpgan 1, relgan 10, hisd 100)",
                  "success": "L2-face > 0.05 and ID sim < 0.4"},
        notes="pdbench ships a narrow network trained on 1 CPU thread against StarGAN + AttGAN (MGDA) with "
              "MobileFaceNet as the identity model and dlib facial masks (no Grad-CAM heat map); see its model card.",
    )

    def load_checkpoint(self, checkpoint: str | None) -> nn.Module:
        return load_idguard(checkpoint)
