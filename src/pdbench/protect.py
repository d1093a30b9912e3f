"""Protect photos of any size: one file, or a whole folder in batches.

The perturbation is made and published by :mod:`pdbench.publish`: in the default ``native`` mode it
lives at the photo's own resolution and the defense optimises it through the generator's own crop and
antialiased resize; ``model-input`` mode (PDB's protocol) protects the generator's input and upsamples
the perturbation onto the crop square. Either way the rest of the photo is untouched, the result is
saved losslessly (PNG unless another lossless suffix is asked for) with the perturbation clipped to
⌊ε·127.5⌋ grey levels, and the saved file itself is read back to measure the disruption it causes.

A folder is protected in batches (one defense step costs one batched forward/backward); each output
is written atomically and photos whose output already exists are skipped, so an interrupted run
resumes where it stopped. Each photo's random start is keyed by its file name, so the result does not
depend on the batch it fell into.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data.folder import FaceFolder, _load_image, preprocess
from .defenses import get_defense
from .errors import InputError
from .generators import Target, get_generator
from .io import atomic_path
from .publish import grey_levels, protect_images
from .publish import publish_upsampled as publish  # noqa: F401  (model-input mode; benchmarks/transfer.py uses it)
from .tensors import from_uint8, resolve_device

LOSSLESS = {".png", ".bmp", ".tif", ".tiff", ".webp"}


def _setup(generator: str, checkpoint: str | None, defense: str, eps: float | None, steps: int | None,
           device: str | None = None):
    gkw = {"checkpoint": checkpoint} if checkpoint else {}
    G = get_generator(generator, device=resolve_device(device), **gkw)
    kw = {k: v for k, v in {"eps": eps, "steps": steps}.items() if v is not None}
    return G, get_defense(defense, **kw)


def check_lossless(dst: Path) -> None:
    if dst.suffix.lower() not in LOSSLESS:
        raise InputError(f"output {dst.name}: use a lossless format ({', '.join(sorted(LOSSLESS))}); "
                         "saving as JPEG would already weaken the protection")


def save_lossless(arr: np.ndarray, dst: Path) -> None:
    check_lossless(dst)
    with atomic_path(dst) as tmp:
        fmt = Image.registered_extensions()[dst.suffix.lower()]
        # WebP is lossy unless asked; the perturbation must survive the save exactly
        Image.fromarray(arr).save(tmp, format=fmt, **({"lossless": True, "exact": True} if fmt == "WEBP" else {}))


def protect_photo(photo: str, out: str, defense: str = "pgd", generator: str = "stargan", checkpoint: str | None = None,
                  eps: float | None = None, steps: int | None = None, device: str | None = None,
                  mode: str = "native") -> str:
    src, dst = Path(photo), Path(out)
    if not src.is_file():
        raise InputError(f"{src} does not exist")
    check_lossless(dst)
    img = _load_image(src)
    G, d = _setup(generator, checkpoint, defense, eps, steps, device)
    dev = next(G.parameters()).device
    res = G.resolution
    if min(img.size) < res // 2:
        raise InputError(f"{src.name} is {img.size[0]}x{img.size[1]}: too small for {generator} ({res} px); use a photo of at least {res // 2} px")
    x = from_uint8(preprocess(img, res, G.crop)).to(dev)
    target = Target.of(G, None, 1)
    done = protect_images(d, target, [img], mode=mode)
    protected = done.published[0]
    save_lossless(protected, dst)

    saved = _load_image(dst)
    x_saved = from_uint8(preprocess(saved, res, G.crop)).to(dev)
    orig = np.asarray(img, dtype=np.int16)
    linf = int(np.abs(np.asarray(saved, dtype=np.int16) - orig).max())
    mse_img = float(((np.asarray(saved, dtype=np.float64) - orig) ** 2).mean())
    psnr_img = 10 * math.log10(255.0**2 / mse_img) if mse_img > 0 else float("inf")
    with torch.inference_mode():
        clean, = target.outputs(x)
        out_saved, = target.outputs(x_saved)
    mse_saved = (out_saved - clean).pow(2).mean(dim=(2, 3, 4)).squeeze(1)
    mse_adv = float(done.model_input_mse[0])
    edits = ", ".join(f"{n} {v:.3f}" for n, v in zip(G.condition_names, mse_saved.tolist()))
    levels = grey_levels(d.eps)
    return (
        f"protected {src.name} -> {dst} with {defense} (eps {d.eps} on [-1,1] = {levels} grey levels) against {generator} ({res} px)\n"
        f"change to the photo: max {linf} grey levels, PSNR {psnr_img:.1f} dB over {img.size[0]}x{img.size[1]} px\n"
        f"generator output disruption, MSE(G(x), G(protected)) on the saved file: mean {float(mse_saved.mean()):.3f} "
        f"(per edit: {edits}); on the defense's own variable before publishing ({mode} mode): {mse_adv:.3f}; "
        f"published success threshold: MSE > 0.05"
    )


def protect_folder(folder: str, out: str, defense: str = "pgd", generator: str = "stargan", checkpoint: str | None = None,
                   eps: float | None = None, steps: int | None = None, batch_size: int = 32, suffix: str = ".png",
                   progress: bool = True, skip_bad: bool = False, device: str | None = None, mode: str = "native") -> str:
    """Protect every photo below ``folder`` into ``out`` (same relative paths, lossless ``suffix``).

    Unreadable or too small files stop the run with one error naming them, or with ``skip_bad`` are left
    out and listed in the report.
    """
    from tqdm import tqdm

    src, dst = Path(folder), Path(out)
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise InputError(f"output folder {dst} lies inside {src}: choose a folder outside the photos being protected")
    check_lossless(Path("protected" + suffix))
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    G, d = _setup(generator, checkpoint, defense, eps, steps, device)
    dev = next(G.parameters()).device
    res = G.resolution
    ds = FaceFolder(src, res, crop=G.crop, min_side=res // 2, strict=not skip_bad)
    names = ds.names(list(range(len(ds))))
    dests = [dst / Path(n).with_suffix(suffix) for n in names]
    seen: dict[Path, str] = {}
    for n, p in zip(names, dests):
        if p in seen:
            raise InputError(f"{seen[p]} and {n} would both be written to {p.name}: rename one of them")
        seen[p] = n
    todo = [i for i, p in enumerate(dests) if not p.exists()]
    mse_sum, done = 0.0, 0
    bar = tqdm(total=len(ds), initial=len(ds) - len(todo), desc=f"protect ({defense} vs {generator})",
               disable=not progress, dynamic_ncols=True)
    for start in range(0, len(todo), batch_size):
        idx = todo[start:start + batch_size]
        imgs = [_load_image(ds.files[i]) for i in idx]
        x = from_uint8(np.stack([preprocess(im, res, G.crop) for im in imgs])).to(dev)
        target = Target.of(G, None, len(idx))
        keys = torch.tensor([zlib.crc32(names[i].encode()) for i in idx])
        published = protect_images(d, target, imgs, keys=keys, mode=mode).published
        for j, i in enumerate(idx):
            save_lossless(published[j], dests[i])
        x_pub = from_uint8(np.stack([preprocess(_load_image(dests[i]), res, G.crop) for i in idx])).to(dev)  # read back
        with torch.inference_mode():
            clean, = target.outputs(x)
            prot, = target.outputs(x_pub)
        mse_sum += float((prot - clean).pow(2).mean(dim=(0, 2, 3, 4)).sum())
        done += len(idx)
        bar.update(len(idx))
    bar.close()
    levels = grey_levels(d.eps)
    skipped = len(ds) - len(todo)
    line = (f"protected {done} photo(s) from {src} into {dst} with {defense} (eps {d.eps} = {levels} grey levels) "
            f"against {generator} ({res} px)")
    if skipped:
        line += f"; {skipped} already protected there were kept"
    if ds.problems:
        line += f"\nleft out {len(ds.problems)} file(s): " + "; ".join(ds.problems)
    if done:
        line += f"\ngenerator output disruption on the published files, mean MSE(G(x), G(protected)): {mse_sum / done:.3f} " \
                f"(published success threshold: MSE > 0.05)"
    return line
