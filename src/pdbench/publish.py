"""The publish stage: the perturbation as it reaches a deepfake generator, written onto the photo.

What a generator is fed is never the defense's tensor but the *published* photo: the perturbation added
to the photo at the photo's own resolution, rounded to 8 bits with at most ⌊ε·127.5⌋ grey levels,
saved losslessly and read back, and then the generator's official preprocessing (centre square of
``crop`` × the short side, Pillow's antialiased bilinear resize to its resolution).

Two modes, chosen by name:

``native`` (default)
    The defense optimises δ at the photo's resolution *through* that preprocessing:
    :class:`PhotoGenerator` wraps each generator so that its input is the whole photo in [-1, 1] and it
    crops and resizes exactly as Pillow does (:func:`pdbench.filters.resize_bilinear`) before
    generating. ε holds exactly on the photo's pixels; photos of the same size are batched.
``model-input``
    PDB's own protocol: protect the generator's input (e.g. 64 px), then upsample δ bilinearly onto the
    crop square (:func:`publish_upsampled`). Kept by name so that PDB's numbers stay reproducible; most
    of its effect is lost once the photo is read back at its own resolution.

:func:`protect_images` is the one call for both (used by ``pdbench protect`` and by the runner's
``publish: native`` cells); :func:`published_disruption` measures what the read-back photo does to each
generator.

How much survives (``benchmarks/publish.py``, docs/results/publish.json): native mode keeps ≈ 93 % of
the disruption it optimised once rounded to 8 bits, but only about half of PDB's model-input number, and
the gap is the constraint set, not the optimiser. The generator sees R·δ (R the antialiased resize,
non-negative overlapping triangles): adjacent model-input pixels share photo pixels, so PGD's
high-frequency ±ε pattern at 64 px cannot be delivered from the photo within ε.
:func:`first_order_ratio` measures it: of the best gain of the loss linearised at the model input,
ε‖g‖₁, a perturbation on the photo can deliver ε‖Rᵀg‖₁, and ‖Rᵀg‖₁ / ‖g‖₁ is 0.57–0.59 all along
PDB's and native PGD's trajectories, on 89 px faces and on 1024 px photos alike (× 6/6.375 for the 8-bit
grey levels: 0.55–0.56). Every optimiser tried stops there (``benchmarks/publish_bound.py``,
docs/results/publish_bound.json: 100 steps, a cosine step schedule, Adam on tanh δ, a start from
ε·sign(Rᵀδ₆₄), straight-through 8-bit rounding (``rounding=True``)) reaches 36 % (Adam) to 58 % of
PDB's number, never near 80 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data.folder import crop_box, preprocess
from .errors import InputError
from .filters import resize_bilinear
from .generators.base import Generator, Preprocessing, Target, TargetMember
from .tensors import from_uint8

MODES = ("native", "model-input")
# PGD's settings in native mode where none are given (``pdbench protect``): α 0.02 at ε 0.05 on a cosine
# schedule, 30 steps as PDB. Through the photo's resize it reaches 54 % / 56 % of PDB's model-input
# number on 89 px faces / 1024 px photos against 49 % / 55 % with PDB's constant α 0.01, better on 7 of
# 8 faces and equal on the 8th (benchmarks/publish_bound.py, docs/results/publish_bound.json).
NATIVE_PGD = {"alpha": 0.02, "schedule": "cosine"}


def grey_levels(eps: float) -> int:
    """The largest whole number of 8-bit grey levels inside ε (on the [-1, 1] scale)."""
    return math.floor(eps * 127.5 + 1e-9)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown publish mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


class PhotoGenerator(Generator):
    """``inner`` as it reads a photo of ``size`` = (height, width): its input is the whole photo in
    [-1, 1], NCHW; it takes the centre square of ``inner.preprocessing.crop`` × the short side and resizes it to
    ``inner.resolution`` as Pillow's bilinear does, then generates. Differentiable end to end.

    ``rounding``: round the photo and the model input to 8-bit grey levels in the forward pass, as
    publishing and Pillow's resize do, and pass the gradient straight through (the identity) in the
    backward pass, so that the defense optimises what is published (``protect_images`` turns it on).

    ``per_image`` (default) runs the generator on one photo's K edits at a time: convolutions batched
    differently round differently (~1e-9), and at the photo's resolution such a difference can flip the
    sign of a near-zero gradient and change the perturbation, so only per-photo forwards make a photo's
    result independent of its batch (as a resumed ``pdbench protect DIR`` needs). ``per_image=False``
    batches all photos through the generator: faster (about 2.5× on 2 CPU cores), reproducible only
    for the same batches.
    """

    def __init__(self, inner: Generator, size: tuple[int, int], per_image: bool = True, rounding: bool = False):
        super().__init__()
        self.inner, self.per_image, self.rounding = inner, per_image, bool(rounding)
        self.size = (int(size[0]), int(size[1]))
        self.name, self.kind, self.condition_names = inner.name, inner.kind, inner.condition_names
        self.inputs, self.stochastic = inner.inputs, inner.stochastic
        self.resolution = max(self.size)
        inner_pre = inner.preprocessing
        # what it reads: the whole photo; the inner record (crop, range) is applied inside
        self.preprocessing = Preprocessing(self.resolution, 1.0, inner_pre.alignment,
                                           source=f"the whole photo, then {inner.name}'s record inside")
        left, top, right, bottom = crop_box((self.size[1], self.size[0]), inner_pre.crop)
        self.box = (left, top, right, bottom)

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """The photo(s) (N, 3, H, W) as ``inner`` receives them: cropped and resized, in float."""
        if tuple(x.shape[-2:]) != self.size:
            raise InputError(f"{self.name} photo target: expected photos of {self.size[1]}x{self.size[0]} px, "
                             f"got {x.shape[-1]}x{x.shape[-2]}; batch only photos of the same size")
        left, top, right, bottom = self.box
        r = self.inner.resolution
        if not self.rounding:
            return resize_bilinear(x[..., top:bottom, left:right], (r, r))
        return grid_8bit(resize_bilinear(grid_8bit(x[..., top:bottom, left:right]), (r, r)))

    def footprint(self) -> torch.Tensor:
        """(H, W) bool: the pixels this generator reads (its crop square)."""
        m = torch.zeros(self.size, dtype=torch.bool)
        left, top, right, bottom = self.box
        m[top:bottom, left:right] = True
        return m

    def generate(self, x: torch.Tensor, cond, seed: int | None = None, chunk: int | None = None) -> torch.Tensor:
        return self.inner.generate(self.model_input(x), cond, seed=seed, chunk=chunk)

    def generate_many(self, x: torch.Tensor, cs, seed: int | None = None, chunk: int | None = None) -> torch.Tensor:
        xm = self.model_input(x)  # resize N photos once, not K × N
        if not self.per_image:
            return self.inner.generate_many(xm, cs, seed=seed, chunk=chunk)
        # one photo's K edits per forward: the result cannot depend on the batch the photo is in
        return torch.cat([self.inner.generate_many(xm[i:i + 1], cs[:, i:i + 1], seed=seed, chunk=chunk)
                          for i in range(xm.shape[0])], dim=1)

    def conditions(self, labels, n):
        return self.inner.conditions(labels, n)

    def unedited(self, labels, n):
        return self.inner.unedited(labels, n)


def photo_target(target: Target, size: tuple[int, int], per_image: bool = True, rounding: bool = False) -> Target:
    """``target`` with every member reading photos of ``size`` = (height, width) (see :class:`PhotoGenerator`)."""
    return Target([TargetMember(PhotoGenerator(m.generator, size, per_image, rounding), m.conditions, m.weight)
                   for m in target.members])


def grid_8bit(x: torch.Tensor) -> torch.Tensor:
    """``x`` in [-1, 1] rounded to the nearest of the 256 grey levels in the forward pass; the gradient
    passes straight through (the identity), as in BPDA / straight-through estimators."""
    q = torch.round((x.clamp(-1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0
    return x + (q - x).detach()


def first_order_ratio(defense, target: Target, photos: torch.Tensor, x_adv: torch.Tensor,
                      x: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) ‖Rᵀg‖₁ / ‖g‖₁: how much of the best first-order gain at the model input a perturbation on the
    photo can deliver, g the gradient of ``defense``'s loss at the model input ``x_adv`` and R the
    generator's crop + antialiased resize (photo → model input, a matrix applied and transposed by autograd).

    For the loss linearised at ``x_adv``, the best gain within ‖δ‖∞ ≤ ε at the model input is ε‖g‖₁
    (δ = ε·sign g); a perturbation δ_p on the photo reaches the model input as Rδ_p, so the best gain
    within ‖δ_p‖∞ ≤ ε is ε‖Rᵀg‖₁ (δ_p = ε·sign Rᵀg): the support functions of the two feasible sets in
    the direction g. R's rows are non-negative and sum to 1, so the ratio is at most 1. The 8-bit photo
    keeps only ⌊ε·127.5⌋ grey levels, a further factor ``grey_levels(ε) / (127.5 ε)``.

    ``target``: the model-input target (every member reading the photo the same way, as model-input mode
    requires); ``photos``: (N, 3, H, W) clean photos in [-1, 1], all of one size; ``x``: the clean model
    input the defense started from (default R·photos, its float read of the photos).
    """
    specs = {(m.generator.preprocessing.size, m.generator.preprocessing.crop) for m in target.members}
    if len(specs) != 1:
        raise InputError(f"first_order_ratio needs members that read the photo the same way, got {sorted(specs)}")
    pg = PhotoGenerator(target.members[0].generator, tuple(photos.shape[-2:]))
    photos = photos.detach()
    if x is None:
        with torch.no_grad():
            x = pg.model_input(photos)
    g = defense.gradient(x_adv.detach(), 0, x, target, defense.prepare(x, target)).detach()
    p = photos.clone().requires_grad_(True)
    (rt_g,) = torch.autograd.grad(pg.model_input(p), p, grad_outputs=g)
    return rt_g.abs().flatten(1).sum(1) / g.abs().flatten(1).sum(1).clamp_min(1e-30)


