"""HiSD's training recipe (imlixinyang/HiSD: core/train.py, core/trainer.py, configs/celeba-hq.yaml).

Data (``preprocessors/celeba-hq.py``): each tag's attribute lists from the CelebA labels — Bangs
with / without, Eyeglasses with / without, HairColor black / blond / brown (that colour alone, not
grey) — each face with its tag-irrelevant conditions y = (Male, Young) in ±1; a face in no list of a
tag is not used for it. Augmentation (``utils.get_data_iters``): ColorJitter(0.1, 0.1, 0.1, 0.1) and a
random horizontal flip (its resize and random crop are the identity on square crops).

Per iteration (``train.py``): a tag i at random, two different attributes j (the source) and j_trg,
a batch x of attribute j with its y. One generator step (``gen_losses``), with e = E(x), s = F(x, i):

* non-translation x_rec = G(e); self-translation x_slf = G(T(e, s)); latent-guided
  x_trg = G(T(e, s_trg)) with s_trg = M(z, i, j_trg), z ~ N(0, I); cycle x_cyc = G(T(E(x_trg), s));
* L_adv = D_real(x, s) + D_fake,trg(x_trg, s_trg.detach()) + D_fake,cyc(x_cyc, s.detach()) (hinge,
  the critic also sees the style: the ALI part of the released code), L_sty = |F(x_trg, i) − s_trg|₁,
  L_rec = |x_rec − x|₁ + |x_slf − x|₁ + |x_cyc − x|₁; L = adv_w L_adv + sty_w L_sty + rec_w L_rec,
  all weights 1; gradients clipped to norm 100;

then one critic step: hinge on the real x (both outputs, translated and cycle, at attribute j) plus
the R1 penalty Σ|∇ₓ D|² of each, hinge on x_trg (translated output, j_trg) and x_cyc (cycle output, j);
clipped to 100. Adam β (0, 0.99), no weight decay, lr 1e-4 (generator and critic) but 1e-6 for the
mappers; Kaiming-normal initialisation (biases 0.01); batch 8; 200,000 iterations at 128 px; the test
generator is the moving average ``gen_test`` (β 0.99 per iteration), which is what ``G.safetensors``
holds (the trained generator is ``state.pt``'s ``G_trained``).

Widths: ``dim`` scales the official ones (64; see ``generators.hisd.official_channels``); the style
(256), noise (32) and mapper widths are the official ones at any ``dim``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..generators.hisd import TAGS, HiSDDiscriminator, HiSDNet, official_channels
from ..tensors import to_uint8
from . import TRAINERS
from .loop import Trainer

LABELS = ("Bangs", "Eyeglasses", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Male", "Young")


@dataclass
class HiSDRecipe:
    resolution: int = 128
    batch_size: int = 8
    iters: int = 200_000
    dim: int = 64  # the official widths at 64 (configs/celeba-hq.yaml), scaled by dim / 64
    style_dim: int = 256
    noise_dim: int = 32
    mapper_dim: int = 256
    lr_gen: float = 1e-4
    lr_mappers: float = 1e-6
    lr_dis: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.99
    weight_decay: float = 0.0
    adv_w: float = 1.0
    sty_w: float = 1.0
    rec_w: float = 1.0
    clip: float = 100.0
    ema: float = 0.99
    jitter: float = 0.1  # ColorJitter(brightness, contrast, saturation, hue) amount
    holdout: int = 1000
    seed: int = 0

    def networks(self) -> tuple[HiSDNet, HiSDDiscriminator]:
        ch = official_channels(self.dim, self.resolution)
        m = [self.mapper_dim] * 3
        g = HiSDNet(ch["encoder"], ch["translators"], ch["decoder"], ch["extractors"], self.style_dim, self.noise_dim, m, m)
        return g, HiSDDiscriminator(ch["discriminators"], self.style_dim)


def attribute_pools(labels: torch.Tensor) -> list[list[torch.Tensor]]:
    """Indices of the faces in each (tag, attribute) list of ``preprocessors/celeba-hq.py``, from
    labels (N, 8) in {0, 1} over LABELS."""
    b = labels > 0.5
    bangs, glasses, black, blond, brown, grey = (b[:, k] for k in range(6))
    lists = [[bangs, ~bangs], [glasses, ~glasses],
             [black & ~blond & ~brown & ~grey, ~black & blond & ~brown & ~grey, ~black & ~blond & brown & ~grey]]
    return [[m.nonzero().flatten() for m in tag] for tag in lists]


def kaiming_init(module: nn.Module) -> None:
    """The official ``weights_init('kaiming')``: every Conv*/Linear* module with a weight gets
    kaiming_normal_(fan_in, relu), its bias 0.01."""
    for m in module.modules():
        name = type(m).__name__
        if (name.startswith("Conv") or name.startswith("Linear")) and isinstance(getattr(m, "weight", None), torch.Tensor):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.01)


def color_jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """ColorJitter(amount, amount, amount, amount) on a batch in [-1, 1], a factor per image: brightness,
    contrast and saturation as torchvision blends them, the hue shift (± amount of a turn) as a rotation
    of the YIQ chroma plane (torchvision rotates HSV hue; the two agree to first order); the four in a
    random order per batch."""
    if amount <= 0:
        return x
    b = x.shape[0]
    u = (x + 1) / 2
    grey_w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)

    def factor() -> torch.Tensor:
        return (1 + (torch.rand(b, device=x.device, generator=gen) * 2 - 1) * amount).view(b, 1, 1, 1)

    def hue(v: torch.Tensor) -> torch.Tensor:
        t = ((torch.rand(b, device=x.device, generator=gen) * 2 - 1) * amount * 2 * math.pi).view(b, 1, 1)
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device)
        yiq = torch.einsum("ij,bjhw->bihw", to_yiq, v)
        i_, q_ = yiq[:, 1], yiq[:, 2]
        c, s = torch.cos(t), torch.sin(t)
        yiq = torch.stack([yiq[:, 0], c * i_ - s * q_, s * i_ + c * q_], 1)
        return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq)

    ops = [lambda v: v * factor(),
           lambda v: (v - (v * grey_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)) * factor()
           + (v * grey_w).sum(1, keepdim=True).mean((2, 3), keepdim=True),
           lambda v: (v - (v * grey_w).sum(1, keepdim=True)) * factor() + (v * grey_w).sum(1, keepdim=True),
           hue]
    for k in torch.randperm(4, generator=gen, device=x.device).tolist():
        u = ops[k](u).clamp(0, 1)
    return u * 2 - 1


def r1(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The official ``compute_grad2``: mean over the batch of Σ (∂ out.sum() / ∂x)²."""
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.pow(2).flatten(1).sum(1).mean()


