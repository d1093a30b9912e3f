"""`pdbench train aeswap`: the classic autoencoder face swap (shared encoder, one decoder per identity).

Data: the photos of the two identities of :data:`pdbench.generators.aeswap.IDENTITIES` in a folder of
LFW photos named ``Person_Name_NNNN.jpg`` (``--data .../lfw-gray-250/images``), centre crop 0.6, 64 px.
The last ``holdout`` photos of each identity (sorted by name) are held out and never trained on.

The original's training step (deepfakes/faceswap: ``original.py`` with its ``random_transform`` and
``random_warp``): a batch of each identity, each photo randomly rotated (±10°), zoomed (±5 %), shifted
(±5 %) and flipped (p 0.4) — the target — and that target further warped by a smooth random field (a
5 × 5 grid of control points moved by Gaussian noise, ``warp`` of the half-width, interpolated
bicubically) — the input. Each autoencoder (the shared encoder and its identity's decoder) rebuilds the
unwarped target from the warped input, mean absolute error (the original's loss), both summed into one
Adam step. Original optimiser: Adam lr 5e-5, β (0.5, 0.999), batch 64 per identity; the original widths
are ``dim`` 128 and ``latent`` 1024. pdbench's shipped CPU run is narrower, with a larger learning rate
and smaller batches (its model card has the command).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..generators.aeswap import CROP, HOLDOUT, IDENTITIES, AESwap, AESwapNet, identity_split
from ..tensors import to_uint8
from . import TRAINERS
from .loop import Trainer


@dataclass
class AESwapRecipe:
    resolution: int = 64
    batch_size: int = 64  # per identity
    iters: int = 100_000
    lr: float = 5e-5
    beta1: float = 0.5
    beta2: float = 0.999
    dim: int = 128  # encoder's first width (original 128)
    latent: int = 1024  # dense bottleneck (original 1024)
    rotation: float = 10.0  # degrees
    zoom: float = 0.05
    shift: float = 0.05
    flip: float = 0.4
    warp: float = 0.05  # std of the control-point noise, in half-widths (grid_sample coordinates)
    holdout: int = HOLDOUT  # per identity
    seed: int = 0


def random_transform(x: torch.Tensor, gen: torch.Generator, rotation: float, zoom: float, shift: float,
                     flip: float) -> torch.Tensor:
    """Random rotation, zoom, shift and horizontal flip of each image (border pixels extended)."""
    b = x.shape[0]
    u = torch.rand(b, 5, device=x.device, generator=gen) * 2 - 1
    ang = u[:, 0] * math.radians(rotation)
    s = 1.0 + u[:, 1] * zoom
    sign = torch.where((u[:, 4] + 1) / 2 < flip, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = torch.cos(ang) / s * sign
    theta[:, 0, 1] = -torch.sin(ang) / s
    theta[:, 1, 0] = torch.sin(ang) / s * sign
    theta[:, 1, 1] = torch.cos(ang) / s
    theta[:, :, 2] = u[:, 2:4] * shift * 2
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_warp(x: torch.Tensor, gen: torch.Generator, std: float, points: int = 5) -> torch.Tensor:
    """A smooth random deformation: ``points`` × ``points`` control points moved by N(0, std)."""
    b, _, h, w = x.shape
    noise = torch.randn(b, 2, points, points, device=x.device, generator=gen) * std
    flow = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    ident = F.affine_grid(torch.eye(2, 3, device=x.device).expand(b, 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, ident + flow, mode="bilinear", padding_mode="border", align_corners=False)


@TRAINERS.register("aeswap")
class AESwapTrainer(Trainer):
    Recipe = AESwapRecipe
    attributes = ()
    crop = CROP
    product = "AE"

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None or layers is not None:
            raise InputError("aeswap takes --dim (the encoder's first width) only; set the bottleneck with --set latent=N")
        return {} if dim is None else {"dim": dim}

    def split(self, ds) -> tuple[list[int], list[int]]:
        """Train on the two identities' photos but the last ``holdout`` of each; hold those out."""
        r = self.recipe
        if r.resolution != 64:
            raise InputError(f"aeswap is the 64 px original; pass --resolution 64 (got {r.resolution})")
        try:
            per_id, self.held = identity_split(ds.files, r.holdout)
        except InputError as e:
            raise InputError(f"{ds.root}: {e}") from None
        self.pools, train = [], []
        for idx in per_id:
            self.pools.append(list(range(len(train), len(train) + len(idx))))
            train += idx
        return train, self.held[0] + self.held[1]

    def build_parts(self) -> None:
        r = self.recipe
        self.net = AESwapNet(r.dim, r.latent, len(IDENTITIES)).to(self.device).train()
        self.opt = torch.optim.Adam(self.net.parameters(), r.lr, (r.beta1, r.beta2))
        self.pool_t = [torch.tensor(p, device=self.device) for p in self.pools]
        self.fixed_x = self.dataset.load(self.held[0][:4] + self.held[1][:4]).to(self.device)
        self.fixed_k = torch.tensor([0] * 4 + [1] * 4, device=self.device)

    def parts(self) -> dict[str, torch.nn.Module]:
        return {"AE": self.net}

    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def lr_bases(self) -> list[tuple[torch.optim.Optimizer, float]]:
        return [(self.opt, self.recipe.lr)]

    def extra_progress(self) -> dict:
        return {"identities": list(IDENTITIES), "train_photos": [len(p) for p in self.pools],
                "held_out": {n: [self.dataset.files[i].name for i in h] for n, h in zip(IDENTITIES, self.held)}}

    def pair(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(warped input, target) for a batch of identity j, float [-1, 1]."""
        r = self.recipe
        pool = self.pool_t[j]
        idx = pool[torch.randint(pool.numel(), (r.batch_size,), device=self.device, generator=self.gen)]
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        target = random_transform(x, self.gen, r.rotation, r.zoom, r.shift, r.flip)
        return random_warp(target, self.gen, r.warp), target

    def train_step(self) -> dict[str, torch.Tensor]:
        losses = []
        with self.autocast():
            for j in range(len(IDENTITIES)):
                warped, target = self.pair(j)
                y = self.net.decoders[j](self.net.encoder(warped))
                losses.append((y.float() - target).abs().mean())
        loss = sum(losses)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {f"L1/{n.split('_')[-1]}": v.detach() for n, v in zip(IDENTITIES, losses)}

    def sample_grid(self) -> np.ndarray:
        """Rows: 4 held-out photos of each identity; columns: photo, its reconstruction, the swap (decoded
        by the other identity's decoder) and the swap pasted onto the photo."""
        self.net.eval()
        with torch.inference_mode():
            x, k = self.fixed_x, self.fixed_k
            rec, swap = self.net(x, k), self.net(x, 1 - k)
            m = AESwap().mask.to(x)
            pasted = m * swap + (1 - m) * x
        self.net.train()
        return np.concatenate(list(to_uint8(torch.cat([x, rec, swap, pasted], dim=3).clamp(-1, 1))), axis=0)