def quantise(photos: np.ndarray, x_adv: torch.Tensor, eps: float, footprint: torch.Tensor | None = None) -> np.ndarray:
    """Published photos (N, H, W, 3) uint8: ``photos`` plus δ = x_adv − from_uint8(photos) rounded to whole
    grey levels, clipped to ±⌊ε·127.5⌋ and to [0, 255]; outside ``footprint`` (H, W) nothing changes."""
    x = from_uint8(photos)
    step = torch.round((x_adv.detach().float().cpu() - x) * 127.5)
    levels = grey_levels(eps)
    step = step.clamp(-levels, levels)
    if footprint is not None:
        step = step * footprint.to(step.dtype)
    step = step.permute(0, 2, 3, 1).numpy().astype(np.int16)
    return np.clip(photos.astype(np.int16) + step, 0, 255).astype(np.uint8)


def publish_upsampled(img: Image.Image, x: torch.Tensor, x_adv: torch.Tensor, crop: float, eps: float) -> np.ndarray:
    """``model-input`` mode: the full-size photo (uint8 HWC) carrying x_adv − x (one image at model resolution).

    The perturbation is upsampled bilinearly to the photo's crop square, rounded to grey levels and
    clipped to ⌊ε·127.5⌋ of them, so the published file respects ε exactly.
    """
    box = crop_box(img.size, crop)
    side = box[2] - box[0]
    delta = F.interpolate((x_adv - x)[None].float().cpu(), size=(side, side), mode="bilinear", align_corners=False)[0]
    levels = grey_levels(eps)
    full = np.asarray(img, dtype=np.int16).copy()
    region = full[box[1]:box[3], box[0]:box[2]]
    step = np.clip(np.rint(delta.permute(1, 2, 0).numpy() * 127.5), -levels, levels).astype(np.int16)
    full[box[1]:box[3], box[0]:box[2]] = np.clip(region + step, 0, 255)
    return full.astype(np.uint8)


