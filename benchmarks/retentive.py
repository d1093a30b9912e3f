"""Retentive's claims (its Tables 1–3 and inference time) on pdbench's StarGAN, against PGD at ε 0.05.

    PDBENCH_ASSETS=../shared/assets python benchmarks/retentive.py [--n 32] [--batch 8] [--pgd-steps 30]
                                                                   [--checkpoint PG.safetensors] [--json docs/results/retentive.json]

Held-out CelebA faces (``FaceFolder.split(1000)[1]``: images 9001–10000, never seen by the shipped U-Net
or StarGAN), read at 64 px with StarGAN's crop, edited with StarGAN's five official edits of their true
attributes. Methods, all at ε = 0.05 on [-1, 1]:

* ``none``: x itself;
* ``random``: x ± ε with a random sign per pixel (the same ε, no optimisation);
* ``pgd-retention``: the paper's PGD baseline, which nullifies (its Table 2: PGD brings L2(x_adv, G(x_adv))
  from 0.0435 down to 0.0039): sign-PGD minimising MSE(G(x_adv, c), x_adv) over all five edits at once
  (``composite`` with the ``retention`` objective), α 0.01, ``--pgd-steps`` iterations, no random start;
* ``pgd``: PDB's output-disruption PGD (pdbench's ``pgd``), for reference: it breaks rather than nullifies;
* ``retentive``: one pass of the shipped U-Net (or ``--checkpoint``).

Columns, as the paper's: L2 = mean squared error on the [-1, 1] scale (the paper's "L2": its Table 1
pairs L2 0.0008 with PSNR 36.98 dB), PSNR/SSIM on the [0, 1] images (data range 1, Gaussian σ 1.5),
LPIPS v0.1 AlexNet (the paper's LPIPS network); DSR = share of edits with L2(x_adv, G(x_adv)) ≤ 0.05 (the
paper's success rule). Inference time: Retentive and PGD protect each batch in turn (interleaved, so both
see the same machine load); the ratio is PGD's total over Retentive's.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.generators import Target, get_generator
from pdbench.io import write_text
from pdbench.metrics.functional import psnr, ssim
from pdbench.metrics.lpips import load_lpips
from pdbench.metrics.retention import RETENTION_SUCCESS

PAPER = {  # CelebA rows of the paper's Tables 1-3 (L2, PSNR, SSIM, LPIPS)
    "t1": {"pgd-retention": (0.0008, 36.9832, 0.9360, 0.0115), "retentive": (0.0002, 42.6844, 0.9887, 0.0012)},
    "t2": {"none": (0.0435, 21.5832, 0.8195, 0.0869), "pgd-retention": (0.0039, 30.2694, 0.8654, 0.0581),
           "retentive": (0.0018, 34.0527, 0.9594, 0.0306)},
    "t3": {"pgd-retention": (0.0032, 31.1604, 0.9052, 0.0481), "retentive": (0.0024, 32.8416, 0.9446, 0.0355)},
}
ORDER = ("none", "random", "pgd", "pgd-retention", "retentive")


def _pair_stats(a: torch.Tensor, b: torch.Tensor, lp) -> dict[str, torch.Tensor]:
    """Per image: L2 (MSE on [-1, 1]), PSNR, SSIM, LPIPS between image batches a and b."""
    with torch.inference_mode():
        return {"l2": (a - b).pow(2).flatten(1).mean(1), "psnr": psnr(a, b), "ssim": ssim(a, b), "lpips": lp(a, b)}


def _edits_stats(x_adv: torch.Tensor, outs: torch.Tensor, ref: torch.Tensor, lp) -> dict[str, torch.Tensor]:
    """Per image, mean over the K edits: the statistics of each output G(x_adv, c_k) against ref."""
    per = [_pair_stats(o, ref, lp) for o in outs]
    return {k: torch.stack([p[k] for p in per]).mean(0) for k in per[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="held-out faces")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--pgd-steps", type=int, default=30)
    ap.add_argument("--checkpoint", default=None, help="Retentive U-Net weights (default: the shipped ones)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    G = get_generator("stargan")
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", G.resolution, crop=G.crop, attr_file=root / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x_all, labels_all = ds.load(idx), ds.labels(G.attributes, idx)
    lp = load_lpips("alex")
    defenses = {
        "retentive": get_defense("retentive", checkpoint=args.checkpoint),
        "pgd-retention": get_defense("composite", objectives=["retention"], steps=args.pgd_steps,
                                     optimiser={"name": "sign-pgd", "random_start": False}),
        "pgd": get_defense("pgd", steps=args.pgd_steps),
    }
    secs = {k: 0.0 for k in defenses}
    acc: dict[str, dict[str, list]] = {m: {} for m in ORDER}
    for s in range(0, len(idx), args.batch):
        x, labels, keys = x_all[s:s + args.batch], labels_all[s:s + args.batch], torch.tensor(idx[s:s + args.batch])
        t = Target.of(G, labels, x.shape[0])
        g = torch.Generator().manual_seed(s)
        adv = {"none": x, "random": (x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1)}
        for name, d in defenses.items():  # interleaved: every batch, each method in turn
            t0 = time.perf_counter()
            adv[name] = d.protect(x, t, keys=keys)
            secs[name] += time.perf_counter() - t0
        for name in ORDER:
            xa = adv[name]
            assert float((xa - x).abs().max()) <= 0.05 + 1e-7, name
            with torch.inference_mode():
                outs = t.outputs(xa)[0].clamp(-1, 1)  # (K, n, 3, H, W)
            stats = {f"t1_{k}": v for k, v in _pair_stats(xa, x, lp).items()}  # Table 1: x vs x_adv
            stats.update({f"t2_{k}": v for k, v in _edits_stats(xa, outs, xa, lp).items()})  # Table 2: x_adv vs G(x_adv)
            stats.update({f"t3_{k}": v for k, v in _edits_stats(xa, outs, x, lp).items()})  # Table 3: x vs G(x_adv)
            per_edit = (outs - xa.unsqueeze(0)).pow(2).mean(dim=(2, 3, 4))  # (K, n)
            stats["dsr"] = (per_edit <= RETENTION_SUCCESS).float().mean(0)
            for k, v in stats.items():
                acc[name].setdefault(k, []).append(v)
        print(f"{s + x.shape[0]}/{len(idx)} faces", flush=True)
    rows = {m: {k: float(torch.cat(v).mean()) for k, v in acc[m].items()} for m in ORDER}
    n_img = len(idx)
    timing = {k: v / n_img for k, v in secs.items()}
    result = {"n_images": n_img, "faces": "celeba-10k-89px held out (9001-10000)", "generator": G.name,
              "generator_fingerprint": G.fingerprint(), "retentive_fingerprint": defenses["retentive"].fingerprint(),
              "pgd_steps": args.pgd_steps, "dsr_threshold": RETENTION_SUCCESS, "rows": rows,
              "sec_per_image": timing, "pgd_over_retentive_time": secs["pgd-retention"] / secs["retentive"],
              "paper": PAPER}
    lines = []
    for tab, title in (("t1", "Table 1: x vs x_adv"), ("t2", "Table 2: x_adv vs G(x_adv)"), ("t3", "Table 3: x vs G(x_adv)")):
        lines += [f"**{title}** (n = {n_img}; paper's CelebA numbers in brackets)", "",
                  "| method | L2 ↓ | PSNR ↑ | SSIM ↑ | LPIPS ↓ |" + (" DSR ↑ |" if tab == "t2" else ""),
                  "|---|---|---|---|---|" + ("---|" if tab == "t2" else "")]
        for m in ORDER:
            if tab != "t2" and m == "none":
                continue
            r, p = rows[m], PAPER[tab].get(m)
            cells = [f"{r[f'{tab}_l2']:.4f}", f"{r[f'{tab}_psnr']:.2f}", f"{r[f'{tab}_ssim']:.4f}", f"{r[f'{tab}_lpips']:.4f}"]
            if p:
                cells = [f"{c} ({q:.4f})" if i != 1 else f"{c} ({q:.2f})" for i, (c, q) in enumerate(zip(cells, p))]
            if tab == "t2":
                cells.append(f"{r['dsr']:.0%}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"Inference: Retentive {timing['retentive'] * 1000:.1f} ms/image, PGD-retention ({args.pgd_steps} steps) "
                 f"{timing['pgd-retention'] * 1000:.0f} ms/image: PGD takes {result['pgd_over_retentive_time']:.0f}× as long "
                 f"(paper: > 10×).")
    result["table"] = "\n".join(lines)
    print(result["table"])
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
