"""Transferability R_TE (PDB): does a perturbation made against one generator disrupt another?

    PDBENCH_ASSETS=../shared/assets python benchmarks/transfer.py [--defenses pgd,disrupting,fgsm] [--n 32]
                                                                  [--json docs/results/transfer.json]

For each source generator G_s and defense, held-out CelebA photos are protected against G_s and
*published* the way ``pdbench protect`` writes them (perturbation upsampled onto the full photo, 8-bit,
ε respected exactly). Every generator then reads the published photo with its own official crop —
StarGAN the whole 89 px square, AttGAN the central 170/178 — exactly as it reads any photo, and edits
it with its official conditions of the photo's true attributes. Disruption D is the MSE between its
output on the clean and on the published photo; PDB's ratio is

    R_TE(s → t) = D_{G_t}(x_adv) / D_{G_s}(x_adv).
"""

from __future__ import annotations

import argparse
import json
import zlib

import numpy as np
import torch
from PIL import Image

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.data.folder import _load_image, preprocess
from pdbench.defenses import get_defense
from pdbench.generators import Target, get_generator
from pdbench.io import write_text
from pdbench.publish import publish_upsampled as publish
from pdbench.tensors import from_uint8

GENERATORS = ("stargan", "attgan")


def disruption(G, imgs, published, labels) -> torch.Tensor:
    """Per-image MSE(G(x, c), G(x_pub, c)) averaged over G's official edits, each photo read with G's crop."""
    x = from_uint8(np.stack([preprocess(im, G.resolution, G.crop) for im in imgs]))
    xp = from_uint8(np.stack([preprocess(im, G.resolution, G.crop) for im in published]))
    cs = G.conditions(labels, len(imgs))
    with torch.inference_mode():
        return (G.generate_many(x, cs) - G.generate_many(xp, cs)).pow(2).mean(dim=(0, 2, 3, 4))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--defenses", default="pgd,disrupting,fgsm")
    ap.add_argument("--n", type=int, default=32, help="held-out faces")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    root = resolve("celeba-10k-89px", check=False)
    attrs = root / "list_attr_celeba_first20k.txt"
    ds = FaceFolder(root / "images", 64, attr_file=attrs, check_files=False)
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    models = {name: get_generator(name) for name in GENERATORS}
    result: dict = {"n_images": len(idx), "pairs": []}
    for src_name, Gs in models.items():
        for dname in args.defenses.split(","):
            defense = get_defense(dname, seed=zlib.crc32(dname.encode()) % 100_003)  # the runner's seeds (config seed 0)
            per_target = {t: [] for t in models}
            for s in range(0, len(idx), args.batch):
                part = idx[s:s + args.batch]
                imgs = [_load_image(ds.files[i]) for i in part]
                xs = from_uint8(np.stack([preprocess(im, Gs.resolution, Gs.crop) for im in imgs]))
                x_adv = defense.protect(xs, Target.of(Gs, ds.labels(Gs.attributes, part), len(part)),
                                        keys=torch.tensor(part))
                pub = [publish(im, xs[j], x_adv[j], Gs.crop, defense.eps) for j, im in enumerate(imgs)]
                pub_imgs = [Image.fromarray(a) for a in pub]
                for tname, Gt in models.items():
                    per_target[tname].append(disruption(Gt, imgs, pub_imgs, ds.labels(Gt.attributes, part)))
            d = {t: float(torch.cat(v).mean()) for t, v in per_target.items()}
            for tname in models:
                if tname != src_name:
                    result["pairs"].append({"source": src_name, "target": tname, "defense": dname,
                                            "D_source": d[src_name], "D_target": d[tname],
                                            "R_TE": d[tname] / d[src_name] if d[src_name] > 0 else None})
            print(f"{dname} against {src_name}: " + ", ".join(f"MSE on {t} {v:.4f}" for t, v in d.items()), flush=True)
    lines = ["| defense | source → target | D on source ↑ | D on target ↑ | R_TE ↑ |", "|---|---|---|---|---|"]
    for p in result["pairs"]:
        lines.append(f"| {p['defense']} | {p['source']} → {p['target']} | {p['D_source']:.4f} | {p['D_target']:.4f} "
                     f"| {p['R_TE']:.3f} |")
    result["table"] = "\n".join(lines)
    print(result["table"])
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
