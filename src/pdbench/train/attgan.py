"""AttGAN's official CelebA training recipe (elvisyjlin/AttGAN-PyTorch: train.py, attgan.py defaults).

13 attributes, encoder–decoder with one shortcut and one injection layer, CelebA centre crop 170 of
178 px. Each iteration takes a new batch of 32 and is either a critic step or, every ``n_d + 1`` = 6th
iteration, a generator step (5 critic steps per generator step). Target attributes are the batch's
real ones in a random permutation; both are fed scaled, ``(a * 2 − 1) · 0.5``.

* critic (WGAN-GP): −(D(x) − D(G(x, b))) + 10 · GP(x, G(x, b)) + λ₃ · BCE(C(x), a), λ₃ = 1;
* generator: −D(G(x, b)) + λ₂ · BCE(C(G(x, b)), b) + λ₁ · |G(x, a) − x|₁, λ₂ = 10, λ₁ = 100,
  with one encoding shared by the edit and the reconstruction.

BCEs are means over batch and attributes. Adam lr 2e-4, β = (0.5, 0.999); the official 200 epochs run
at lr 2e-4 for the first 100 and 2e-5 after, i.e. the rate drops ten-fold at ``lr_drop_at`` (half the
iterations by default). The generator stays in train mode (BatchNorm on batch statistics, running
statistics updated) throughout, as in the official loop; samples use ``eval()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..generators.attgan import ATTRS, CROP, AttGANDiscriminator, AttGANNet, flip_conditions, scale_conditions
from ..tensors import to_uint8
from . import TRAINERS
from .loop import GANTrainer, gradient_penalty


@dataclass
class AttGANRecipe:
    resolution: int = 128
    batch_size: int = 32
    iters: int = 1_137_400  # 200 epochs of the official 182,000 training images at batch 32
    lr_drop_at: int = 0  # 0: half of iters (official: epoch 100 of 200)
    n_d: int = 5
    lambda_1: float = 100.0  # reconstruction
    lambda_2: float = 10.0  # generator attribute classification
    lambda_3: float = 1.0  # critic attribute classification
    lambda_gp: float = 10.0
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    enc_dim: int = 64
    dec_dim: int = 64
    dis_dim: int = 64
    dis_fc_dim: int = 1024
    enc_layers: int = 5
    dec_layers: int = 5
    dis_layers: int = 5
    shortcut_layers: int = 1
    inject_layers: int = 1
    holdout: int = 1000
    seed: int = 0


def sample_grid(G: AttGANNet, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Rows: input, reconstruction, then the 13 single-attribute edits (official test scaling)."""
    was_training = G.training
    G.eval()
    labels = labels.to(x.device)
    flips = flip_conditions(labels)
    with torch.inference_mode():
        outs = [x, G(x, scale_conditions(labels))] + [G(x, scale_conditions(flips[i], i)) for i in range(len(ATTRS))]
    G.train(was_training)
    return np.concatenate(list(to_uint8(torch.cat(outs, dim=3))), axis=0)


@TRAINERS.register("attgan")
class AttGANTrainer(GANTrainer):
    attributes = ATTRS
    crop = CROP

    Recipe = AttGANRecipe

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        opts = {} if dim is None else {"enc_dim": dim, "dec_dim": dim, "dis_dim": dim}
        if layers is not None:
            opts.update(enc_layers=layers, dec_layers=layers, dis_layers=layers)
        if fc_dim is not None:
            opts["dis_fc_dim"] = fc_dim
        return opts

    def build(self):
        r = self.recipe
        G = AttGANNet(r.enc_dim, r.enc_layers, r.dec_dim, r.dec_layers, len(ATTRS), r.shortcut_layers,
                      r.inject_layers, r.resolution)
        D = AttGANDiscriminator(r.dis_dim, r.dis_fc_dim, r.dis_layers, r.resolution, len(ATTRS))
        return G.train(), D.train()

    def lr_factor(self) -> float:
        drop = self.recipe.lr_drop_at or self.recipe.iters // 2
        return 1.0 if self.step < drop else 0.1

    def sample_grid(self) -> np.ndarray:
        return sample_grid(self.G, self.fixed_x, self.fixed_c)

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        x, att_a = self.batch()
        att_b = att_a[torch.randperm(att_a.shape[0], device=self.device, generator=self.gen)]
        a_, b_ = scale_conditions(att_a), scale_conditions(att_b)
        if (self.step + 1) % (r.n_d + 1) != 0:
            self.D.requires_grad_(True)
            with self.autocast():
                with torch.no_grad():
                    fake = self.G(x, b_).float()
                d_real, dc_real = self.D(x)
                d_fake, _ = self.D(fake)
                wd = d_real.float().mean() - d_fake.float().mean()
                alpha = torch.rand(x.shape[0], 1, 1, 1, device=self.device, generator=self.gen)
                x_hat = (x + alpha * (fake - x)).requires_grad_(True)
                gp = gradient_penalty(self.D(x_hat)[0].float(), x_hat)
                dc = F.binary_cross_entropy_with_logits(dc_real.float(), att_a)
            d_loss = -wd + r.lambda_gp * gp + r.lambda_3 * dc
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            return {"D/wd": wd.detach(), "D/gp": gp.detach(), "D/cls": dc.detach()}
        self.D.requires_grad_(False)
        with self.autocast():
            zs = self.G.encode(x)
            fake = self.G.decode(zs, b_)
            rec = self.G.decode(zs, a_)
            d_fake, dc_fake = self.D(fake)
            gf = -d_fake.float().mean()
            gc = F.binary_cross_entropy_with_logits(dc_fake.float(), att_b)
            gr = (rec.float() - x).abs().mean()
        g_loss = gf + r.lambda_2 * gc + r.lambda_1 * gr
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return {"G/fake": gf.detach(), "G/cls": gc.detach(), "G/rec": gr.detach()}
