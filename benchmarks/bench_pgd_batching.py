"""Time PGD on N images as one batch against a per-image loop with the same steps, in one run.

    python benchmarks/bench_pgd_batching.py --n 16 --steps 30 [--device cuda] [--checkpoint G.safetensors]

Uses pdbench's shipped StarGAN (or --checkpoint); timings only, so when neither is present it says so
and times the same architecture with its initial weights (no disruption number is printed).
"""

from __future__ import annotations

import argparse
import time

import torch

from pdbench.defenses import get_defense
from pdbench.errors import AssetMissingError
from pdbench.generators import Target
from pdbench.generators.stargan import StarGAN


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    try:
        G = StarGAN.from_assets(checkpoint=args.checkpoint, resolution=args.resolution if args.checkpoint else None, device=dev)
        weights = args.checkpoint or "pdbench StarGAN"
    except AssetMissingError as e:
        print(f"note: {e}\n      timing the architecture with initial weights instead")
        G = StarGAN(args.resolution).to(dev).requires_grad_(False)
        weights = "initial weights (timing only)"
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(args.n, 3, G.resolution, G.resolution, generator=g) * 2 - 1).to(dev)
    target = Target.of(G, None, args.n)
    pgd = get_defense("pgd", steps=args.steps)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    pgd.protect(x[:2], target.subset(slice(0, 2)))  # warm-up
    sync()
    t0 = time.perf_counter()
    xb = pgd.protect(x, target)
    sync()
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    xs = [pgd.protect(x[i:i + 1], target.subset(slice(i, i + 1)), keys=torch.tensor([i])) for i in range(args.n)]
    sync()
    t_loop = time.perf_counter() - t0
    d = (torch.cat(xs) - xb).abs()
    diff, frac = d.max().item(), d.gt(1e-5).float().mean().item()
    print(f"device={dev} threads={torch.get_num_threads()} weights={weights} N={args.n} conditions=5 steps={args.steps} res={G.resolution}")
    print(f"batched: {t_batch:.2f}s  per-image loop: {t_loop:.2f}s  speed-up: {t_loop / t_batch:.2f}x  "
          f"max|x_batch - x_loop|={diff:.2e} on {100 * frac:.2f}% of pixels")


if __name__ == "__main__":
    main()
