"""Is pdbench's SimSwap a real face swapper? Held-out pairs under both identity judges.

    PDBENCH_ASSETS=../shared/assets python benchmarks/simswap.py [--pairs 120] [--checkpoint G.safetensors]
                                                                 [--json docs/results/simswap.json]

Pairs: held-out CelebA photos (``FaceFolder.split(1000)[1]``: images 9001–10000, never trained on) at
64 px; ``--pairs`` (source, target) pairs of *different* people (CelebA identity labels), drawn with a
fixed seed. The swap is ``G.generate(target, Condition(reference=source, role="target"))``.

The 80 % rule (issue 13): a swapper counts as real only if its output is closer in identity to the source
than to the target for ≥ 80 % of pairs under *both* judges (:func:`pdbench.metrics.swap.swap_identity`:
MobileFaceNet on RetinaFace-aligned faces, and dlib's ResNet, which SimSwap never trained against) while
the target's pose (landmark NME) and background (L1 outside the face) are kept. Rows:

* ``simswap``: the swap;
* ``target`` (baseline): the target photo itself as the "output" (rate 0 by construction of a swap that
  does nothing; its keep numbers are 0);
* ``reconstruction``: G(target, the target's own identity): what the network does without a swap
  (background L1 and NME of a network that only reconstructs).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.generators import Condition, get_generator
from pdbench.io import write_text
from pdbench.metrics.swap import swap_report
from pdbench.train.simswap import IDENTITY_FILE, read_identities

RULE = 0.8


def held_out_pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]:
    """n (source, target) pairs of different people from CelebA's held-out images, at 64 px."""
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", 64)
    _, test = ds.split(1000)
    ids = read_identities(root / IDENTITY_FILE)
    names = ds.names(test)
    person = [ids[Path(nm).stem] for nm in names]
    rng = random.Random(seed)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < n:
        a, b = rng.sample(range(len(test)), 2)
        if person[a] != person[b]:
            pairs.append((a, b))
    src = ds.load([test[a] for a, _ in pairs])
    tgt = ds.load([test[b] for _, b in pairs])
    return src, tgt, [(names[a], names[b]) for a, b in pairs]


def evaluate(G, pairs: int = 120, seed: int = 0) -> dict:
    src, tgt, named = held_out_pairs(pairs, seed)
    with torch.inference_mode():
        out = G.generate(tgt, Condition(reference=src, role="target")).clamp(-1, 1)
        rec = G.generate(tgt, Condition(reference=tgt, role="target")).clamp(-1, 1)
    rows = {"simswap": swap_report(out, src, tgt), "target": swap_report(tgt, src, tgt),
            "reconstruction": swap_report(rec, src, tgt)}
    rows["reconstruction"]["l1_to_target"] = round(float((rec - tgt).abs().mean()), 4)
    rows["simswap"]["l1_to_target"] = round(float((out - tgt).abs().mean()), 4)
    ident = rows["simswap"]["identity"]
    real = all(ident[j]["closer_to_source"] >= RULE for j in ident)
    return {"pairs": pairs, "seed": seed, "weights": G.weights, "fingerprint": G.fingerprint(), "rule": RULE,
            "real_swapper": bool(real), "rows": rows, "first_pairs": named[:5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default=None, help="SimSwap weights (default: the shipped ones)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    G = get_generator("simswap", checkpoint=args.checkpoint, resolution=64,
                      preprocessing="simswap-celeba-64-pdbench" if args.checkpoint else None)
    res = evaluate(G, args.pairs, args.seed)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
