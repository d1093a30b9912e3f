"""Judge every shipped attribute editor with the independent attribute classifier, one rule for all.

    python benchmarks/attribute_judge.py [--n 200] [--generators stargan,attgan,...] [--out docs/results/attribute-judge.json]

For each editor (its shipped 64 px weights): ``n`` held-out CelebA faces (the last 1,000 of
``celeba-10k-89px``, seed 0, as ``model_card.py`` selects them, prepared at the editor's own crop) and
:func:`pdbench.train.evaluate.attribute_success` with the classifier ``attr-classifier-celeba-64-pdbench``
(trained on real training faces only): per official edit, the faces it changes, the fraction read as the
target (success) and the same for the unedited output (baseline), the classifier's balanced accuracy on
that attribute on all 1,000 held-out real faces at that crop, and the edit's change where it acts; then the
proposed rule :func:`pdbench.train.evaluate.real_editor` (its verdict and reasons). Results are written
atomically to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.generators import GENERATORS
from pdbench.io import write_text
from pdbench.train.classifier import ATTRS, accuracy_report, attr_classifier
from pdbench.train.evaluate import RULE, attribute_success, real_editor

EDITORS = ("stargan", "attgan", "fpgan", "attentiongan", "relgan", "hisd")


def held_out(crop: float, resolution: int = 64):
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", resolution, attr_file=root / "list_attr_celeba_first20k.txt", check_files=False,
                    crop=crop)
    return ds, ds.split(1000)[1]


def judge_accuracy(classify, crop: float, cache: dict) -> dict:
    """The classifier's accuracy report on all 1,000 held-out real faces prepared at ``crop`` (cached)."""
    if crop not in cache:
        ds, test = held_out(crop)
        cache[crop] = accuracy_report(classify, ds.load(test), ds.labels(ATTRS, test))
    return cache[crop]


def judge(name: str, classify, n: int, cache: dict) -> dict:
    G = GENERATORS.get(name).from_assets()
    ds, test = held_out(G.crop, G.resolution)
    idx = ds.select(n, seed=0, pool=test)
    x, labels = ds.load(idx), ds.labels(G.attributes, idx)
    rep = attribute_success(G, x, labels, classify, judge_accuracy(classify, G.crop, cache))
    real, reasons = real_editor(rep)
    return {**rep, "crop": G.crop, "experimental": bool(getattr(G, "experimental", None)), "rule": {"real": real, "reasons": reasons}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--generators", default=",".join(EDITORS))
    ap.add_argument("--classifier", default=None, help="a C.safetensors of `pdbench train classifier` (default: the shipped one)")
    ap.add_argument("--out", default=None, help="write the results here (JSON)")
    args = ap.parse_args()
    classify = attr_classifier(args.classifier)
    cache: dict = {}
    out = {"classifier": args.classifier or "attr-classifier-celeba-64-pdbench", "n_images": args.n, "seed": 0,
           "rule": RULE, "editors": {}}
    for name in [g.strip() for g in args.generators.split(",") if g.strip()]:
        out["editors"][name] = judge(name, classify, args.n, cache)
        print(json.dumps({name: out["editors"][name]}, indent=1), flush=True)
    out["judge_held_out"] = {str(k): v for k, v in cache.items()}
    if args.out:
        write_text(args.out, json.dumps(out, indent=1) + "\n")
        print(f"written: {args.out}")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
