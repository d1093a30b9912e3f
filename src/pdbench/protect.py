"""Protect photos of any size: one file, or a whole folder in batches.

Loading (:func:`pdbench.data.folder.load_photo`): every file is decoded fully (a truncated file is
refused before any work), turned upright by its EXIF orientation, and converted to the 8-bit RGB view
that is protected — 16-bit greyscale is scaled (value/257), palettes expanded, premultiplied alpha
undone; floating-point images are refused. Sizes over ``max_pixels`` are refused from the header
(a decompression-bomb guard; ``--max-pixels`` allows more).

Protection (:mod:`pdbench.publish`): in the default ``native`` mode the perturbation lives at the
photo's own resolution and the defense optimises it through the generator's own crop and antialiased
resize; ``model-input`` mode (PDB's protocol) protects the generator's input and upsamples the
perturbation onto the crop square. Either way the rest of the photo is untouched and the perturbation
is clipped to ⌊ε·127.5⌋ grey levels. In native mode PGD runs on a cosine step schedule from α 0.02
(:data:`pdbench.publish.NATIVE_PGD`; PDB's constant α 0.01 in model-input mode). The result is saved losslessly, as 8-bit RGB
(RGBA with the source's alpha unchanged where the format keeps it), with the source's RGB colour
profile; EXIF (camera, location) is not copied. The saved file is read back and every number printed
about it — max change, PSNR and SSIM at full resolution, the generator's disruption — is measured on
what was written.

Nothing is ever written over an input (also not through a link or another path to the same file).
A folder is protected in batches; each output is written atomically, and ``pdbench-protect.json`` in
the output folder records the settings and which outputs are done, so an interrupted run resumes, and
a rerun with other settings is refused (``overwrite_changed`` redoes the photos instead). Each photo's
random start is keyed by its file name, so the result does not depend on the batch it fell into.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from . import __version__
from .data.folder import MAX_PIXELS, FaceFolder, Photo, crop_box, load_photo, preprocess
from .defenses import get_defense
from .defenses.base import EPS, takes_progress
from .errors import InputError, PdbenchError
from .generators import Target, get_generator
from .io import atomic_path, check_writable, clean_stale_parts, write_json
from .metrics.functional import ssim
from .publish import NATIVE_PGD, check_mode, grey_levels, protect_images
from .tensors import from_uint8, resolve_device

LOSSLESS = {".png", ".bmp", ".tif", ".tiff", ".webp"}
KEEPS_ALPHA = {"PNG", "WEBP", "TIFF"}  # Pillow formats that store an alpha channel (BMP here does not)
KEEPS_ICC = {"PNG", "WEBP", "TIFF"}
MANIFEST = "pdbench-protect.json"
FACE_CHECK_PX = 128  # the generator's crop is checked for a face at this size (cheap, and finds CelebA faces)


def _setup(generator: str, checkpoint: str | None, defense: str, eps: float | None, steps: int | None,
           device: str | None = None, mode: str = "native"):
    """The generator and the defense; in native mode PGD takes :data:`pdbench.publish.NATIVE_PGD` (its
    cosine step schedule reaches more through the photo's resize than PDB's constant step)."""
    gkw = {"checkpoint": checkpoint} if checkpoint else {}
    G = get_generator(generator, device=resolve_device(device), **gkw)
    kw = {k: v for k, v in {"eps": eps, "steps": steps}.items() if v is not None}
    if mode == "native" and defense == "pgd":
        kw = {**NATIVE_PGD, **kw}
        kw["alpha"] = NATIVE_PGD["alpha"] * kw.get("eps", EPS) / EPS  # α_max scales with ε
    return G, get_defense(defense, **kw)


def _protect_batch(imgs: list[Image.Image], G, d, keys: torch.Tensor | None,
                   progress: Callable[[int, int], None] | None = None, mode: str = "native"):
    """Protect 8-bit RGB photos in one batch (:func:`pdbench.publish.protect_images`): (published uint8 HWC
    arrays, model inputs x, per-photo disruption the defense reached before publishing)."""
    dev = next(G.parameters()).device
    x = from_uint8(np.stack([preprocess(im, G.resolution, G.crop) for im in imgs])).to(dev)
    target = Target.of(G, None, len(imgs))
    kw = {"progress": progress} if progress is not None and takes_progress(d) else {}
    done = protect_images(d, target, imgs, keys=keys, mode=mode, **kw)
    return done.published, x, done.model_input_mse


def check_lossless(dst: Path) -> None:
    if dst.suffix.lower() not in LOSSLESS:
        raise InputError(f"output {dst.name}: use a lossless format ({', '.join(sorted(LOSSLESS))}); "
                         "saving as JPEG would already weaken the protection")


def save_photo(arr: np.ndarray, dst: Path, photo: Photo | None = None) -> list[str]:
    """Save the protected RGB array losslessly and atomically, with the source's alpha and RGB colour
    profile where the format keeps them; returns notes on what was kept or dropped."""
    check_lossless(dst)
    fmt = Image.registered_extensions()[dst.suffix.lower()]
    img = Image.fromarray(arr)
    notes: list[str] = []
    kw: dict = {"lossless": True, "exact": True} if fmt == "WEBP" else {}  # WebP is lossy unless asked
    if photo is not None and photo.alpha is not None:
        if fmt in KEEPS_ALPHA:
            img = Image.merge("RGBA", (*img.split(), photo.alpha))
            notes.append("alpha channel kept unchanged")
        else:
            notes.append(f"alpha channel dropped ({dst.suffix} keeps no transparency here; use .png to keep it)")
    if photo is not None and photo.icc:
        if fmt in KEEPS_ICC:
            kw["icc_profile"] = photo.icc
            notes.append("ICC colour profile kept")
        else:
            notes.append(f"ICC colour profile dropped ({dst.suffix} cannot hold it; use .png to keep it)")
    with atomic_path(dst) as tmp:
        img.save(tmp, format=fmt, **kw)
    return notes


def save_lossless(arr: np.ndarray, dst: Path) -> None:
    save_photo(arr, dst)


def _unit(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(a)).permute(2, 0, 1)[None].double() / 255.0  # copies: decoded arrays are read-only


def full_res_change(a: np.ndarray, b: np.ndarray, rows: int = 512) -> dict:
    """Max change (grey levels), PSNR (dB, capped at 100) and SSIM of two uint8 HWC photos at full resolution.

    SSIM (Wang et al., pdbench.metrics.functional.ssim) is the standard one on intensities in [0, 1]
    (as scikit-image's on the 8-bit photo; SSIM is not shift-invariant, so the [-1, 1] tensors of the
    metrics would give another number). It is computed in strips of ``rows`` map rows that
    overlap by the window, so the result equals one whole-image SSIM without its memory.
    """
    if a.shape != b.shape:
        raise InputError(f"the saved photo reads back as {b.shape[1]}x{b.shape[0]}, not {a.shape[1]}x{a.shape[0]}")
    h = a.shape[0]
    linf, sq = 0, 0.0
    for y in range(0, h, rows):
        diff = a[y:y + rows].astype(np.int32) - b[y:y + rows]
        linf = max(linf, int(np.abs(diff).max()))
        sq += float(np.square(diff, dtype=np.float64).sum())
    mse = sq / a.size
    out = {"linf": linf, "psnr": min(100.0, 10 * math.log10(255.0**2 / mse)) if mse > 0 else 100.0, "ssim": None}
    win = 11  # ssim's Gaussian window (σ 1.5, truncated at 3.5 σ)
    if min(a.shape[:2]) >= win:
        total, count, y = 0.0, 0, 0
        while y + win - 1 < h:
            y1 = min(h, y + rows + win - 1)
            n = y1 - y - (win - 1)
            total += float(ssim(_unit(a[y:y1]), _unit(b[y:y1]), data_range=1.0)[0]) * n
            count += n
            y += rows
        out["ssim"] = total / count
    return out


def _read_back(photo: Photo, dst: Path) -> tuple[Photo, dict]:
    saved = load_photo(dst, max_pixels=None)
    change = full_res_change(np.asarray(photo.rgb), np.asarray(saved.rgb))
    if photo.alpha is not None and saved.alpha is not None:
        change["alpha_kept"] = bool(np.array_equal(np.asarray(photo.alpha), np.asarray(saved.alpha)))
    return saved, change


def face_found(imgs: list[Image.Image], crop: float) -> list[bool] | None:
    """Whether RetinaFace finds a face in each photo's generator crop (checked at 128 px); None when
    the detector's weights are not installed."""
    from .faces.detectors import shared_detector

    try:
        det = shared_detector("retinaface", "cpu")
    except PdbenchError:
        return None
    x = from_uint8(np.stack([preprocess(im, FACE_CHECK_PX, crop) for im in imgs]))
    return [bool(d) for d in det.detect(x)]


