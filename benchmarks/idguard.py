"""ID-Guard's claims on pdbench's StarGAN and AttGAN, against PGD, Disrupting and CMUA at ε 0.05.

    PDBENCH_ASSETS=../shared/assets python benchmarks/idguard.py [--n 8] [--batch 8] [--pgd-steps 10]
        [--checkpoint PG.safetensors] [--variants equal=runs/idg-equal/PG.safetensors kpi=…]
        [--cmua-n 32] [--cmua-delta cmua.safetensors] [--json docs/results/idguard.json]

Held-out CelebA faces (``FaceFolder.split(1000)[1]``: images 9001–10000, never seen by the shipped
ID-Guard network, CMUA's δ or the generators) at 64 px, edited with each target's official edits of their
true attributes (StarGAN 5, AttGAN 13). Methods, all at ε = 0.05 on [-1, 1]:

* ``random``: x ± ε with a random sign per pixel (the same ε, no optimisation);
* ``pgd``: PDB's PGD (random start, α 0.01, ``--pgd-steps``), white-box on each target separately;
* ``disrupting``: PDB's blur-evasion Disrupting (same budget), white-box on each target separately;
* ``cmua``: CMUA-Watermark's universal δ, trained once on ``--cmua-n`` *training* faces against both
  targets at once (official k 10, α 0.01, momentum 0.5; official 128 faces), one δ for every face;
* ``idguard``: one pass of the shipped ID-Guard network (or ``--checkpoint``): one δ for both targets;
* ``idguard-LABEL``: one pass of each ``--variants`` network (e.g. trained with ``--set dws=equal``).

Columns per target: L2-face (MSE of G(x) vs G(x_adv) inside the dlib facial mask, mean over edits),
ID sim (MobileFaceNet cosine of G(x) and G(x_adv); the paper uses ArcFace), DSR (share of edits with
L2-face > 0.05 and ID sim < 0.4: ``dsr_idguard``), PSNR of x_adv against x (dB, [0, 1] range), and
seconds per image for producing x_adv (interleaved per batch so every method sees the same load; CMUA's
one-off δ training is reported apart).

Balance across targets (the S-II claim), per method: r_k = L2-face_k / L2-face_k(PGD), the method's
strength on target k relative to a white-box attack on that target alone; **balance = min_k r_k / max_k r_k**
(1: equally strong on every target; a method that fits the easy target and ignores the hard one → 0),
with the worst-target strength min_k r_k beside it (a method can be balanced by being weak everywhere).
The per-target DSR min/max is reported too, undefined (null) where no target reaches any success.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.errors import InputError
from pdbench.generators import Target, get_generator
from pdbench.io import write_text
from pdbench.metrics import MetricInputs, get_metric
from pdbench.metrics.functional import psnr

TARGETS = ("stargan", "attgan")
BASE = ("random", "pgd", "disrupting", "cmua", "idguard")
PAPER = ("paper (256 px, ArcFace, 5 targets): ID-Guard's L2-face and DSR above PGD/Disrupting/CMUA on every target; "
         "S-II (KPI) more balanced across targets than equal weights")


def parse_variants(specs: list[str]) -> dict[str, str]:
    """``LABEL=PATH`` pairs → {label: path}; a one-line error for anything else."""
    out: dict[str, str] = {}
    for s in specs:
        label, sep, path = s.partition("=")
        if not sep or not label or not path or not label.replace("_", "").isalnum():
            raise InputError(f"--variants: {s!r} is not LABEL=PATH (e.g. equal=runs/idg-equal/PG.safetensors)")
        if label in out:
            raise InputError(f"--variants: the label {label!r} is given twice; give each network its own label")
        out[label] = path
    return out


def balance(rows: dict, method: str, ref: str = "pgd") -> dict:
    """Per-target strength relative to ``ref`` and its min/max (see the module docstring)."""
    rel = {t: rows[t][method]["l2_face"] / max(rows[t][ref]["l2_face"], 1e-12) for t in rows}
    dsr = [rows[t][method]["dsr_idguard"] for t in rows]
    return {"l2_face_vs_pgd": rel, "balance": min(rel.values()) / max(max(rel.values()), 1e-12),
            "worst_target": min(rel.values()), "dsr_min_over_max": min(dsr) / max(dsr) if max(dsr) > 0 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="held-out faces")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--pgd-steps", type=int, default=10)
    ap.add_argument("--checkpoint", default=None, help="ID-Guard weights (default: the shipped ones)")
    ap.add_argument("--variants", nargs="*", default=[], metavar="LABEL=PG.safetensors",
                    help="more ID-Guard networks, each a row idguard-LABEL and a line of the balance table")
    ap.add_argument("--cmua-n", type=int, default=32, help="CMUA training faces (official 128; batch = all of them)")
    ap.add_argument("--cmua-delta", default=None, help="CMUA δ file: loaded if it exists, else trained and written")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    variants = parse_variants(args.variants)
    order = BASE + tuple(f"idguard-{v}" for v in variants)
    torch.manual_seed(0)
    gens = {n: get_generator(n) for n in TARGETS}
    res = gens["stargan"].resolution
    root = resolve("celeba-10k-89px", check=False)
    attrs = sorted({a for g in gens.values() for a in g.attributes})
    ds = FaceFolder(root / "images", res, crop=gens["stargan"].crop, attr_file=root / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x_all, lab_all = ds.load(idx), ds.labels(tuple(attrs), idx)
    nets = {"idguard": get_defense("idguard", checkpoint=args.checkpoint)}
    nets.update({f"idguard-{v}": get_defense("idguard", checkpoint=p) for v, p in variants.items()})
    white = {"pgd": get_defense("pgd", steps=args.pgd_steps), "disrupting": get_defense("disrupting", steps=args.pgd_steps)}
    have_delta = args.cmua_delta is not None and Path(args.cmua_delta).is_file()
    cmua = get_defense("cmua", train_n=args.cmua_n, batch_size=args.cmua_n, delta=args.cmua_delta if have_delta else None,
                       save_to=None if have_delta else args.cmua_delta)
    x0 = x_all[:1]
    t0 = time.perf_counter()  # CMUA's one-off δ (trained on training faces, against both targets at once)
    cmua.load_network(x0, Target([m for n, g in gens.items()
                                  for m in Target.of(g, lab_all[:1, [attrs.index(a) for a in g.attributes]], 1).members]))
    cmua_train_s = None if have_delta else time.perf_counter() - t0
    cmua_n = int(cmua.meta.get("n_train", args.cmua_n))
    cmua_how = (f"loaded from {args.cmua_delta}, trained on {cmua_n} training faces" if have_delta
                else f"{cmua_n} training faces, {cmua_train_s:.0f} s to train")
    print(f"CMUA δ ready ({cmua_how})", flush=True)
    metrics = {k: get_metric(k) for k in ("l2_face", "id_sim", "dsr_idguard")}
    secs = {m: 0.0 for m in order}
    acc: dict = {t: {m: {} for m in order} for t in TARGETS}
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
        for name, d in {"cmua": cmua, **nets}.items():  # one δ for both targets
            t0 = time.perf_counter()
            xi = d.protect(x, both, keys=keys)
            secs[name] += time.perf_counter() - t0
            for n in TARGETS:
                adv[n][name] = xi
        for name, d in white.items():  # white-box on each target; time summed over the targets
            for n in TARGETS:
                t0 = time.perf_counter()
                adv[n][name] = d.protect(x, tg[n], keys=keys)
                secs[name] += time.perf_counter() - t0
        shared: dict = {}
        for n in TARGETS:
            with torch.inference_mode():
                clean = tg[n].outputs(x)[0].clamp(-1, 1)
            for m in order:
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
    rows = {n: {m: {k: float(torch.cat(v).nanmean()) for k, v in acc[n][m].items()} for m in order} for n in TARGETS}
    timing = {m: secs[m] / n_img for m in order}
    bal = {m: balance(rows, m) for m in order if m not in ("random", "pgd")}
    lines = [f"n = {n_img} held-out faces, 64 px, ε 0.05; PGD/Disrupting {args.pgd_steps} steps, white-box per target "
             f"(time summed over both targets); CMUA one universal δ ({cmua_how}; not in s/image); "
             f"ID-Guard one pass for both", "",
             "| target | method | L2-face ↑ | ID sim ↓ | DSR ↑ | PSNR(x, x_adv) dB | s/image |", "|---|---|---|---|---|---|---|"]
    for n in TARGETS:
        for m in order:
            r = rows[n][m]
            lines.append(f"| {n} | {m} | {r['l2_face']:.4f} | {r['id_sim']:.3f} | {r['dsr_idguard']:.0%} | "
                         f"{r['psnr']:.2f} | {timing[m]:.4f} |")
    lines += ["", "Balance (L2-face ÷ PGD's per target; balance = min/max over targets, worst = min):", "",
              "| method | " + " | ".join(f"{t} ÷ PGD" for t in TARGETS) + " | balance ↑ | worst target ↑ | DSR min/max |",
              "|---|" + "---|" * (len(TARGETS) + 3)]
    for m, b in bal.items():
        dsr = "—" if b["dsr_min_over_max"] is None else f"{b['dsr_min_over_max']:.2f}"
        lines.append(f"| {m} | " + " | ".join(f"{b['l2_face_vs_pgd'][t]:.3f}" for t in TARGETS)
                     + f" | {b['balance']:.3f} | {b['worst_target']:.3f} | {dsr} |")
    verdict: dict = {}
    for m in nets:
        verdict[m] = {n: {f"beats_{o}_{k}": rows[n][m][k] > rows[n][o][k] if k != "id_sim" else rows[n][m][k] < rows[n][o][k]
                          for o in ("random", "pgd", "disrupting", "cmua") for k in ("l2_face", "id_sim", "dsr_idguard")}
                      for n in TARGETS}
    if {"idguard-kpi", "idguard-equal"} <= set(bal):
        verdict["kpi_more_balanced_than_equal"] = bal["idguard-kpi"]["balance"] > bal["idguard-equal"]["balance"]
        verdict["kpi_worst_target_above_equal"] = bal["idguard-kpi"]["worst_target"] > bal["idguard-equal"]["worst_target"]
    speed = secs["pgd"] / max(secs["idguard"], 1e-9)
    lines += ["", f"Time: ID-Guard {timing['idguard'] * 1000:.1f} ms/image (both targets), PGD {timing['pgd'] * 1000:.0f} "
                  f"ms/image: PGD takes {speed:.0f}× as long."]
    result = {"n_images": n_img, "faces": "celeba-10k-89px held out (9001-10000)", "targets": list(TARGETS),
              "generator_fingerprints": {n: g.fingerprint() for n, g in gens.items()},
              "idguard_fingerprints": {m: d.fingerprint() for m, d in nets.items()},
              "variants": variants, "cmua": {"train_n": cmua_n, "train_s": cmua_train_s, "meta": cmua.meta,
                                             "fingerprint": cmua.fingerprint(), "delta_file": args.cmua_delta},
              "pgd_steps": args.pgd_steps, "rows": rows, "balance": bal, "sec_per_image": timing,
              "pgd_over_idguard_time": speed, "verdict": verdict, "paper": PAPER, "table": "\n".join(lines)}
    print(result["table"])
    print(json.dumps(verdict))
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
