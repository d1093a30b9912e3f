"""Fixed-Point GAN's CelebA training recipe (mahfuzmohammad/Fixed-Point-GAN: solver.py, main.py defaults).

StarGAN's recipe (WGAN-GP λ_gp 10, attribute classification λ_cls 1, L1 cycle λ_rec 10, Adam lr 1e-4
β (0.5, 0.999), n_critic 5, batch 16, linear lr decay over the second half) with the generator
producing a residual, ``x_fake = tanh(x + G(x, c))``, and a second, same-domain path in every
generator step: ``x_id = tanh(x + G(x, c_org))`` is scored by the critic (adversarial and
classification losses), cycled back (``λ_rec``) and must equal x, the identity loss
``λ_id · |x − x_id|₁`` with λ_id = 10:

    L_G = L_adv + λ_rec L_rec + λ_cls L_cls + (L_adv,id + λ_rec L_rec,id + λ_cls L_cls,id + λ_id L_id)

The critic step is StarGAN's, on ``x_fake``.

``--init`` a StarGAN generator (``stargan-celeba-64-pdbench``, a StarGAN run or a safetensors file a
StarGAN run wrote) takes all its layers and its critic, but its output convolution is scaled by
``STARGAN_OUT_SCALE`` = 0.2: StarGAN's produces the pre-tanh image s, Fixed-Point GAN's a residual
added to the input, and tanh(x + 0.2 s) is the scale that keeps the output closest to x while the
edits are there. On 32 training faces with pdbench's StarGAN the identity L1 |tanh(x + α s) − x| is
0.062 at α = 0 (no edit at all), 0.047 at 0.1, 0.055 at 0.2, 0.114 at 0.5 and 0.205 at 1, and the
mean edit |Δ| 0, 0.018, 0.034, 0.069, 0.106 (StarGAN's own 0.162). A Fixed-Point GAN checkpoint
(official or pdbench's) is taken whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..generators.fpgan import FPGANNet
from ..generators.stargan import ATTRS
from . import TRAINERS
from .loop import saved_recipe
from .stargan import StarGANFamilyTrainer, StarGANRecipe, cls_loss


STARGAN_OUT_SCALE = 0.2


@dataclass
class FPGANRecipe(StarGANRecipe):
    lambda_id: float = 10.0  # the official value (StarGAN's recipe has the field at 0: off)


def trained_as_stargan(source: str) -> bool:
    """Whether an --init source is a StarGAN generator (a stargan asset, run, or file a stargan run wrote)."""
    src = Path(source)
    if src.is_dir():
        saved = saved_recipe(src)
        return bool(saved) and saved[0] == "stargan"
    if src.is_file():
        if src.suffix != ".safetensors":
            return False
        from safetensors import safe_open

        with safe_open(str(src), "pt") as f:
            return (f.metadata() or {}).get("method") == "stargan"
    return source.startswith("stargan-")


@TRAINERS.register("fpgan")
class FPGANTrainer(StarGANFamilyTrainer):
    Recipe = FPGANRecipe
    attributes = ATTRS

    net_cls = FPGANNet

    def init_from(self, source: str) -> str:
        what = super().init_from(source)
        if trained_as_stargan(source):
            with torch.no_grad():
                self.G.main[-1].weight.mul_(STARGAN_OUT_SCALE)
            what += f"; StarGAN's output convolution scaled by {STARGAN_OUT_SCALE} (Fixed-Point GAN's output is a residual)"
            self.init = what
            print(f"output convolution (main.21) scaled by {STARGAN_OUT_SCALE}: the residual starts small", flush=True)
        return what

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        x_real, label_org = self.batch()
        label_trg = label_org[torch.randperm(label_org.shape[0], device=self.device, generator=self.gen)]

        logs = self.critic_step(x_real, label_org, label_trg)  # StarGAN's critic update

        if (self.step + 1) % r.n_critic == 0:
            with self.autocast():
                x_fake = self.G(x_real, label_trg)  # original -> target domain
                out_src, out_cls = self.D(x_fake)
                g_fake, g_cls = -out_src.float().mean(), cls_loss(out_cls, label_trg)
                x_id = self.G(x_real, label_org)  # original -> original domain
                out_src, out_cls = self.D(x_id)
                g_fake_id, g_cls_id = -out_src.float().mean(), cls_loss(out_cls, label_org)
                g_id = (x_real - x_id.float()).abs().mean()
                g_rec = (x_real - self.G(x_fake, label_org).float()).abs().mean()  # target -> original
                g_rec_id = (x_real - self.G(x_id, label_org).float()).abs().mean()
            g_same = g_fake_id + r.lambda_rec * g_rec_id + r.lambda_cls * g_cls_id + r.lambda_id * g_id
            g_loss = g_fake + r.lambda_rec * g_rec + r.lambda_cls * g_cls + g_same
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            logs.update({"G/fake": g_fake.detach(), "G/rec": g_rec.detach(), "G/cls": g_cls.detach(),
                         "G/id": g_id.detach(), "G/rec_id": g_rec_id.detach(), "G/cls_id": g_cls_id.detach()})
        return logs