def _device(target: Target) -> torch.device:
    p = next(iter(target.members[0].generator.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _mean_disruption(out: list[torch.Tensor], ref: list[torch.Tensor], target: Target) -> torch.Tensor:
    """(N,) weighted mean over members of the mean (over edits, channels, pixels) squared difference."""
    total = sum(m.weight for m in target.members)
    return sum(m.weight * (o - r).pow(2).mean(dim=(0, 2, 3, 4)) for o, r, m in zip(out, ref, target.members)) / total


@dataclass
class Protected:
    """The outcome of :func:`protect_images` for a batch of photos, in the order given."""

    published: list[np.ndarray]  # uint8 HWC, the photo's own size: what is written to disk
    model_input_mse: torch.Tensor  # (N,) disruption the defense reached before rounding to 8 bits


MAX_PIXELS = 16 * 1024 * 1024  # photo pixels per native-mode defense call: 16 photos of 1024², 200 MB per float32 copy


def protect_images(defense, target: Target, imgs: list[Image.Image], keys: torch.Tensor | None = None,
                   mode: str = "native", max_pixels: int = MAX_PIXELS, per_image: bool = True,
                   progress: Callable[[int, int], None] | None = None, eps: float | None = None,
                   rounding: bool = False) -> Protected:
    """Protect RGB photos of any size and return them published (see the module's docstring for ``mode``).

    ``target`` holds the conditions of all ``len(imgs)`` photos (as ``Target.of(G, labels, len(imgs))``);
    ``keys`` (default 0…N−1) seed each photo's random start, so the result does not depend on the batch.
    In ``native`` mode photos of the same size are protected together, one batch per size, split so that
    a batch holds at most ``max_pixels`` photo pixels (at least one photo); ``per_image`` as in
    :class:`PhotoGenerator` (False: faster, but a photo's result may depend on its batch); ``progress``
    is handed to every ``defense.protect`` call (one call per size group in native mode). ``eps`` is the
    L∞ bound the published photo keeps (default the defense's ε; the runner passes 2, none, for a
    defense whose ε is not an RGB L∞ bound). ``rounding`` (native mode): the defense sees the photo and
    the model input rounded to 8 bits, with straight-through gradients (:class:`PhotoGenerator`).
    """
    kw = {"progress": progress} if progress is not None else {}
    check_mode(mode)
    n = len(imgs)
    keys = torch.arange(n) if keys is None else torch.as_tensor(keys)
    if keys.shape != (n,):
        raise InputError(f"keys must have one entry per photo ({n}), got shape {tuple(keys.shape)}")
    eps = defense.eps if eps is None else float(eps)
    dev = _device(target)
    published: list[np.ndarray | None] = [None] * n
    pre = torch.zeros(n)
    if mode == "model-input":
        specs = {(m.generator.preprocessing.size, m.generator.preprocessing.crop) for m in target.members}
        if len(specs) != 1:
            raise InputError("model-input mode protects one model input, but the target's generators read the photo "
                             f"differently ({sorted(specs)}); use --mode native")
        (res, crop), = specs
        x = from_uint8(np.stack([preprocess(im, res, crop) for im in imgs])).to(dev)
        x_adv = defense.protect(x, target, keys=keys, **kw)
        for j, im in enumerate(imgs):
            published[j] = publish_upsampled(im, x[j], x_adv[j], crop, eps)
        with torch.inference_mode():
            pre[:] = _mean_disruption(target.outputs(x_adv), target.outputs(x), target).cpu()
        return Protected(published, pre)
    groups: dict[tuple[int, int], list[int]] = {}
    for j, im in enumerate(imgs):
        groups.setdefault((im.size[1], im.size[0]), []).append(j)
    chunks = []
    for size, members in groups.items():
        per = max(1, max_pixels // (size[0] * size[1]))
        chunks += [(size, members[s:s + per]) for s in range(0, len(members), per)]
    for size, idx in chunks:
        photos = np.stack([np.asarray(imgs[j], dtype=np.uint8) for j in idx])
        x = from_uint8(photos).to(dev)
        sel = torch.tensor(idx)
        t = photo_target(target.subset(sel), size, per_image, rounding)
        x_adv = defense.protect(x, t, keys=keys[sel], **kw)
        foot = torch.stack([m.generator.footprint() for m in t.members]).any(dim=0)
        for j, arr in zip(idx, quantise(photos, x_adv, eps, foot)):
            published[j] = arr
        t = photo_target(target.subset(sel), size, per_image)  # before publishing: the float x_adv, unrounded
        with torch.inference_mode():
            pre[sel] = _mean_disruption(t.outputs(x_adv), t.outputs(x), t).cpu()
    return Protected(published, pre)


def published_disruption(target: Target, imgs: list[Image.Image], published: list[Image.Image | np.ndarray]) -> torch.Tensor:
    """(N,) MSE between each generator's outputs on the clean and on the published photos, each photo read
    with the generator's own official preprocessing (Pillow crop + bilinear resize of the 8-bit photo),
    averaged over its edits and weighted over the target's members — what a deepfaker gets."""
    pubs = [p if isinstance(p, Image.Image) else Image.fromarray(p) for p in published]
    if len(pubs) != len(imgs):
        raise InputError(f"published_disruption: {len(imgs)} photos but {len(pubs)} published ones")
    dev = _device(target)
    outs, refs = [], []
    with torch.inference_mode():
        for m in target.members:
            G = m.generator
            pre = G.preprocessing
            x = from_uint8(np.stack([pre.apply(im) for im in imgs])).to(dev)
            xp = from_uint8(np.stack([pre.apply(im) for im in pubs])).to(dev)
            cs = m.conditions.to(dev)
            refs.append(G.generate_many(x, cs))
            outs.append(G.generate_many(xp, cs))
    return _mean_disruption(outs, refs, target).cpu()
