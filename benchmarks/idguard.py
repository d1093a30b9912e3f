"""ID-Guard's claims on pdbench's StarGAN and AttGAN, against PGD and Disrupting at ε 0.05.

    PDBENCH_ASSETS=../shared/assets python benchmarks/idguard.py [--n 8] [--batch 8] [--pgd-steps 10]
                                                                 [--checkpoint PG.safetensors] [--json docs/results/idguard.json]

Held-out CelebA faces (``FaceFolder.split(1000)[1]``: images 9001–10000, never seen by the shipped
ID-Guard network or the generators) at 64 px, edited with each target's official edits of their true
attributes (StarGAN 5, AttGAN 13). Methods, all at ε = 0.05 on [-1, 1]:

* ``random``: x ± ε with a random sign per pixel (the same ε, no optimisation);
* ``pgd``: PDB's PGD (random start, α 0.01, ``--pgd-steps``), white-box on each target separately;
* ``disrupting``: PDB's blur-evasion Disrupting (same budget), white-box on each target separately;
* ``idguard``: one pass of the shipped ID-Guard network (or ``--checkpoint``): one δ for both targets.

CMUA is left out (its universal δ needs its own 128-image optimisation per target: not cheap here).
Columns per target: L2-face (MSE of G(x) vs G(x_adv) inside the dlib facial mask, mean over edits),
ID sim (MobileFaceNet cosine of G(x) and G(x_adv); the paper uses ArcFace), DSR (share of edits with
L2-face > 0.05 and ID sim < 0.4: ``dsr_idguard``), PSNR of x_adv against x (dB, [0, 1] range), and
seconds per image for producing x_adv (interleaved per batch so every method sees the same load).
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
from pdbench.metrics import MetricInputs, get_metric
from pdbench.metrics.functional import psnr

TARGETS = ("stargan", "attgan")
ORDER = ("random", "pgd", "disrupting", "idguard")
PAPER = "paper (256 px, ArcFace, 5 targets): ID-Guard's L2-face and DSR above PGD/Disrupting/CMUA on every target"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="held-out faces")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--pgd-steps", type=int, default=10)
    ap.add_argument("--checkpoint", default=None, help="ID-Guard weights (default: the shipped ones)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    gens = {n: get_generator(n) for n in TARGETS}
    res = gens["stargan"].resolution
    root = resolve("celeba-10k-89px", check=False)
    attrs = sorted({a for g in gens.values() for a in g.attributes})
    ds = FaceFolder(root / "images", res, crop=gens["stargan"].crop, attr_file=root / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x_all, lab_all = ds.load(idx), ds.labels(tuple(attrs), idx)
    idg = get_defense("idguard", checkpoint=args.checkpoint)
    white = {"pgd": get_defense("pgd", steps=args.pgd_steps), "disrupting": get_defense("disrupting", steps=args.pgd_steps)}
    metrics = {k: get_metric(k) for k in ("l2_face", "id_sim", "dsr_idguard")}
    secs = {m: 0.0 for m in ORDER}
    acc: dict = {t: {m: {} for m in ORDER} for t in TARGETS}
    for s in range(0, len(idx), args.batch):
        x, keys = x_all[s:s + args.batch], torch.tensor(idx[s:s + args.batch])
        lab = lab_all[s:s + args.batch]
        tg = {n: Target.of(g, lab[:, [attrs.index(a) for a in g.attributes]], x.shape[0]) for n, g in gens.items()}
        both = Target([m for t in tg.values() for m in t.members])
        g = torch.Generator().manual_seed(s)
        t0 = time.perf_counter()
        rnd = (x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1)
        secs["random"] += time.perf_counter() - t0
        adv = {n: {"random": rnd} for n in TARGETS}
        t0 = time.perf_counter()
        xi = idg.protect(x, both, keys=keys)
        secs["idguard"] += time.perf_counter() - t0
        for n in TARGETS:
            adv[n]["idguard"] = xi
        for name, d in white.items():  # white-box on each target; time summed over the targets
            for n in TARGETS:
                t0 = time.perf_counter()
                adv[n][name] = d.protect(x, tg[n], keys=keys)
                secs[name] += time.perf_counter() - t0
        shared: dict = {}
        for n in TARGETS:
            with torch.inference_mode():
                clean = tg[n].outputs(x)[0].clamp(-1, 1)
            for m in ORDER:
                xa = adv[n][m]
                assert float((xa - x).abs().max()) <= 0.05 + 1e-6, (n, m)
                with torch.inference_mode():
                    out = tg[n].outputs(xa)[0].clamp(-1, 1)
                inp = MetricInputs(x, xa, clean, out, x_memo=shared)
                vals = {k: f(inp) for k, f in metrics.items()}
                vals["psnr"] = psnr(xa, x)
                for k, v in vals.items():
                    acc[n][m].setdefault(k, []).append(v.float())
        print(f"{s + x.shape[0]}/{len(idx)} faces", flush=True)
    n_img = len(idx)
    rows = {n: {m: {k: float(torch.cat(v).nanmean()) for k, v in acc[n][m].items()} for m in ORDER} for n in TARGETS}
    timing = {m: secs[m] / n_img for m in ORDER}
    lines = [f"n = {n_img} held-out faces, 64 px, ε 0.05; PGD/Disrupting {args.pgd_steps} steps, white-box per target "
             f"(time summed over both targets); ID-Guard one pass for both", "",
             "| target | method | L2-face ↑ | ID sim ↓ | DSR ↑ | PSNR(x, x_adv) dB | s/image |", "|---|---|---|---|---|---|---|"]
    for n in TARGETS:
        for m in ORDER:
            r = rows[n][m]
            lines.append(f"| {n} | {m} | {r['l2_face']:.4f} | {r['id_sim']:.3f} | {r['dsr_idguard']:.0%} | "
                         f"{r['psnr']:.2f} | {timing[m]:.4f} |")
    verdict = {n: {"idguard_beats_random_l2face": rows[n]["idguard"]["l2_face"] > rows[n]["random"]["l2_face"],
                   "idguard_beats_pgd_l2face": rows[n]["idguard"]["l2_face"] > rows[n]["pgd"]["l2_face"],
                   "idguard_beats_disrupting_l2face": rows[n]["idguard"]["l2_face"] > rows[n]["disrupting"]["l2_face"],
                   "idguard_beats_pgd_dsr": rows[n]["idguard"]["dsr_idguard"] > rows[n]["pgd"]["dsr_idguard"]}
               for n in TARGETS}
    speed = secs["pgd"] / max(secs["idguard"], 1e-9)
    lines += ["", f"Time: ID-Guard {timing['idguard'] * 1000:.1f} ms/image (both targets), PGD {timing['pgd'] * 1000:.0f} "
                  f"ms/image: PGD takes {speed:.0f}× as long."]
    result = {"n_images": n_img, "faces": "celeba-10k-89px held out (9001-10000)", "targets": list(TARGETS),
              "generator_fingerprints": {n: g.fingerprint() for n, g in gens.items()},
              "idguard_fingerprint": idg.fingerprint(), "pgd_steps": args.pgd_steps, "rows": rows,
              "sec_per_image": timing, "pgd_over_idguard_time": speed, "verdict": verdict, "paper": PAPER,
              "table": "\n".join(lines)}
    print(result["table"])
    print(json.dumps(verdict))
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
