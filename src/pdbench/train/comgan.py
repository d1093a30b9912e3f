"""Training DF-RAP's ComG on (x, JPEG_q(x)) pairs (``pdbench train comgan``).

DF-RAP (Qu et al., TIFS 2024) attacks through ComG, a network trained to imitate what online social
networks do to a photo. Its authors' weights are not available here and their repository
(ZOMIN28/DF_RAP) publishes the network (``net/ComGAN.py``) and the OSN quality distribution
(``data/qf.txt``) but no ComG training code; pdbench therefore trains its own ComG with that network on
the compression the distribution describes:

* pairs: a training face x (8-bit, lossless) and JPEG_q(x) through real libjpeg (Pillow, baseline 4:2:0,
  :func:`pdbench.transforms.jpeg.jpeg_roundtrip`), q drawn per image from DF-RAP's OSN distribution
  (71–100 with its weights, :data:`pdbench.defenses.comgan.QF_WEIGHTS`);
* loss: ``lambda_rec`` · L1(ComG(x), JPEG_q(x)); optionally (``lambda_adv`` > 0, off by default) a
  least-squares PatchGAN critic on (x, output) pairs, as pix2pix;
* Adam β (0.5, 0.999) (pix2pix's), lr 5e-4, batch 8, learning rate decayed linearly to 0 over the last
  ``decay_iters`` iterations; random horizontal flips; CelebA images 1–9000 (the last 1000 are held out);
* ``init="identity"`` (default): PyTorch's initialisation, then the full-resolution path
  conv1 → conv1m's 1×1 shortcut → conv0 set to carry the RGB channels through (conv0 scaled by 1.2, so
  the untrained output is tanh(1.2·x), L1 0.05 from x), with the main branch of those three channels
  zeroed: the network starts near the identity, which JPEG at OSN qualities is close to, instead of at a
  random map. ``init="default"`` keeps PyTorch's initialisation. The architecture is unchanged.

The loop, checkpoints and resume are :mod:`pdbench.train.loop`'s. :func:`psnr_table` measures how close
a ComG is to real JPEG on held-out faces, per quality, against the identity (x itself) as a baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..defenses.comgan import ComGenerator, sample_quality
from ..errors import InputError
from ..tensors import from_uint8, to_uint8
from ..transforms.jpeg import jpeg_roundtrip
from . import TRAINERS
from .loop import GANTrainer

EVAL_QUALITIES = (71, 75, 80, 90, 95, 100)


@dataclass
class ComGANRecipe:
    resolution: int = 64
    batch_size: int = 8
    iters: int = 3000
    decay_iters: int = 1500
    dim: int = 32  # official width; pdbench's shipped ComG is trained at 16 (CPU budget)
    lambda_rec: float = 1.0
    lambda_adv: float = 0.0  # > 0: least-squares PatchGAN critic (off: pixel loss only)
    dis_dim: int = 32
    g_lr: float = 5e-4
    d_lr: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    init: str = "identity"  # or "default" (PyTorch's initialisation)
    holdout: int = 1000
    seed: int = 0


IDENTITY_GAIN = 1.2  # tanh(1.2·x) is the closest tanh(a·x) to x on CelebA faces (L1 0.050; a = 1: 0.076)


def identity_init(G: ComGenerator) -> ComGenerator:
    """Make the full-resolution linear path carry RGB through: conv1's first three channels copy x, conv1m's
    1×1 shortcut copies them (they are input channels dim…dim+2 of its concatenation), their main branch is
    zeroed (last InstanceNorm's weight 0), and conv0 reads only them, times :data:`IDENTITY_GAIN`."""
    d, eye = G.dim, torch.eye(3)
    with torch.no_grad():
        w = G.conv1[0].weight
        w[:3].zero_()
        w[:3, :, 1, 1] = eye
        s = G.conv1m[0].conv1x1.weight
        s[:3].zero_()
        s[:3, d:d + 3, 0, 0] = eye
        G.conv1m[0].main[4].weight[:3].zero_()
        G.conv1m[0].main[4].bias[:3].zero_()
        c0 = G.conv0[0].weight
        c0.zero_()
        c0[:, :3, 1, 1] = IDENTITY_GAIN * eye
        G.conv0[0].bias.zero_()
    return G


def jpeg_batch(x: torch.Tensor, qualities: list[int]) -> torch.Tensor:
    """Each image of x through real libjpeg at its own quality (the same encoder as the ``jpeg`` setting)."""
    imgs = to_uint8(x)
    return from_uint8(np.stack([jpeg_roundtrip(im, q) for im, q in zip(imgs, qualities)])).to(x.device)


class PatchCritic(nn.Module):
    """A small PatchGAN critic on the (input, output) pair (6 channels): three stride-2 4×4 convolutions
    with LeakyReLU 0.2, then a 1-channel 4×4 convolution (one score per patch)."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(6, dim, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(dim, 2 * dim, 4, 2, 1), nn.InstanceNorm2d(2 * dim, affine=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * dim, 4 * dim, 4, 2, 1), nn.InstanceNorm2d(4 * dim, affine=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * dim, 1, 4, 1, 1))

    def forward(self, x, y):
        return self.main(torch.cat([x, y], dim=1))


def sample_grid(G: ComGenerator, x: torch.Tensor, qualities=(75, 90)) -> np.ndarray:
    """Rows: x, then per quality JPEG_q(x), and ComG(x) (eval mode) once at the end."""
    was = G.training
    G.eval()
    with torch.inference_mode():
        outs = [x] + [jpeg_batch(x, [q] * x.shape[0]) for q in qualities] + [G(x)]
    G.train(was)
    return np.concatenate(list(to_uint8(torch.cat(outs, dim=3))), axis=0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (peak 2), each quantised to 8 bits first."""
    a8, b8 = from_uint8(to_uint8(a)), from_uint8(to_uint8(b))
    mse = (a8 - b8).pow(2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return 10 * torch.log10(4.0 / mse)


@torch.inference_mode()
def psnr_table(G: nn.Module, x: torch.Tensor, qualities=EVAL_QUALITIES, batch: int = 64) -> dict:
    """Mean PSNR(ComG(x), JPEG_q(x)) and PSNR(x, JPEG_q(x)) (identity baseline) per quality, on faces x."""
    outs = torch.cat([G(x[i:i + batch]) for i in range(0, x.shape[0], batch)])
    table = {}
    for q in qualities:
        jx = jpeg_batch(x, [q] * x.shape[0])
        table[int(q)] = {"comg": round(float(psnr(outs, jx).mean()), 2), "identity": round(float(psnr(x, jx).mean()), 2)}
    return table


@TRAINERS.register("comgan")
class ComGANTrainer(GANTrainer):
    """DF-RAP's ComG on (x, JPEG_q(x)), q from DF-RAP's OSN distribution (``--attrs`` is read but unused)."""

    Recipe = ComGANRecipe

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None or layers is not None:
            raise InputError("--fc-dim and --layers apply to attgan; comgan's depth is DF-RAP's (four poolings)")
        opts = {} if dim is None else {"dim": dim}
        if iters is not None:
            opts["decay_iters"] = iters // 2
        return opts

    def build(self):
        r = self.recipe
        if r.resolution % 16:
            raise InputError(f"comgan: --resolution must be a multiple of 16, got {r.resolution}")
        if r.init not in ("identity", "default"):
            raise InputError(f"comgan: init must be 'identity' or 'default', got {r.init!r}")
        G = ComGenerator(r.dim)
        if r.init == "identity":
            identity_init(G)
        return G.train(), PatchCritic(r.dis_dim).train()

    def lr_factor(self) -> float:
        r = self.recipe
        start = r.iters - r.decay_iters
        if self.step < start:
            return 1.0
        return max(0.0, (r.iters - self.step) / max(1, r.decay_iters))

    def sample_grid(self) -> np.ndarray:
        return sample_grid(self.G, self.fixed_x)

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        x, _ = self.batch()
        gen = torch.Generator().manual_seed(r.seed * 1_000_003 + self.step)  # q per image, reproducible on resume
        y = jpeg_batch(x, sample_quality(x.shape[0], gen))
        logs = {}
        if r.lambda_adv > 0:
            with self.autocast():
                with torch.no_grad():
                    fake = self.G(x).float()
                d_loss = 0.5 * ((self.D(x, y).float() - 1).pow(2).mean() + self.D(x, fake).float().pow(2).mean())
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            logs["D/ls"] = d_loss.detach()
        with self.autocast():
            out = self.G(x).float()
            rec = (out - y).abs().mean()
            g_loss = r.lambda_rec * rec
            if r.lambda_adv > 0:
                self.D.requires_grad_(False)
                adv = (self.D(x, out).float() - 1).pow(2).mean()
                self.D.requires_grad_(True)
                g_loss = g_loss + r.lambda_adv * adv
                logs["G/adv"] = adv.detach()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        logs["G/l1"] = rec.detach()
        return logs


def heldout_faces(n: int, resolution: int = 64, seed: int = 0) -> torch.Tensor:
    """n of the 1000 held-out faces of ``celeba-10k-89px`` (never seen in training), as [-1, 1] tensors."""
    from ..assets import resolve
    from ..data import FaceFolder

    root = resolve("celeba-10k-89px", check=False)
    folder = FaceFolder(root / "images", resolution)
    _, test = folder.split(1000)
    return folder.load(folder.select(n, seed=seed, pool=test))


def main(argv=None) -> int:
    """``python -m pdbench.train.comgan [CHECKPOINT] --n 200``: the model card's PSNR table (JSON)."""
    import argparse
    import json

    from ..defenses.comgan import QF, QF_WEIGHTS, load_comg

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("checkpoint", nargs="?", default=None, help="ComG state dict (default: pdbench's shipped ComG)")
    ap.add_argument("--n", type=int, default=200, help="held-out faces")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    x = heldout_faces(args.n)
    G = load_comg(args.checkpoint)
    table = psnr_table(G, x)
    osn = psnr_table(G, x, QF)
    table["osn"] = {k: round(sum(w * osn[q][k] for q, w in zip(QF, QF_WEIGHTS)), 2) for k in ("comg", "identity")}
    print(json.dumps({"n": args.n, "psnr_db": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
