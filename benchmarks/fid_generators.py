"""FID of pdbench's shipped generators' outputs against real held-out CelebA faces (for the model cards).

    python benchmarks/fid_generators.py [--n 500] [--generators stargan attgan] [--device auto]

Per generator, 2n held-out faces (never trained on; seed 0), preprocessed as the generator's official
test code does, are split into two disjoint sets A and B of n. Reported (JSON), all at n vs n images:
``real_vs_real`` FID(A, B), the floor that the sample size alone gives; ``edited`` FID(A, G(B, c)) with
each image of B edited once, the official edits taken in turn; ``reconstruction`` FID(A, G(B, c_org)).
FID is biased upward at small n: compare only numbers measured at the same n.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pdbench.assets import resolve
from pdbench.generators import GENERATORS
from pdbench.tensors import resolve_device
from pdbench.train.evaluate import held_out_fid


def measure(name: str, n: int, device: torch.device, G=None) -> dict:
    """FIDs of generator ``name``'s shipped weights, or of the loaded generator ``G`` (e.g. a checkpoint)."""
    G = (G if G is not None else GENERATORS.get(name).from_assets()).to(device).eval()
    rep = held_out_fid(G, resolve("celeba-10k-89px", check=False), n, check_files=False)
    return {"generator": name, "resolution": G.resolution, **rep, "edits": list(G.condition_names)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500, help="images per set (2n held-out faces are used)")
    ap.add_argument("--generators", nargs="+", default=["stargan", "attgan"])
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    for name in args.generators:
        t = time.time()
        rep = measure(name, args.n, device)
        rep["seconds"] = round(time.time() - t)
        print(json.dumps(rep), flush=True)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
