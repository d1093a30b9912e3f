"""What survives publishing? PGD against pdbench's StarGAN in both publish modes, measured on the photo.

    PDBENCH_ASSETS=../shared/assets python benchmarks/publish.py [--faces 16] [--hq 4] [--steps 30]
        [--json docs/results/publish.json] [--figure docs/images/publish-visibility.png]

Photo sets: ``--faces`` held-out CelebA faces of the quickstart (89×109, the last 1,000 of celeba-10k-89px,
their real attributes) and ``--hq`` 1024² photos (half CelebA-HQ, half FFHQ; no labels, StarGAN's
default edits). For each publish mode (:mod:`pdbench.publish`), and native mode once more with PGD's
cosine step schedule (α 0.02 → 0, ``schedule="cosine"``, the best native optimiser of
``benchmarks/publish_bound.py``):

* ``model_input``: the disruption the defense reached on its own variable, before rounding to 8 bits
  (for ``model-input`` mode that is the 64 px model input: PDB's number);
* ``published``: MSE(G(pre(photo)), G(pre(published))) where published = the 8-bit, losslessly saved
  photo and pre = the generator's official crop + Pillow bilinear resize: what a deepfaker gets;
* ``ratio_own`` = published / model_input, ``ratio_vs_pdb`` = published / model-input mode's model_input;
* the published photo after JPEG 75 / 95 of the *whole* photo (libjpeg, 4:2:0) and after a resize to a
  long side of 512 px (Lanczos; only photos larger than that), compared, as the runner does, with G of the
  unprocessed clean photo; ``clean_*`` gives the same processing of the clean photo as the floor;
* ``effective_amplitude``: mean |pre(published) − pre(photo)| / ε, the perturbation the generator
  actually receives at its input, as a fraction of the ε bound (PGD's own model-input δ is ≈ 1);
* ``first_order_bound``: the most of PDB's model-input gain a perturbation on the 8-bit photo can deliver
  to first order, grey_levels(ε)/(127.5 ε) · ‖Rᵀg‖₁/‖g‖₁ (:func:`pdbench.publish.first_order_ratio`), g the
  gradient of the defense's loss at the model input the generator receives from the published photo
  (``benchmarks/publish_bound.py`` follows it along the PGD trajectories: it hardly moves);
* PSNR / SSIM (the standard SSIM of the 8-bit images) of the published photo against the original at full resolution, and protect seconds per photo.

The figure shows a 1:1 256 px crop of the first 1024 px photo, left to right: original, published in
native mode, published in model-input mode, then the native and the model-input perturbation amplified
10× around grey.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.data.folder import _load_image
from pdbench.defenses import get_defense
from pdbench.generators import Target, get_generator
from pdbench.io import save_png, write_text
from pdbench.metrics.functional import psnr, ssim
from pdbench.publish import MODES, first_order_ratio, grey_levels, protect_images, published_disruption
from pdbench.tensors import from_uint8
from pdbench.transforms.jpeg import jpeg_roundtrip


def resize_long(img: Image.Image, side: int = 512) -> Image.Image | None:
    w, h = img.size
    if max(w, h) <= side:
        return None
    s = side / max(w, h)
    return img.resize((round(w * s), round(h * s)), Image.LANCZOS)


def photo_sets(n_faces: int, n_hq: int):
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", 64, attr_file=root / "list_attr_celeba_first20k.txt", check_files=False)
    _, test = ds.split(1000)
    idx = ds.select(n_faces, seed=0, pool=test)
    from pdbench.generators.stargan import ATTRS

    faces = ([_load_image(ds.files[i]) for i in idx], ds.labels(ATTRS, idx), ds.names(idx))
    hq_root, ff_root = resolve("celebahq-stargan-v2", check=False), resolve("ffhq-styleclip", check=False)
    files = sorted((hq_root / "src").rglob("*.jpg"))[: (n_hq + 1) // 2] + sorted(ff_root.glob("*.jpg"))[: n_hq // 2]
    hq = ([_load_image(p) for p in files], None, [p.name for p in files])
    return {"celeba-89px": faces, "hq-1024px": hq}


def mean(t: torch.Tensor) -> float:
    return float(t.float().mean())


def evaluate(G, defense, imgs, labels, mode: str) -> tuple[dict, list[np.ndarray]]:
    n = len(imgs)
    target = Target.of(G, labels, n)
    t0 = time.perf_counter()
    done = protect_images(defense, target, imgs, keys=torch.arange(n), mode=mode, per_image=False)
    secs = (time.perf_counter() - t0) / n
    pub = [Image.fromarray(a) for a in done.published]
    row = {"model_input": mean(done.model_input_mse), "published": mean(published_disruption(target, imgs, pub)),
           "seconds_per_photo": secs}
    row["ratio_own"] = row["published"] / row["model_input"]
    for q in (75, 95):
        jp = [jpeg_roundtrip(np.asarray(p), q) for p in pub]
        row[f"jpeg{q}"] = mean(published_disruption(target, imgs, jp))
        row[f"clean_jpeg{q}"] = mean(published_disruption(target, imgs, [jpeg_roundtrip(np.asarray(i), q) for i in imgs]))
    small = [resize_long(p) for p in pub]
    if all(s is not None for s in small):
        row["resize512"] = mean(published_disruption(target, imgs, small))
        row["clean_resize512"] = mean(published_disruption(target, imgs, [resize_long(i) for i in imgs]))
    else:
        row["resize512"] = row["clean_resize512"] = None
    pre = G.preprocessing
    seen = from_uint8(np.stack([pre.apply(p) for p in pub])) - from_uint8(np.stack([pre.apply(i) for i in imgs]))
    row["effective_amplitude"] = float(seen.abs().mean() / defense.eps)
    if len({i.size for i in imgs}) == 1:
        clean = from_uint8(np.stack([pre.apply(i) for i in imgs]))
        photos = from_uint8(np.stack([np.asarray(i) for i in imgs]))
        rho = first_order_ratio(defense, target, photos, clean + seen, clean)
        row["first_order_bound"] = grey_levels(defense.eps) / (127.5 * defense.eps) * mean(rho)
    else:
        row["first_order_bound"] = None
    a = torch.cat([from_uint8(np.asarray(i)) for i in imgs])
    b = torch.cat([from_uint8(p) for p in done.published])
    row["psnr_full"], row["ssim_full"] = mean(psnr(a, b)), mean(ssim(a, b))
    row["linf_grey_levels"] = int(max(np.abs(np.asarray(i, dtype=np.int16) - p).max() for i, p in zip(imgs, done.published)))
    return row, done.published


def figure(img: Image.Image, published: dict[str, np.ndarray], side: int = 256) -> np.ndarray:
    w, h = img.size
    top, left = h // 2 - side // 2, w // 2 - side // 2
    orig = np.asarray(img)[top:top + side, left:left + side]
    tiles = [orig]
    for mode in MODES:
        p = published[mode][top:top + side, left:left + side]
        tiles.append(p)
    for mode in MODES:
        p = published[mode][top:top + side, left:left + side].astype(np.int16)
        tiles.append(np.clip(128 + 10 * (p - orig.astype(np.int16)), 0, 255).astype(np.uint8))
    gap = np.full((side, 4, 3), 255, dtype=np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [gap, t]
    return np.concatenate(row, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=16)
    ap.add_argument("--hq", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--json", default=None)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    G = get_generator("stargan")
    defense = get_defense("pgd", steps=args.steps)
    # PGD with a cosine step schedule from α 0.02: the best native optimiser of benchmarks/publish_bound.py
    cosine = get_defense("pgd", steps=args.steps, alpha=0.02, schedule="cosine")
    runs = (("model-input", "model-input", defense), ("native", "native", defense), ("native, cosine", "native", cosine))
    result: dict = {"generator": "stargan", "defense": defense.config(), "native_cosine": cosine.config(), "rows": []}
    fig_pubs: dict[str, np.ndarray] = {}
    for set_name, (imgs, labels, names) in photo_sets(args.faces, args.hq).items():
        ref = None
        for label, mode, d in runs:
            row, pubs = evaluate(G, d, imgs, labels, mode)
            ref = row["model_input"] if mode == "model-input" else ref
            row["ratio_vs_pdb"] = row["published"] / ref
            result["rows"].append({"photos": set_name, "n": len(imgs), "mode": label, **row})
            if set_name.startswith("hq") and label == mode:
                fig_pubs[mode] = pubs[0]
                fig_img = imgs[0]
            print(set_name, label, json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}),
                  flush=True)
    head = ("| photos | mode | model input ↑ | published ↑ | published / PDB model input | first-order bound "
            "| JPEG 95 ↑ | JPEG 75 ↑ | 512 px ↑ | effective δ / ε | PSNR dB ↑ | SSIM ↑ | s / photo |")
    lines = [head, "|" + "---|" * 13]
    for r in result["rows"]:
        rs = "–" if r["resize512"] is None else f"{r['resize512']:.3f}"
        fb = "–" if r["first_order_bound"] is None else f"{100 * r['first_order_bound']:.0f} %"
        lines.append(f"| {r['photos']} ({r['n']}) | {r['mode']} | {r['model_input']:.3f} | {r['published']:.3f} "
                     f"| {100 * r['ratio_vs_pdb']:.0f} % | {fb} | {r['jpeg95']:.3f} | {r['jpeg75']:.3f} | {rs} | {r['effective_amplitude']:.2f} "
                     f"| {r['psnr_full']:.1f} | {r['ssim_full']:.3f} | {r['seconds_per_photo']:.2f} |")
    result["table"] = "\n".join(lines)
    print(result["table"])
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")
    if args.figure and fig_pubs:
        save_png(args.figure, figure(fig_img, fig_pubs))


if __name__ == "__main__":
    main()
