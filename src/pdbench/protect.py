"""Protect one photo of any size.

The photo's centre square (the crop the generator would see) is resized to the generator's
resolution, protected there, and the perturbation is upsampled (bilinear, so it never exceeds ε)
and added to the full-resolution square; the rest of the photo is untouched. The result is saved
losslessly (PNG unless another lossless suffix is asked for) with the perturbation clipped to
⌊ε·127.5⌋ grey levels, and the saved file itself is read back to measure the disruption it causes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data.folder import _load_image, crop_box, preprocess
from .defenses import get_defense
from .errors import InputError
from .generators import Target, get_generator
from .io import atomic_path
from .tensors import from_uint8

LOSSLESS = {".png", ".bmp", ".tif", ".tiff", ".webp"}


def protect_photo(photo: str, out: str, defense: str = "pgd", generator: str = "stargan", checkpoint: str | None = None,
                  eps: float | None = None, steps: int | None = None) -> str:
    src, dst = Path(photo), Path(out)
    if not src.is_file():
        raise InputError(f"{src} does not exist")
    if dst.suffix.lower() not in LOSSLESS:
        raise InputError(f"output {dst.name}: use a lossless format ({', '.join(sorted(LOSSLESS))}); "
                         "saving as JPEG would already weaken the protection")
    img = _load_image(src)
    gkw = {"checkpoint": checkpoint} if checkpoint else {}
    G = get_generator(generator, **gkw)
    res = G.resolution
    if min(img.size) < res // 2:
        raise InputError(f"{src.name} is {img.size[0]}x{img.size[1]}: too small for {generator} ({res} px); use a photo of at least {res // 2} px")
    kw = {k: v for k, v in {"eps": eps, "steps": steps}.items() if v is not None}
    d = get_defense(defense, **kw)
    x = from_uint8(preprocess(img, res, G.crop))
    target = Target.of(G, None, 1)
    x_adv = d.protect(x, target)

    box = crop_box(img.size, G.crop)
    side = box[2] - box[0]
    delta = F.interpolate(x_adv - x, size=(side, side), mode="bilinear", align_corners=False)[0]
    levels = math.floor(d.eps * 127.5 + 1e-9)
    full = np.asarray(img, dtype=np.int16).copy()
    region = full[box[1]:box[3], box[0]:box[2]]
    step = np.clip(np.rint(delta.permute(1, 2, 0).numpy() * 127.5), -levels, levels).astype(np.int16)
    full[box[1]:box[3], box[0]:box[2]] = np.clip(region + step, 0, 255)
    protected = full.astype(np.uint8)
    with atomic_path(dst) as tmp:
        fmt = Image.registered_extensions()[dst.suffix.lower()]
        # WebP is lossy unless asked; the perturbation must survive the save exactly
        Image.fromarray(protected).save(tmp, format=fmt, **({"lossless": True, "exact": True} if fmt == "WEBP" else {}))

    saved = _load_image(dst)
    x_saved = from_uint8(preprocess(saved, res, G.crop))
    orig = np.asarray(img, dtype=np.int16)
    linf = int(np.abs(np.asarray(saved, dtype=np.int16) - orig).max())
    mse_img = float(((np.asarray(saved, dtype=np.float64) - orig) ** 2).mean())
    psnr_img = 10 * math.log10(255.0**2 / mse_img) if mse_img > 0 else float("inf")
    with torch.inference_mode():
        clean, = target.outputs(x)
        out_saved, = target.outputs(x_saved)
        out_adv, = target.outputs(x_adv)
    mse_saved = (out_saved - clean).pow(2).mean(dim=(2, 3, 4)).squeeze(1)
    mse_adv = float((out_adv - clean).pow(2).mean())
    edits = ", ".join(f"{n} {v:.3f}" for n, v in zip(G.condition_names, mse_saved.tolist()))
    return (
        f"protected {src.name} -> {dst} with {defense} (eps {d.eps} on [-1,1] = {levels} grey levels) against {generator} ({res} px)\n"
        f"change to the photo: max {linf} grey levels, PSNR {psnr_img:.1f} dB over {img.size[0]}x{img.size[1]} px\n"
        f"generator output disruption, MSE(G(x), G(protected)) on the saved file: mean {float(mse_saved.mean()):.3f} "
        f"(per edit: {edits}); at the model's own resolution before saving: {mse_adv:.3f}; "
        f"published success threshold: MSE > 0.05"
    )
