"""SimSwap's training recipe (neuralchen/SimSwap ``train.py`` with ``models/projected_model.py``; the
losses of ``models/fs_model.py``), with pdbench's MobileFaceNet as the identity encoder.

Per step, one generator update then one critic update, on a batch of CelebA *pairs of the same
identity* (target t, identity face s; the official loader draws two photos of one person):

* on even steps the identity face is s itself (same identity: the output should be t again, and the
  reconstruction loss ``lambda_rec`` · L1(G(t, z_s), t) applies); on odd steps the identity faces are
  the batch's s in a random permutation (a swap);
* z = normalize(MobileFaceNet(s)) (128-d; SimSwap's ArcFace is 512-d and cannot be had);
* generator: hinge adversarial −D(G(t, z)) + ``lambda_id`` · (1 − cos(MobileFaceNet(G(t, z)), z)) +
  ``lambda_feat`` · feature matching (L1 between the critic's features of the output and of t) (+ the
  reconstruction on even steps);
* critic: hinge, relu(1 − D(s)) + relu(1 + D(G(t, z))).

Official weights: ``lambda_id`` 30, ``lambda_feat`` 10, ``lambda_rec`` 10; Adam lr 4e-4, β (0, 0.99);
batch 4; 9 AdaIN blocks, width 64. The critic: the official one is the *projected* discriminator
(a pretrained EfficientNet-lite feature network, pg_modules), whose ImageNet weights cannot be had here;
pdbench uses SimSwap's earlier critic from ``fs_networks.py`` (``Discriminator``: a PatchGAN, names
down1..down4, conv1, conv2, with ``fs_model.py``'s multi-layer feature matching, weight 4/(n_layers+1)
per layer and 1/num_D per critic). The official multi-scale pair (num_D 2, the second on a 2× average-
pooled image) is ``num_d`` = 2; at 64 px the half-scale critic's patch output would be empty, so the
64 px recipe uses one. CelebA identities: ``identity_CelebA.txt`` (``--set identities=PATH``; found
beside the image folder by default); images of people with a single photo in the training split are
not drawn (they cannot form a pair). The loop, checkpoints and resume are :mod:`pdbench.train.loop`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..generators.simswap import ID_DIM, Generator_Adain_Upsample, identity_vector
from ..tensors import to_uint8
from . import TRAINERS
from .loop import GANTrainer

IDENTITY_FILE = "identity_CelebA.txt"


class Discriminator(nn.Module):
    """SimSwap's PatchGAN critic (``fs_networks.py``): four stride-2 4×4 convolutions (LeakyReLU 0.2,
    BatchNorm after the first), a stride-1 one and the 1-channel output; returns every layer's output
    (the features for feature matching, then the logits)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64):
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        c = [ndf, ndf * 2, ndf * 4, ndf * 8]
        self.down1 = nn.Sequential(nn.Conv2d(input_nc, c[0], 4, 2, 1), lrelu())
        self.down2 = nn.Sequential(nn.Conv2d(c[0], c[1], 4, 2, 1), nn.BatchNorm2d(c[1]), lrelu())
        self.down3 = nn.Sequential(nn.Conv2d(c[1], c[2], 4, 2, 1), nn.BatchNorm2d(c[2]), lrelu())
        self.down4 = nn.Sequential(nn.Conv2d(c[2], c[3], 4, 2, 1), nn.BatchNorm2d(c[3]), lrelu())
        self.conv1 = nn.Sequential(nn.Conv2d(c[3], c[3], 4, 1, 1), nn.BatchNorm2d(c[3]), lrelu())
        self.conv2 = nn.Sequential(nn.Conv2d(c[3], 1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in (self.down1, self.down2, self.down3, self.down4, self.conv1, self.conv2):
            x = layer(x)
            out.append(x)
        return out


class MultiScaleCritic(nn.Module):
    """``num_d`` critics, the i-th on the image average-pooled i times (3×3, stride 2, as fs_model.py)."""

    def __init__(self, num_d: int = 2, ndf: int = 64):
        super().__init__()
        self.critics = nn.ModuleList(Discriminator(3, ndf) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for i, d in enumerate(self.critics):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            outs.append(d(x))
        return outs


@dataclass
class SimSwapRecipe:
    resolution: int = 224
    batch_size: int = 4
    iters: int = 1_000_000
    lambda_id: float = 30.0
    lambda_feat: float = 10.0
    lambda_rec: float = 10.0
    g_lr: float = 4e-4
    d_lr: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.99
    ngf: int = 64  # official width; pdbench's CPU weights are narrower (model card)
    n_blocks: int = 9
    deep: bool = False
    ndf: int = 64
    num_d: int = 0  # 0: the official 2 at 128 px and above, 1 below (a half-scale critic would be empty)
    identities: str = ""  # CelebA identity_CelebA.txt ("" : beside the image folder or its parent)
    holdout: int = 1000
    seed: int = 0

    def critics(self) -> int:
        return self.num_d or (2 if self.resolution >= 128 else 1)


def read_identities(path: str | Path) -> dict[str, int]:
    """CelebA's ``identity_CelebA.txt`` (``name id`` per line, an optional header) -> {file stem: id}."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"identity file {path} does not exist; pass CelebA's identity_CelebA.txt with --set identities=PATH")
    out: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                out[Path(parts[0]).stem] = int(parts[1])
    if not out:
        raise InputError(f"identity file {path} has no 'name id' rows (CelebA's identity_CelebA.txt format)")
    return out


def find_identities(data: str | Path, given: str = "") -> Path:
    if given:
        return Path(given)
    for d in (Path(data), Path(data).parent):
        if (d / IDENTITY_FILE).is_file():
            return d / IDENTITY_FILE
    raise InputError(f"no {IDENTITY_FILE} in {data} or its parent: pass CelebA's identity labels with "
                     f"--set identities=PATH (simswap trains on pairs of photos of the same person)")


def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """fs_model.py's GAN feature matching: Σ over critics and their layers but the last of
    (4 / (n_layers + 1)) · (1 / num_D) · L1(fake features, real features)."""
    loss = fake[0][0].new_zeros(())
    n_layers = len(fake[0]) - 2  # fs_model.py: n_layers_D = 4 for its six-output critic
    w = 4.0 / (n_layers + 1) / len(fake)
    for f_d, r_d in zip(fake, real):
        for f, r in zip(f_d[:-1], r_d[:-1]):
            loss = loss + w * F.l1_loss(f.float(), r.detach().float())
    return loss


@TRAINERS.register("simswap")
class SimSwapTrainer(GANTrainer):
    Recipe = SimSwapRecipe
    attributes = ()
    crop = 1.0

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None:
            raise InputError("simswap takes --dim (ngf and ndf) and --layers (its AdaIN blocks); --fc-dim does not apply")
        opts = {} if dim is None else {"ngf": dim, "ndf": dim}
        if layers is not None:
            opts["n_blocks"] = layers
        return opts

    def build(self):
        r = self.recipe
        if r.resolution % (16 if r.deep else 8):
            raise InputError(f"simswap: resolution {r.resolution} must be a multiple of {16 if r.deep else 8}")
        return (Generator_Adain_Upsample(3, 3, ID_DIM, r.n_blocks, r.deep, r.ngf),
                MultiScaleCritic(r.critics(), r.ndf))

    def build_parts(self) -> None:
        r = self.recipe
        ids = read_identities(find_identities(self.dataset.root, r.identities))
        train_idx = list(range(len(self.dataset) - r.holdout)) if r.holdout else list(range(len(self.dataset)))
        names = [Path(n).stem for n in self.dataset.names(train_idx)]
        missing = [n for n in names if n not in ids]
        if missing:
            raise InputError(f"{len(missing)} training image(s) have no identity label (e.g. {missing[0]}); pass the "
                             "identity file of these photos with --set identities=PATH")
        person = torch.tensor([ids[n] for n in names])
        # rows of the image store whose person has another photo in the training split, and those photos
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(person.tolist()):
            groups.setdefault(p, []).append(i)
        pairs = {p: g for p, g in groups.items() if len(g) > 1}
        if not pairs:
            raise InputError("simswap: no person has two photos in the training split; it trains on same-person pairs")
        self.pool = torch.tensor([i for g in pairs.values() for i in g])
        self.partner = [groups[p] for p in person.tolist()]
        print(f"{len(self.pool)} training photos of {len(pairs)} people with two or more", flush=True)
        super().build_parts()

    def optimizers(self):
        r = self.recipe
        return (torch.optim.Adam(self.G.parameters(), r.g_lr, (r.beta1, r.beta2), eps=1e-8),
                torch.optim.Adam(self.D.parameters(), r.d_lr, (r.beta1, r.beta2), eps=1e-8))

    def extra_progress(self) -> dict:
        return {"identity_encoder": "mobilefacenet (068.ckpt, 128-d, CelebA box, no mirror)",
                "critic": f"fs_networks.Discriminator × {self.recipe.critics()} (hinge)"}

    def _images(self, rows: torch.Tensor) -> torch.Tensor:
        x = self.images[rows].float().div_(127.5).sub_(1.0)
        flip = torch.rand(rows.numel(), device=self.device, generator=self.gen) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(3), x)

    def pair_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, s) in [-1, 1]: b random training photos and, for each, another photo of the same person."""
        b = self.recipe.batch_size
        gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=self.gen, device=self.device)))
        rows = self.pool[torch.randint(len(self.pool), (b,), generator=gen)]
        other = []
        for r in rows.tolist():
            g = [i for i in self.partner[r] if i != r]
            other.append(g[int(torch.randint(len(g), (1,), generator=gen))])
        return self._images(rows.to(self.device)), self._images(torch.tensor(other, device=self.device))

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        t, s = self.pair_batch()
        same = self.step % 2 == 0
        if not same:
            s = s[torch.randperm(s.shape[0], device=self.device, generator=self.gen)]
        with torch.no_grad():
            z = identity_vector(s)
        t01, s01 = t * 0.5 + 0.5, s * 0.5 + 0.5
        # generator
        with self.autocast():
            fake = self.G(t01, z)
            out_fake = self.D(fake)
            g_adv = sum((-o[-1].float()).mean() for o in out_fake) / len(out_fake)
            with torch.no_grad():
                out_real = self.D(t01)
            g_feat = feature_matching(out_fake, out_real)
            g_id = (1 - (identity_vector(fake.float() * 2 - 1) * z).sum(1)).mean()
            g_loss = g_adv + r.lambda_id * g_id + r.lambda_feat * g_feat
            g_rec = (fake.float() - t01).abs().mean()
            if same:
                g_loss = g_loss + r.lambda_rec * g_rec
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        # critic
        with self.autocast():
            d_fake = sum(F.relu(1 + o[-1].float()).mean() for o in self.D(fake.detach())) / r.critics()
            d_real = sum(F.relu(1 - o[-1].float()).mean() for o in self.D(s01)) / r.critics()
        self.opt_d.zero_grad(set_to_none=True)
        (d_fake + d_real).backward()
        self.opt_d.step()
        return {"G/adv": g_adv.detach(), "G/id": g_id.detach(), "G/feat": g_feat.detach(), "G/rec": g_rec.detach(),
                "D/fake": d_fake.detach(), "D/real": d_real.detach()}

    def sample_grid(self) -> np.ndarray:
        """Row 0: a blank then the identity faces; row i: target i, then target i with each identity."""
        x = self.fixed_x[:6]
        was = self.G.training
        self.G.eval()
        with torch.inference_mode():
            z = identity_vector(x)
            rows = [torch.cat([torch.zeros_like(x[:1]), x])]
            for i in range(x.shape[0]):
                t = x[i:i + 1].expand_as(x) * 0.5 + 0.5
                rows.append(torch.cat([x[i:i + 1], self.G(t, z) * 2 - 1]))
        self.G.train(was)
        grid = torch.stack(rows)  # (R, C, 3, H, W)
        img = to_uint8(grid.flatten(0, 1).clamp(-1, 1))  # (R·C, H, W, 3)
        rr, cc = grid.shape[:2]
        h, w = img.shape[1:3]
        return img.reshape(rr, cc, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(rr * h, cc * w, 3)