FACE_SKIPPED = "face check skipped: the RetinaFace weights are not installed (pdbench assets fetch retinaface-mobilenet0.25)"
NO_FACE = "protecting a photo without a face is unlikely to mean anything"


def _too_small(res: int) -> str:
    return (f"smaller than the generator's {res} px input: the perturbation is made on an enlarged copy and "
            "shrunk back, so the protection is unlikely to carry over")


def _steps_warning(d) -> list[str]:
    if getattr(d, "steps", 1) == 0:
        return ["warning: --steps 0: only the random start is applied (no optimisation), "
                "so the protection is unlikely to mean anything"]
    return []


def _bar(enabled: bool, total: int, desc: str, unit: str, initial: int = 0):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True,
                file=sys.stderr)


def _announce(enabled: bool, n: int, defense: str, d, generator: str, G) -> None:
    if enabled:
        print(f"protecting {n} photo(s) with {defense} ({d.steps} steps, eps {d.eps} = {grey_levels(d.eps)} grey levels) "
              f"against {generator} ({G.resolution} px) on {next(G.parameters()).device}…", file=sys.stderr, flush=True)


def _is_same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def protect_photo(photo: str, out: str, defense: str = "pgd", generator: str = "stargan", checkpoint: str | None = None,
                  eps: float | None = None, steps: int | None = None, device: str | None = None,
                  max_pixels: int | None = MAX_PIXELS, face_check: bool = True, progress: bool = False,
                  models: tuple | None = None, mode: str = "native") -> str:
    """Protect one photo into ``out`` and return the report (every figure measured on the saved file).

    ``models``: an already built ``(generator, defense)`` pair to use instead of building them from
    the names (the names are then only used in the report).
    """
    src, dst = Path(photo), Path(out)
    if not src.is_file():
        raise InputError(f"{src} does not exist" if not src.exists() else f"{src} is not a file")
    if dst.is_dir():
        raise InputError(f"output {dst} is a folder; give a file name such as {dst / (src.stem + '.png')}")
    check_lossless(dst)
    if dst.exists() and _is_same_file(src, dst):
        raise InputError(f"output {dst} is the input photo itself (the same file{' through a link' if dst.is_symlink() or src.is_symlink() else ''}): "
                         "it would be overwritten; choose another -o")
    check_mode(mode)
    if models is None:
        resolve_device(device)  # a bad --device is one line before anything is read
    check_writable(dst.parent if str(dst.parent) else Path("."), "output folder")
    clean_stale_parts(dst.parent, recursive=False, name=dst.name)
    pic = load_photo(src, max_pixels)
    img = pic.rgb
    G, d = models if models is not None else _setup(generator, checkpoint, defense, eps, steps, device, mode)
    dev = next(G.parameters()).device
    res = G.resolution
    if min(img.size) < res // 2:
        raise InputError(f"{src.name} is {img.size[0]}x{img.size[1]}: too small for {generator} ({res} px); use a photo of at least {res // 2} px")
    _announce(progress, 1, defense, d, generator, G)
    warn = _steps_warning(d)
    side = crop_box(img.size, G.crop)[2] - crop_box(img.size, G.crop)[0]
    if side < res:
        warn.append(f"warning: the square the generator sees is {side} px, " + _too_small(res))
    found = face_found([img], G.crop) if face_check else [True]
    if found is None:
        pic.notes.append(FACE_SKIPPED)
    elif not found[0]:
        warn.append(f"warning: no face found (RetinaFace) in the square the generator sees: {NO_FACE}")

    bar = _bar(progress and takes_progress(d) and d.steps > 0, d.steps, f"{defense} vs {generator}", "step")
    published, x, pre = _protect_batch([img], G, d, None, progress=lambda s, t: bar.update(1), mode=mode)
    bar.close()
    kept = save_photo(published[0], dst, pic)
    saved, change = _read_back(pic, dst)
    x_saved = from_uint8(preprocess(saved.rgb, res, G.crop)).to(dev)
    target = Target.of(G, None, 1)
    with torch.inference_mode():
        clean, = target.outputs(x)
        out_saved, = target.outputs(x_saved)
    mse_saved = (out_saved - clean).pow(2).mean(dim=(2, 3, 4)).squeeze(1)
    mse_adv = float(pre[0])
    edits = ", ".join(f"{n} {v:.3f}" for n, v in zip(G.condition_names, mse_saved.tolist()))
    levels = grey_levels(d.eps)
    w, h = img.size
    ssim_txt = f", SSIM {change['ssim']:.4f}" if change["ssim"] is not None else " (too small for SSIM)"
    notes = pic.notes + kept + (["alpha channel NOT kept: it reads back changed"] if change.get("alpha_kept") is False else [])
    lines = [
        f"protected {src.name} -> {dst} with {defense} (eps {d.eps} on [-1,1] = {levels} grey levels, {d.steps} steps) "
        f"against {generator} ({res} px)",
        f"change to the saved photo (read back, full resolution {w}x{h}): max {change['linf']} grey levels, "
        f"PSNR {change['psnr']:.1f} dB{ssim_txt}; " + (
            f"the perturbation was computed at {res}x{res} for the {side}x{side} square the generator sees (model-input mode)"
            if mode == "model-input" else f"the perturbation was optimised on the {side}x{side} square the generator sees, "
            f"through its resize to {res}x{res} (native mode)"),
        f"generator output disruption, MSE(G(x), G(protected)) on the saved file: mean {float(mse_saved.mean()):.3f} "
        f"(per edit: {edits}); on the defense's own variable before publishing ({mode} mode): {mse_adv:.3f}; "
        f"published success threshold: MSE > 0.05",
    ]
    if notes:
        lines.append("notes: " + "; ".join(notes))
    return "\n".join(lines + warn)


