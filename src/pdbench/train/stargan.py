"""StarGAN's official CelebA training recipe (yunjey/stargan: solver.py, main.py defaults).

Per iteration: one critic step on WGAN-GP (λ_gp = 10) plus the auxiliary attribute classification
(λ_cls = 1, BCE summed over attributes, averaged over the batch); every ``n_critic`` = 5 iterations one
generator step with adversarial, classification and L1 cycle-reconstruction (λ_rec = 10) losses.
Target labels are the batch's real labels in a random permutation. Adam lr 1e-4, β = (0.5, 0.999),
batch 16, random horizontal flip, learning rate decayed linearly to zero over the last
``decay_iters`` iterations (the official code means to do this; its arithmetic decays by only 0.1 %,
see the model card). The loop, checkpoints and resume are :mod:`pdbench.train.loop`'s.

Opt-in, not in the official recipe: ``lambda_id`` > 0 (``--set lambda_id=10``) adds Fixed-Point GAN's
identity term ``λ_id · |x − G(x, c_org)|₁`` (the same-domain translation must return the photo) to
every generator step, with StarGAN's architecture unchanged (official checkpoints still load). The
default 0 is the official recipe; a run started without it resumes unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..generators.stargan import ATTRS, StarGANDiscriminator, StarGANNet, target_conditions
from ..errors import InputError
from ..tensors import to_uint8
from . import TRAINERS
from .loop import GANTrainer, gradient_penalty


@dataclass
class StarGANRecipe:
    resolution: int = 128
    batch_size: int = 16
    iters: int = 200_000
    decay_iters: int = 100_000
    n_critic: int = 5
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    lambda_id: float = 0.0  # opt-in same-domain identity L1 (Fixed-Point GAN's λ_id); 0: the official recipe
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    g_conv_dim: int = 64
    d_conv_dim: int = 64
    g_repeat_num: int = 6
    d_repeat_num: int = 0  # 0: official 6 at 128/256 px, 5 at 64 px (keeps a 2×2 patch output)
    holdout: int = 1000
    seed: int = 0

    def d_repeat(self) -> int:
        if self.d_repeat_num:
            return self.d_repeat_num
        return 6 if self.resolution >= 128 else max(1, int(math.log2(self.resolution)) - 1)


def sample_grid(G: StarGANNet, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Rows: input, then the five official edits (black, blond, brown hair, gender, age)."""
    with torch.inference_mode():
        outs = [x] + [G(x, c) for c in target_conditions(labels).to(x.device)]
    row = torch.cat(outs, dim=3)  # N, 3, H, 6W
    img = to_uint8(row)  # N, H, 6W, 3
    return np.concatenate(list(img), axis=0)


def cls_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The official classification loss: BCE summed over attributes, averaged over the batch."""
    return F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum") / logits.shape[0]


class StarGANFamilyTrainer(GANTrainer):
    """StarGAN's recipe and update rule, shared by its family's trainers (StarGAN, AttentionGAN, Fixed-Point
    GAN, which swap ``net_cls`` and their generator step); not registered itself."""

    attributes = ATTRS
    net_cls: type = StarGANNet  # the generator network (AttentionGAN's and Fixed-Point GAN's trainers swap it)

    Recipe = StarGANRecipe

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None or layers is not None:
            raise InputError("--fc-dim and --layers apply to attgan; stargan's depth is fixed by its resolution")
        opts = {} if dim is None else {"g_conv_dim": dim, "d_conv_dim": dim}
        if iters is not None:
            opts["decay_iters"] = iters // 2
        return opts

    def build(self):
        r = self.recipe
        return (self.net_cls(r.g_conv_dim, len(ATTRS), r.g_repeat_num),
                StarGANDiscriminator(r.resolution, r.d_conv_dim, len(ATTRS), r.d_repeat()))

    def lr_factor(self) -> float:
        r = self.recipe
        start = r.iters - r.decay_iters
        if self.step < start:
            return 1.0
        return max(0.0, (r.iters - self.step) / max(1, r.decay_iters))

    def sample_grid(self) -> np.ndarray:
        return sample_grid(self.G, self.fixed_x, self.fixed_c)

    def critic_step(self, x_real: torch.Tensor, label_org: torch.Tensor, label_trg: torch.Tensor) -> dict:
        """One critic update of the official solver (WGAN-GP with the attribute classifier): its logs."""
        r = self.recipe
        with self.autocast():
            out_src, out_cls = self.D(x_real)
            d_real = -out_src.float().mean()
            d_cls = cls_loss(out_cls, label_org)
            with torch.no_grad():
                x_fake = self.G(x_real, label_trg)
            out_src, _ = self.D(x_fake.detach())
            d_fake = out_src.float().mean()
            alpha = torch.rand(x_real.shape[0], 1, 1, 1, device=self.device, generator=self.gen)
            x_hat = (alpha * x_real + (1 - alpha) * x_fake.float()).requires_grad_(True)
            out_src, _ = self.D(x_hat)
            d_gp = gradient_penalty(out_src.float(), x_hat)
        d_loss = d_real + d_fake + r.lambda_cls * d_cls + r.lambda_gp * d_gp
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return {"D/real": d_real.detach(), "D/fake": d_fake.detach(), "D/cls": d_cls.detach(), "D/gp": d_gp.detach()}

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        x_real, label_org = self.batch()
        rand = torch.randperm(label_org.shape[0], device=self.device, generator=self.gen)
        label_trg = label_org[rand]

        logs = self.critic_step(x_real, label_org, label_trg)

        if (self.step + 1) % r.n_critic == 0:
            with self.autocast():
                x_fake = self.G(x_real, label_trg)
                out_src, out_cls = self.D(x_fake)
                g_fake = -out_src.float().mean()
                g_cls = cls_loss(out_cls, label_trg)
                x_rec = self.G(x_fake, label_org)
                g_rec = (x_real - x_rec.float()).abs().mean()
                if r.lambda_id:  # same-domain path: G(x, c_org) must return x
                    g_id = (x_real - self.G(x_real, label_org).float()).abs().mean()
            g_loss = g_fake + r.lambda_rec * g_rec + r.lambda_cls * g_cls
            if r.lambda_id:
                g_loss = g_loss + r.lambda_id * g_id
                logs["G/id"] = g_id.detach()
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            logs.update({"G/fake": g_fake.detach(), "G/rec": g_rec.detach(), "G/cls": g_cls.detach()})
        return logs


@TRAINERS.register("stargan")
class StarGANTrainer(StarGANFamilyTrainer):
    """StarGAN's trainer: the family's recipe, and a generator that ``--init … --widen`` can widen
    function-preservingly (:mod:`pdbench.train.widen`). AttentionGAN's and Fixed-Point GAN's trainers do not
    offer it (widening their generators is untested; their ``init_from`` converts a StarGAN generator instead)."""

    def widen_generator(self, state: dict, noise: float) -> tuple[dict, str]:
        """A narrower generator of this family widened to ``g_conv_dim`` (:func:`pdbench.train.widen.widen_stargan`,
        seeded by the recipe's seed); the critic keeps its own width (``d_conv_dim``)."""
        from ..generators.base import float_state
        from .widen import widen_stargan

        old = int(state["main.0.weight"].shape[0]) if "main.0.weight" in state else None
        if old is not None and old >= self.recipe.g_conv_dim:
            raise InputError(f"--widen: the generator to start from is already conv_dim {old}; ask for a wider one "
                             f"with --set g_conv_dim=N (N > {old})")
        wide, info = widen_stargan(float_state(state), self.recipe.g_conv_dim, self.net_cls, noise, self.recipe.seed)
        return wide, info.describe()