@torch.no_grad()
def update_average(target: nn.Module, source: nn.Module, beta: float) -> None:
    """The official moving average of the parameters: target ← β·target + (1 − β)·source."""
    src = dict(source.named_parameters())
    for name, p in target.named_parameters():
        p.copy_(beta * p + (1 - beta) * src[name])


def sample_grid(G: HiSDNet, x: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0) -> np.ndarray:
    """Rows: input, reconstruction G(E(x)), then each latent-guided edit of ``generators.hisd``'s
    official set (bangs flipped, eyeglasses flipped, black, blond, brown hair), one z per edit."""
    from ..generators.hisd import HiSD, target_conditions

    h = HiSD(x.shape[-1], net=G)
    lab = torch.zeros(x.shape[0], 5) if labels is None else labels[:, :5].cpu()
    with torch.inference_mode():
        outs = [x, h.generate(x, torch.zeros(x.shape[0], 5, device=x.device), seed=seed)]
        outs += list(h.generate(x, target_conditions(lab).to(x.device), seed=seed))
    return np.concatenate(list(to_uint8(torch.cat(outs, dim=3))), axis=0)


@TRAINERS.register("hisd")
class HiSDTrainer(Trainer):
    Recipe = HiSDRecipe
    attributes = LABELS

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None or layers is not None:
            raise InputError("--fc-dim and --layers apply to attgan; hisd's depth is the official one at its resolution "
                             "(--dim scales its widths)")
        return {} if dim is None else {"dim": dim}

    def build_parts(self) -> None:
        r = self.recipe
        self.g_train, self.D = r.networks()
        kaiming_init(self.g_train)
        kaiming_init(self.D)
        self.G = copy.deepcopy(self.g_train)  # gen_test: the moving average, what the tests and the product use
        for m in (self.g_train, self.D, self.G):
            m.to(self.device)
        self.G.requires_grad_(False)
        g = self.g_train
        others = [p for part in (g.encoder, g.translators, g.extractors, g.decoder) for p in part.parameters()]
        self.opt_g = torch.optim.Adam([{"params": others}, {"params": g.mappers.parameters(), "lr": r.lr_mappers}],
                                      lr=r.lr_gen, betas=(r.beta1, r.beta2), weight_decay=r.weight_decay)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=r.lr_dis, betas=(r.beta1, r.beta2), weight_decay=r.weight_decay)
        self.pools = attribute_pools(self.labels.cpu())
        for t, (tag, names) in enumerate(TAGS):
            for j, pool in enumerate(self.pools[t]):
                if pool.numel() < r.batch_size:
                    raise InputError(f"hisd: {pool.numel()} training face(s) with {tag} {names[j]} for a batch of "
                                     f"{r.batch_size}; add photos or pass a smaller --batch-size")
        self.pools = [[p.to(self.device) for p in tag] for tag in self.pools]
        self._order = {}  # (tag, attribute) -> (permutation, position): an epoch-wise shuffle per list

    def parts(self) -> dict[str, nn.Module]:
        return {"G": self.G, "G_trained": self.g_train, "D": self.D}

    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def lr_bases(self) -> list[tuple[torch.optim.Optimizer, float]]:
        return []  # constant rates (the official schedule has no decay)

    def init_from(self, source: str) -> str:
        raise InputError("--init: hisd trains from its own initialisation (no other generator shares its networks); "
                         "continue a hisd run with --resume")

    def sample_grid(self) -> np.ndarray:
        return sample_grid(self.G, self.fixed_x, self.fixed_c)

    def tag_batch(self, i: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of the list (tag i, attribute j), flipped and colour-jittered, with y = (Male, Young) in ±1."""
        b = self.recipe.batch_size
        pool = self.pools[i][j]
        perm, pos = self._order.get((i, j), (None, pool.numel()))
        if pos + b > pool.numel():
            perm, pos = pool[torch.randperm(pool.numel(), device=self.device, generator=self.gen)], 0
        idx = perm[pos:pos + b]
        self._order[(i, j)] = (perm, pos + b)
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        flip = torch.rand(b, device=self.device, generator=self.gen) < 0.5
        x = color_jitter(torch.where(flip[:, None, None, None], x.flip(3), x), self.recipe.jitter, self.gen)
        y = self.labels[idx][:, 6:8] * 2 - 1
        return x, y

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        g, D = self.g_train, self.D
        i = int(torch.randint(len(TAGS), (1,), generator=self.gen, device=self.device))
        j, j_trg = torch.randperm(len(TAGS[i][1]), generator=self.gen, device=self.device)[:2].tolist()
        x, y = self.tag_batch(i, j)
        z = torch.randn(x.shape[0], r.noise_dim, device=self.device, generator=self.gen)

        # generator step (gen_losses)
        D.requires_grad_(False)
        with self.autocast():
            e = g.encode(x)
            x_rec = g.decode(e)
            s = g.extract(x, i)
            x_slf = g.decode(g.translate(e, s, i))
            s_trg = g.map(z, i, j_trg)
            x_trg = g.decode(g.translate(e, s_trg, i))
            s_trg_rec = g.extract(x_trg, i)
            x_cyc = g.decode(g.translate(g.encode(x_trg), s, i))
            out = D(x, s, y, i)[:, :, j]
            adv = out[:, 0].float().mean() + out[:, 1].float().mean()
            adv = adv - D(x_trg, s_trg.detach(), y, i)[:, 0, j_trg].float().mean()
            adv = adv - D(x_cyc, s.detach(), y, i)[:, 1, j].float().mean()
            sty = F.l1_loss(s_trg_rec.float(), s_trg.float())
            rec = F.l1_loss(x_rec.float(), x) + F.l1_loss(x_slf.float(), x) + F.l1_loss(x_cyc.float(), x)
        loss = r.adv_w * adv + r.sty_w * sty + r.rec_w * rec
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(g.parameters(), r.clip)
        self.opt_g.step()
        D.requires_grad_(True)

        # critic step (dis_losses), on the generator step's detached images and styles
        x_trg, x_cyc, s, s_trg = x_trg.detach().float(), x_cyc.detach().float(), s.detach().float(), s_trg.detach().float()
        xr = x.detach().requires_grad_(True)
        with self.autocast():
            out = D(xr, s, y, i)[:, :, j].float()
            real = F.relu(1 - out[:, 0]).mean() + F.relu(1 - out[:, 1]).mean()
            reg = r1(out[:, 0], xr) + r1(out[:, 1], xr)
            fake = F.relu(1 + D(x_trg, s_trg, y, i)[:, 0, j_trg].float()).mean()
            fake = fake + F.relu(1 + D(x_cyc, s, y, i)[:, 1, j].float()).mean()
        d_loss = real + reg + fake
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        nn.utils.clip_grad_norm_(D.parameters(), r.clip)
        self.opt_d.step()

        update_average(self.G, g, r.ema)
        return {"G/adv": adv.detach(), "G/sty": sty.detach(), "G/rec": rec.detach(), "D/adv": (real + fake).detach(),
                "D/r1": reg.detach()}