def _settings(defense: str, d, generator: str, G, suffix: str, mode: str = "native") -> dict:
    """What decides an output's pixels: recorded beside the outputs, compared on every rerun."""
    s = {"defense": defense, "generator": generator, "weights": G.fingerprint(), "resolution": G.resolution,
         "crop": G.crop, "format": suffix, "mode": mode, **d.config()}
    return json.loads(json.dumps(s))  # the form it takes in the file (tuples as lists, ...)


def _read_manifest(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
        if not isinstance(m.get("settings"), dict) or not isinstance(m.get("photos"), list):
            raise ValueError("no settings/photos")
        return m
    except (OSError, ValueError, AttributeError) as e:
        raise InputError(f"{path} is unreadable ({type(e).__name__}); choose another -o folder, "
                         "or pass --overwrite-changed to redo every photo there") from e


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new), key=lambda k: (k not in new, list(new).index(k) if k in new else 0))
    return ", ".join(f"{k} {old.get(k)!r} there, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k))


def _listing(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def protect_folder(folder: str, out: str, defense: str = "pgd", generator: str = "stargan", checkpoint: str | None = None,
                   eps: float | None = None, steps: int | None = None, batch_size: int = 32, suffix: str = ".png",
                   progress: bool = True, skip_bad: bool = False, device: str | None = None,
                   max_pixels: int | None = MAX_PIXELS, overwrite_changed: bool = False, face_check: bool = True,
                   models: tuple | None = None, mode: str = "native") -> str:
    """Protect every photo below ``folder`` into ``out`` (same relative paths, lossless ``suffix``).

    Unreadable (also truncated), too large or too small files stop the run with one error naming
    them, or with ``skip_bad`` are left out and listed in the report. Outputs already done with the
    same settings (``pdbench-protect.json``) are kept; other settings are refused unless
    ``overwrite_changed``, which redoes them.
    """
    src, dst = Path(folder), Path(out)
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise InputError(f"output folder {dst} lies inside {src}: choose a folder outside the photos being protected")
    check_lossless(Path("protected" + suffix))
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if max_pixels is not None and max_pixels < 1:
        raise InputError(f"--max-pixels must be at least 1, got {max_pixels}")
    check_mode(mode)
    if models is None:
        resolve_device(device)
    check_writable(dst)
    G, d = models if models is not None else _setup(generator, checkpoint, defense, eps, steps, device, mode)
    dev = next(G.parameters()).device
    res = G.resolution
    ds = FaceFolder(src, res, crop=G.crop, min_side=res // 2, strict=not skip_bad, decode=True, max_pixels=max_pixels)
    names = ds.names(list(range(len(ds))))
    dests = [dst / Path(n).with_suffix(suffix) for n in names]
    seen: dict[Path, str] = {}
    for n, p in zip(names, dests):
        if p in seen:
            raise InputError(f"{seen[p]} and {n} would both be written to {p.name}: rename one of them")
        seen[p] = n
    inputs = {}
    for f in ds.files:
        st = f.stat()
        inputs[(st.st_dev, st.st_ino)] = f
    for p in dests:
        if p.exists() and (p.stat().st_dev, p.stat().st_ino) in inputs:
            raise InputError(f"output {p} is the input photo {inputs[(p.stat().st_dev, p.stat().st_ino)]} (the same file "
                             "through a link): it would be overwritten; choose another -o folder")

    manifest_path = dst / MANIFEST
    settings = _settings(defense, d, generator, G, suffix, mode)
    rel = [p.relative_to(dst).as_posix() for p in dests]
    try:
        old = _read_manifest(manifest_path)
    except InputError:
        if not overwrite_changed:
            raise
        old = None
    redo = ""
    if old is None or (overwrite_changed and old["settings"] != settings):
        present = [r for r, p in zip(rel, dests) if p.exists()]
        if present and not overwrite_changed:
            raise InputError(f"{dst} already holds {len(present)} file(s) named like the outputs (e.g. {present[0]}) but no "
                             f"{MANIFEST} says how they were made; choose another -o folder, or pass --overwrite-changed "
                             "to redo them")
        done: set[str] = set()
        if present:
            redo = f"; {len(present)} earlier output(s) were redone (--overwrite-changed)"
    elif old["settings"] != settings:
        raise InputError(f"{dst} holds photos protected with other settings ({_differences(old['settings'], settings)}); "
                         "choose another -o folder, or pass --overwrite-changed to redo them with these settings")
    else:
        done = {r for r in old["photos"] if isinstance(r, str)}
    stale = clean_stale_parts(dst)
    done &= {r for r, p in zip(rel, dests) if p.exists()}
    manifest = {"pdbench": __version__, "settings": settings, "photos": sorted(done)}
    write_json(manifest_path, manifest)
    todo = [i for i in range(len(dests)) if rel[i] not in done]

    warn = _steps_warning(d)
    small, faceless, face_skipped = [], [], False
    notes: Counter = Counter()
    changes: list[dict] = []
    mse_sum, n_done, left_out = 0.0, 0, []
    batches = [todo[s:s + batch_size] for s in range(0, len(todo), batch_size)]
    per_step = takes_progress(d) and d.steps > 0
    _announce(progress and bool(todo), len(todo), defense, d, generator, G)
    bar = _bar(progress, len(batches) * d.steps if per_step else len(todo), f"{defense} vs {generator}",
               "step" if per_step else "photo")
    try:
        for b, idx in enumerate(batches):
            pics = []
            for i in idx:
                try:
                    pics.append((i, load_photo(ds.files[i], max_pixels)))
                except InputError as e:  # changed since the pre-scan
                    if not skip_bad:
                        raise
                    left_out.append(f"{names[i]}: {str(e).split(': ', 1)[-1].split(' (')[0]}")
            if not pics:
                continue
            idx = [i for i, _ in pics]
            imgs = [p.rgb for _, p in pics]
            if per_step:
                bar.set_description(f"{defense} vs {generator}, batch {b + 1}/{len(batches)}")
            keys = torch.tensor([zlib.crc32(names[i].encode()) for i in idx])
            published, x, _ = _protect_batch(imgs, G, d, keys, progress=lambda s, t: bar.update(1), mode=mode)
            readback = []
            for j, (i, pic) in enumerate(pics):
                kept = save_photo(published[j], dests[i], pic)
                saved, change = _read_back(pic, dests[i])
                if change.get("alpha_kept") is False:
                    kept.append("alpha channel NOT kept: it reads back changed")
                notes.update(pic.notes + kept)
                changes.append(change)
                readback.append(saved.rgb)
                side = crop_box(pic.size, G.crop)[2] - crop_box(pic.size, G.crop)[0]
                if side < res:
                    small.append(names[i])
            if face_check:
                found = face_found(imgs, G.crop)
                face_skipped |= found is None
                faceless += [names[i] for i, ok in zip(idx, found or []) if not ok]
            x_pub = from_uint8(np.stack([preprocess(im, res, G.crop) for im in readback])).to(dev)
            target = Target.of(G, None, len(idx))
            with torch.inference_mode():
                clean, = target.outputs(x)
                prot, = target.outputs(x_pub)
            mse_sum += float((prot - clean).pow(2).mean(dim=(0, 2, 3, 4)).sum())
            n_done += len(idx)
            done.update(rel[i] for i in idx)
            write_json(manifest_path, {**manifest, "photos": sorted(done)})
            if not per_step:
                bar.update(len(idx))
    finally:
        bar.close()

    levels = grey_levels(d.eps)
    kept_before = len(dests) - len(todo)
    lines = [f"protected {n_done} photo(s) from {src} into {dst} with {defense} (eps {d.eps} = {levels} grey levels, "
             f"{d.steps} steps) against {generator} ({res} px)"]
    if kept_before:
        lines[0] += f"; {kept_before} already protected with the same settings were kept"
    lines[0] += redo
    if changes:
        ps = [c["psnr"] for c in changes]
        ss = [c["ssim"] for c in changes if c["ssim"] is not None]
        line = (f"change to the saved photos (read back, full resolution): max {max(c['linf'] for c in changes)} grey levels; "
                f"PSNR mean {np.mean(ps):.1f} dB (lowest {min(ps):.1f})")
        if ss:
            line += f"; SSIM mean {np.mean(ss):.4f} (lowest {min(ss):.4f})"
        lines.append(line)
        lines.append(f"generator output disruption on the published files, mean MSE(G(x), G(protected)): "
                     f"{mse_sum / n_done:.3f} (published success threshold: MSE > 0.05)")
    problems = ds.problems + left_out
    if problems:
        lines.append(f"left out {len(problems)} file(s): " + "; ".join(problems))
    if ds.hidden:
        lines.append(f"skipped {len(ds.hidden)} hidden file(s): {_listing(ds.hidden)}")
    if stale:
        lines.append(f"removed {len(stale)} unfinished file(s) left by an interrupted run")
    if notes:
        lines.append("notes: " + "; ".join(f"{t} ({k} photo{'s' if k > 1 else ''})" for t, k in notes.items()))
    if face_skipped:
        lines.append("note: " + FACE_SKIPPED)
    lines += warn
    if small:
        lines.append(f"warning: {len(small)} photo(s) ({_listing(small)}) show the generator a square " + _too_small(res))
    if faceless:
        lines.append(f"warning: no face found (RetinaFace) in {len(faceless)} photo(s) ({_listing(faceless)}): {NO_FACE}")
    return "\n".join(lines)
