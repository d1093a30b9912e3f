"""The classic autoencoder face swap (the original "deepfakes" design): one shared encoder, one decoder per identity.

Architecture (deepfakes/faceswap ``plugins/train/model/original.py``, narrowed for a CPU): the encoder is
four 5×5 stride-2 convolutions with LeakyReLU 0.1 (64 → 4 px; widths d, 2d, 4d, 8d, the original's
d = 128), a dense bottleneck of ``latent`` units (original 1024), a dense layer back to 4 × 4 × 8d and
one upscale block (3×3 convolution to 4× the channels, LeakyReLU 0.1, pixel shuffle ×2) to 8 × 8 × 4d.
Each decoder is three upscale blocks (to 2d, d, d/2 channels; 64 px) and a 5×5 convolution to RGB with a
sigmoid, mapped to [-1, 1]. Both autoencoders (encoder + decoder A, encoder + decoder B) learn to
rebuild *warped* photos of their own identity (:mod:`pdbench.train.aeswap`): the shared encoder learns
pose, expression and lighting, each decoder one identity's face.

Swap: encode a photo of any face, decode with the decoder of the identity wanted; as the original's
converter does, the decoded face is pasted onto the photo through a mask, here a fixed soft ellipse
over the inner face (:data:`MASK`: the mean dlib 68-point face of the training crops, eyebrows to chin),
so the photo's hair, ears and background stay.

The condition and the roles (contract v2): the identity of this design lives in a decoder's weights,
not in an input image. ``x`` is always the **target** (the face whose pose, expression, lighting and
background are kept; it is what a defense protects here), and ``attrs`` picks the **source identity**,
one-hot over :data:`IDENTITIES` (the decoders). A reference image is not read. Protecting the *source*
of this swapper means protecting the photos its decoder is trained on (data poisoning), not an input
at swap time; see the model card. :meth:`AESwap.conditions` gives every photo both decoders (K = 2:
``to_George_W_Bush``, ``to_Colin_Powell``), so for a photo of one of the two identities one edit is the
swap and the other its reconstruction; :meth:`AESwap.swap_condition` gives the swap alone, to the other
identity.

Preprocessing (:data:`CROP`): LFW's 250 × 250 photos are centred on the face by their detector; pdbench
takes a fixed centre crop of 0.6 of the side (150 px) resized to 64 px, no detector and no alignment.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AssetCorruptError, InputError
from ..tensors import check_images
from . import GENERATORS
from .base import Generator, Preprocessing, checkpoint_state, load_frozen, register_preprocessing

IDENTITIES = ("George_W_Bush", "Colin_Powell")  # the two LFW identities with the most photos (530, 236)
CROP = 0.6
RESOLUTION = 64
ASSET = "aeswap-lfw-64-pdbench"
# the soft paste mask: ellipse centre (x, y), semi-axes (x, y) in relative coordinates of the 0.6 crop, edge width.
# From dlib's 68 landmarks on 60 training photos: jaw 0.18–0.83 across, eyebrows at 0.32, chin at 0.93
MASK = (0.51, 0.62, 0.31, 0.33, 0.08)

register_preprocessing(Preprocessing(RESOLUTION, CROP, "none", source="pdbench train aeswap: centre crop 0.6 of LFW's "
                                     "250 px photos (face centred by LFW's detector), resize to 64"), "aeswap", ASSET)


HOLDOUT = 32  # photos per identity never trained on (the last of each, sorted by name)


def identity_split(files, holdout: int = HOLDOUT) -> tuple[list[list[int]], list[list[int]]]:
    """Per identity of :data:`IDENTITIES`, the indices of its photos in ``files`` (LFW's
    ``Person_Name_NNNN.jpg``, sorted) for training and the last ``holdout`` held out: (train, held)."""
    who = [Path(f).stem.rsplit("_", 1)[0] for f in files]
    train, held = [], []
    for name in IDENTITIES:
        idx = [i for i, w in enumerate(who) if w == name]
        if len(idx) <= holdout:
            raise InputError(f"{len(idx)} photo(s) of {name} for {holdout} held out; aeswap needs LFW's photos named "
                             f"{name}_NNNN.jpg (the folder lfw-gray-250/images) or a smaller holdout")
        train.append(idx[:len(idx) - holdout])
        held.append(idx[len(idx) - holdout:])
    return train, held


def paste_mask(h: int, w: int, mask: tuple = MASK) -> torch.Tensor:
    """(1, 1, H, W) soft ellipse in [0, 1]: 1 inside the face, falling to 0 over ``mask[4]`` of the radius."""
    cx, cy, ax, ay, edge = mask
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    r = (((xs[None, :] - cx) / ax) ** 2 + ((ys[:, None] - cy) / ay) ** 2).sqrt()
    return ((1.0 - r) / edge + 0.5).clamp(0, 1)[None, None]


def _conv(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 5, 2, 2), nn.LeakyReLU(0.1))


def _upscale(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o * 4, 3, 1, 1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))


class Encoder(nn.Module):
    def __init__(self, dim: int = 32, latent: int = 256):
        super().__init__()
        self.dim = dim
        self.convs = nn.Sequential(_conv(3, dim), _conv(dim, 2 * dim), _conv(2 * dim, 4 * dim), _conv(4 * dim, 8 * dim))
        self.fc1 = nn.Linear(8 * dim * 16, latent)
        self.fc2 = nn.Linear(latent, 8 * dim * 16)
        self.up = _upscale(8 * dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(self.fc1(self.convs(x).flatten(1)))
        return self.up(h.view(-1, 8 * self.dim, 4, 4))


class Decoder(nn.Module):
    def __init__(self, dim: int = 32):
        super().__init__()
        self.ups = nn.Sequential(_upscale(4 * dim, 2 * dim), _upscale(2 * dim, dim), _upscale(dim, dim // 2))
        self.out = nn.Conv2d(dim // 2, 3, 5, 1, 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.ups(h))) * 2.0 - 1.0  # the original's sigmoid, on pdbench's [-1, 1]


class AESwapNet(nn.Module):
    """Shared encoder and one decoder per identity: ``forward(x, k)`` decodes row b with decoder k[b]."""

    def __init__(self, dim: int = 32, latent: int = 256, identities: int = 2):
        super().__init__()
        self.encoder = Encoder(dim, latent)
        self.decoders = nn.ModuleList(Decoder(dim) for _ in range(identities))

    def decode(self, h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        ks = k.tolist()
        if len(set(ks)) == 1:
            return self.decoders[ks[0]](h)
        out = None
        for j in sorted(set(ks)):
            rows = (k == j).nonzero().flatten()
            y = self.decoders[j](h[rows])
            out = y.new_empty(h.shape[0], *y.shape[1:]) if out is None else out
            out = out.index_copy(0, rows, y)
        return out

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encoder(x), k)


@GENERATORS.register("aeswap")
class AESwap(Generator):
    """The classic autoencoder face swap on two LFW identities (see the module docstring)."""

    kind = "swap"
    inputs = ("attrs",)
    attributes = IDENTITIES
    condition_names = tuple(f"to_{n}" for n in IDENTITIES)
    conditional_encoder = False
    protected_role = "target"  # what a protected photo is to this swapper (runs record it; see Condition.role)
    pairs_asset = "lfw-gray-250"  # where its swap pairs come from in a run (swap_pairs): its identities' photos
    default_asset = ASSET
    experimental: str | None = ("pdbench's 64 px weights: 1,539 iterations on a CPU; on 64 held-out swaps the pasted "
                                "output is closer in identity to the source than to the target for 25 % (MobileFaceNet) "
                                "and 44 % (dlib) of pairs, under the 80 % rule, and its landmarks move (NME 0.12): not a "
                                "real swapper yet (docs/model-cards/aeswap-lfw-64-pdbench.md)")

    def __init__(self, dim: int = 32, latent: int = 256, resolution: int = RESOLUTION):
        super().__init__()
        self.resolution = resolution
        self.net = AESwapNet(dim, latent, len(IDENTITIES))
        self.register_buffer("mask", paste_mask(resolution, resolution), persistent=False)

    @classmethod
    def from_assets(cls, checkpoint: str | None = None, asset: str | None = None,
                    device: str | torch.device = "cpu") -> "AESwap":
        """pdbench's trained weights (default; flagged :attr:`experimental`) or a checkpoint of
        ``pdbench train aeswap`` (strict load; the widths are read from the weights)."""
        asset = asset or cls.default_asset
        state, path, meta = checkpoint_state(checkpoint, asset)
        if "encoder.fc1.weight" not in state:
            raise AssetCorruptError(f"{path} is not an aeswap state dict (no 'encoder.fc1.weight'); pass the "
                                    "AE.safetensors of `pdbench train aeswap`")
        dim = int(state["encoder.convs.0.0.weight"].shape[0])
        latent = int(state["encoder.fc1.weight"].shape[0])
        model = cls(dim, latent)
        load_frozen(model.net, state, path)
        model._use_weights(asset if checkpoint is None else str(checkpoint))
        if checkpoint is not None:
            model.experimental = None  # the flag describes pdbench's shipped weights
        return model.eval().to(device)

    # -- conditions ------------------------------------------------------------------------------
    def _onehot(self, k: torch.Tensor) -> torch.Tensor:
        return F.one_hot(k.long(), len(IDENTITIES)).float()

    def conditions(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """Every photo to each identity's decoder: (2, N, 2) one-hot (``to_George_W_Bush``, ``to_Colin_Powell``)."""
        return torch.eye(len(IDENTITIES))[:, None].expand(len(IDENTITIES), n, len(IDENTITIES)).clone()

    def _who(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        if labels is None or labels.shape != (n, len(IDENTITIES)):
            raise InputError(f"{self.name}: needs each photo's identity, one-hot ({n}, {len(IDENTITIES)}) over "
                             f"{', '.join(IDENTITIES)}, got {None if labels is None else tuple(labels.shape)}")
        return labels.argmax(1)

    def unedited(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """Each photo through its own identity's decoder (reconstruction)."""
        return self._onehot(self._who(labels, n))

    def swap_condition(self, labels: torch.Tensor, n: int) -> torch.Tensor:
        """Each photo to the *other* identity's decoder, (1, N, 2): the swap alone."""
        return self._onehot(1 - self._who(labels, n))[None]

    def swap_pairs(self, n: int | None, seed: int = 0):
        """The held-out swaps a benchmark run protects (the runner's ``swap`` block): ``(folder, targets,
        sources, who)``. The targets are ``n`` (default and at most 2 × :data:`HOLDOUT`) held-out LFW photos
        (never trained on), half of each identity (the first identity gets the odd one), chosen by ``seed``;
        each is swapped to the *other* identity's decoder, and its source, for the identity judges, is a
        held-out photo of that identity (drawn by ``seed`` and the target's name). ``who``: each target's own
        identity (0/1, what :meth:`swap_condition` reads). Indices are into ``folder`` (a
        :class:`~pdbench.data.FaceFolder` at this generator's preprocessing)."""
        import random

        from ..assets import resolve
        from ..data import FaceFolder

        pre = self.preprocessing
        folder = FaceFolder(resolve(self.pairs_asset, check=False) / "images", pre.size, crop=pre.crop, check_files=False)
        _, held = identity_split(folder.files)
        total = sum(len(h) for h in held)
        n = total if n is None else int(n)
        if not 1 <= n <= total:
            raise InputError(f"{self.name}: {n} swap pair(s) asked for; it has {total} held-out photos of its two "
                             f"identities (set dataset.n to at most {total})")
        rng = random.Random(seed)
        picks = [sorted(rng.sample(held[0], (n + 1) // 2)), sorted(rng.sample(held[1], n // 2))]
        targets = picks[0] + picks[1]
        who = [0] * len(picks[0]) + [1] * len(picks[1])
        sources = [random.Random(f"{seed}:{folder.files[t].name}").choice(held[1 - w]) for t, w in zip(targets, who)]
        return folder, targets, sources, who

    # -- forward ---------------------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> None:
        check_images(x, f"{self.name} input")
        if x.shape[-2:] != (self.resolution, self.resolution):
            raise InputError(f"{self.name}: expects {self.resolution}x{self.resolution} face crops (LFW centre crop "
                             f"{CROP}), got {x.shape[-2]}x{x.shape[-1]}; load them with G.preprocessing")

    def _decoders(self, attrs: torch.Tensor | None) -> torch.Tensor:
        if attrs is None:
            raise InputError(f"{self.name}: the condition must pick a decoder (attrs one-hot over {', '.join(IDENTITIES)})")
        return attrs.argmax(-1).to(torch.long)

    def decoded(self, x: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
        """The decoder's whole 64 px face before it is pasted onto x (B, 3, H, W)."""
        self._check(x)
        return self.net(x, self._decoders(attrs))

    def edit(self, x: torch.Tensor, attrs: torch.Tensor | None, **inputs) -> torch.Tensor:
        """Encode x, decode with the picked identity's decoder, paste the face onto x through :data:`MASK`."""
        y = self.decoded(x, attrs)
        m = self.mask.to(x)
        return m * y + (1.0 - m) * x

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The shared encoder's 8 × 8 × 4d latent (the same for every decoder, so c is not needed)."""
        self._check(x)
        return self.net.encoder(x)

    def decode(self, h: torch.Tensor, c: torch.Tensor | None = None, x: torch.Tensor | None = None) -> torch.Tensor:
        """The picked decoder's face from the latent, pasted onto the photo ``x`` it was encoded from
        (needed: the swap keeps x outside the face), so ``decode(encode(x), c, x=x) == generate(x, c)``."""
        if x is None:
            raise InputError(f"{self.name}: decode needs the input image (decode(h, c, x=x)): the face is pasted onto it")
        m = self.mask.to(x)
        return m * self.net.decode(h, self._decoders(c)) + (1.0 - m) * x


def params(dim: int, latent: int) -> int:
    """Parameter count of an AESwapNet (for model cards)."""
    return sum(p.numel() for p in AESwapNet(dim, latent).parameters())


__all__ = ["AESwap", "AESwapNet", "IDENTITIES", "CROP", "MASK", "HOLDOUT", "identity_split", "paste_mask", "params"]
