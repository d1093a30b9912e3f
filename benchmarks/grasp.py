"""GRASP's claim on pdbench's generators: at the same ε, ~100 % disruption with a far less visible perturbation.

    PDBENCH_ASSETS=../shared/assets python benchmarks/grasp.py [--n 16] [--defenses pgd,grasp,grasp-noproj]
                                                               [--generators stargan,attgan] [--json docs/results/grasp.json]

Held-out CelebA faces (``FaceFolder.split(1000)[1]``, read with each generator's own crop and size) are
protected against each generator with each defense at its pdbench defaults (ε 0.05 on [-1, 1]; seeds as the
runner gives them) and edited with the generator's official conditions of their true attributes.
Columns: DSR = share of faces with MSE(G(x), G(x_adv)) > 0.05 (PDB's threshold; outputs clamped to
[-1, 1], mean over the edits); the mean of that MSE; PSNR and SSIM of x_adv against x (SSIM on the
[0, 1] images with data range 1, Gaussian window σ 1.5: the scale the paper's 0.99 refers to); seconds
of protection per image on this machine.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.generators import Target, get_generator
from pdbench.io import write_text
from pdbench.metrics.functional import psnr, ssim

THRESHOLD = 0.05


def evaluate(G, dname: str, x: torch.Tensor, labels, keys: list[int], batch: int) -> dict:
    defense = get_defense(dname, seed=zlib.crc32(dname.encode()) % 100_003)  # the runner's seeds (config seed 0)
    mse, ps, ss, secs = [], [], [], 0.0
    for s in range(0, len(keys), batch):
        xs, part = x[s:s + batch], keys[s:s + batch]
        t = Target.of(G, None if labels is None else labels[s:s + batch], len(part))
        t0 = time.perf_counter()
        xa = defense.protect(xs, t, keys=torch.tensor(part))
        secs += time.perf_counter() - t0
        with torch.inference_mode():
            out_c, out_a = t.outputs(xs)[0].clamp(-1, 1), t.outputs(xa)[0].clamp(-1, 1)
        mse.append((out_a - out_c).pow(2).mean(dim=(0, 2, 3, 4)))
        ps.append(psnr(xa, xs))
        ss.append(ssim(xa, xs))  # the standard SSIM (of the 8-bit / [0, 1] images)
    mse, ps, ss = torch.cat(mse), torch.cat(ps), torch.cat(ss)
    return {"defense": dname, "generator": G.name, "n": len(keys), "dsr": float((mse > THRESHOLD).float().mean()),
            "mse": float(mse.mean()), "mse_min": float(mse.min()), "psnr": float(ps.mean()), "psnr_min": float(ps.min()),
            "ssim": float(ss.mean()), "sec_per_image": secs / len(keys), "config": defense.config()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--defenses", default="pgd,grasp,grasp-noproj")
    ap.add_argument("--generators", default="stargan,attgan")
    ap.add_argument("--n", type=int, default=16, help="held-out faces")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    root = resolve("celeba-10k-89px", check=False)
    result: dict = {"n_images": args.n, "threshold": THRESHOLD, "rows": []}
    for gname in args.generators.split(","):
        G = get_generator(gname)
        ds = FaceFolder(root / "images", G.resolution, crop=G.crop, attr_file=root / "list_attr_celeba_first20k.txt",
                        check_files=False)
        _, test = ds.split(1000)
        idx = ds.select(args.n, seed=0, pool=test)
        x, labels = ds.load(idx), ds.labels(G.attributes, idx)
        for dname in args.defenses.split(","):
            row = evaluate(G, dname, x, labels, idx, args.batch)
            result["rows"].append(row)
            print(f"{gname} {dname}: DSR {row['dsr']:.0%}, MSE {row['mse']:.4f}, PSNR {row['psnr']:.2f} dB, "
                  f"SSIM {row['ssim']:.4f}, {row['sec_per_image']:.2f} s/image", flush=True)
    lines = ["| generator | defense | DSR (MSE > 0.05) ↑ | output MSE ↑ | PSNR(x, x_adv) dB ↑ | SSIM(x, x_adv) ↑ | s / image |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['generator']} | {r['defense']} | {r['dsr']:.0%} | {r['mse']:.4f} | {r['psnr']:.2f} "
                     f"| {r['ssim']:.4f} | {r['sec_per_image']:.2f} |")
    result["table"] = "\n".join(lines)
    print(result["table"])
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
