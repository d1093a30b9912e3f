"""Numbers and sample grid for the model card of a trained attribute editor, on held-out CelebA images.

    python benchmarks/model_card.py stargan|attgan|attentiongan|fpgan|relgan|hisd [--checkpoint G.safetensors] [--n 200]
        [--fid-n 100] [--grid docs/images/x.png]

Reports, per official edit, the mean |G(x, c) − G(x, c_org)| inside the hair and face regions
(:mod:`pdbench.train.evaluate`), the cycle reconstruction L1 |G(G(x, c), c_org) − x| and the
reconstruction L1 |G(x, c_org) − x|; the identity preservation of each edit: the cosine of
MobileFaceNet embeddings (:func:`pdbench.train.evaluate.identity_report`, CelebA crop box) between the photo and its
unprotected deepfake G(x, c), mean over the images (1 = the same identity; the reconstruction and a
different held-out face are given for scale); the attribute accuracy of each hair-colour edit by a
classifier, the attribute head of pdbench's trained StarGAN critic (:func:`pdbench.train.evaluate.hair_accuracy`,
with its accuracy on the real faces beside it); the independent judge (``attribute_judge``:
:func:`pdbench.train.evaluate.attribute_success` with the classifier ``attr-classifier-celeba-64-pdbench``, trained on
real faces only, and the proposed rule :func:`pdbench.train.evaluate.real_editor`; ``attribute_judge.py``); for AttentionGAN, its attention mask per edit
(:func:`pdbench.train.evaluate.attention_report`: mean, in the hair and face regions, how far it
moves from the unedited mask, how far the content it lets through is from the photo); with ``--fid-n`` the FIDs of ``fid_generators.py``
(edits and reconstructions against real held-out faces, beside the real-vs-real floor at that n).
Without --checkpoint, pdbench's shipped weights are measured.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.generators import GENERATORS
from pdbench.generators.base import trained_resolution
from pdbench.io import save_png
from pdbench.train.classifier import attr_classifier
from pdbench.train.evaluate import (HAIR_COLOURS, attention_report, attribute_success, edit_report, hair_accuracy,
                                    identity_report, real_editor, real_hair_accuracy, stargan_classifier)

GRIDS = {"stargan": "pdbench.train.stargan", "attgan": "pdbench.train.attgan",
         "attentiongan": "pdbench.train.attentiongan", "fpgan": "pdbench.train.stargan",
         "relgan": "pdbench.train.relgan", "hisd": "pdbench.train.hisd"}  # sample_grid of the recipe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("generator", choices=sorted(GRIDS))
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--resolution", type=int, default=None,
                    help="resolution of --checkpoint (default: the one `pdbench train` recorded in it, else 64); its "
                         "width and depth are read from its tensors")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--fid-n", type=int, default=0, help="also FID at this n (fid_generators.py; 100 on the cards)")
    ap.add_argument("--grid", default=None, help="write a sample grid (8 held-out faces) to this PNG")
    args = ap.parse_args()
    res = (args.resolution or trained_resolution(args.checkpoint) or 64) if args.checkpoint else None
    G = GENERATORS.get(args.generator).from_assets(checkpoint=args.checkpoint, resolution=res)
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", G.resolution, attr_file=root / "list_attr_celeba_first20k.txt", check_files=False,
                    crop=G.crop)
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x, labels = ds.load(idx), ds.labels(G.attributes, idx)
    rep = {"generator": args.generator, "checkpoint": args.checkpoint, "n_images": len(idx), **edit_report(G, x, labels),
           "identity_cosine": identity_report(G, x, labels)}
    if hasattr(G, "attention"):  # an attention-blending generator (AttentionGAN): where its mask generates
        rep["attention"] = attention_report(G, x, labels)
    if G.resolution == 64:  # the classifier is 64 px
        clf = stargan_classifier()
        acc, count = real_hair_accuracy(x, ds.labels(HAIR_COLOURS, idx), clf)
        rep["hair_accuracy"] = {**hair_accuracy(G, x, labels, clf), "real": acc, "real_faces": count}
        from attribute_judge import judge_accuracy  # benchmarks/ is on the path when this script runs

        judge = attr_classifier()
        rep["attribute_judge"] = attribute_success(G, x, labels, judge, judge_accuracy(judge, G.crop, {}))
        rep["attribute_judge"]["rule"] = dict(zip(("real", "reasons"), real_editor(rep["attribute_judge"])))
    if args.fid_n:
        from fid_generators import measure  # benchmarks/ is on the path when this script runs

        rep["fid"] = measure(args.generator, args.fid_n, torch.device("cpu"), G)
    print(json.dumps(rep, indent=1))
    if args.grid:
        import importlib

        g = importlib.import_module(GRIDS[args.generator]).sample_grid(G.net, x[:8], labels[:8])
        save_png(args.grid, np.ascontiguousarray(g))
        print(f"grid: {args.grid}")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
