"""Numbers and sample grid for the model card of a trained attribute editor, on held-out CelebA images.

    python benchmarks/model_card.py stargan|attgan [--checkpoint G.safetensors] [--n 200] [--grid docs/images/x.png]

Reports, per official edit, the mean |G(x, c) − G(x, c_org)| inside the hair and face regions
(:mod:`pdbench.train.evaluate`), the cycle reconstruction L1 |G(G(x, c), c_org) − x| and the
reconstruction L1 |G(x, c_org) − x|. Without --checkpoint, pdbench's shipped weights are measured.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.generators import GENERATORS
from pdbench.io import save_png
from pdbench.train.evaluate import edit_report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("generator", choices=["stargan", "attgan"])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--resolution", type=int, default=64, help="resolution of --checkpoint")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--grid", default=None, help="write a sample grid (8 held-out faces) to this PNG")
    args = ap.parse_args()
    G = GENERATORS.get(args.generator).from_assets(checkpoint=args.checkpoint,
                                                    resolution=args.resolution if args.checkpoint else None)
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", G.resolution, attr_file=root / "list_attr_celeba_first20k.txt", check_files=False,
                    crop=G.crop)
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x, labels = ds.load(idx), ds.labels(G.attributes, idx)
    rep = {"n_images": len(idx), **edit_report(G, x, labels)}
    print(json.dumps(rep, indent=1))
    if args.grid:
        if args.generator == "stargan":
            from pdbench.train.stargan import sample_grid
        else:
            from pdbench.train.attgan import sample_grid
        g = sample_grid(G.net, x[:8], labels[:8])
        save_png(args.grid, np.ascontiguousarray(g))
        print(f"grid: {args.grid}")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
