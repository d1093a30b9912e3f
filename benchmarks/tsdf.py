"""TSDF's claim (a): face-detector F1 at IoU 0.7 collapses on TSDF-protected photos, not under random noise.

    python benchmarks/tsdf.py [--train-n 16] [--n 16] [--alpha 0.005] [--epochs-found 8] [--epochs-tsdf 8]
                              [--epochs-paper 50] [--work runs/tsdf] [--json docs/results/tsdf.json]

The defaults are sized for a shared CPU (a few CPU minutes): 16 training faces, stage-1 step α 0.005 (the
papers: 128 faces, α 0.001 over ≥ 200 steps), 8 epochs of FOUND and of TSDF's code stage 1 (code: 30).

1. Universal δs are trained on ``--train-n`` faces of the training split of ``celeba-10k-89px`` against
   pdbench's StarGAN + AttGAN (64 px): FOUND, TSDF's stage 1 as its code runs it (``tsdf``) and as the
   paper states it (``tsdf-paper``). Each δ file is cached in ``--work`` (rerun to resume).
2. On ``--n`` held-out faces (never trained on) each protection is applied: none, uniform random noise of
   the same ε (±ε per pixel, the strongest random L∞ noise), FOUND, each TSDF stage-1 δ alone (the
   paper's τ = 0 interruption-only ablation) and each full TSDF (stage 2 poisons RetinaFace per image).
3. Reported per protection: F1 at IoU 0.7 (pdbench's ``detector_f1``: each detector's own faces on the
   clean photo are the truth) of RetinaFace (poisoned), MTCNN and YuNet (held out, never attacked); the
   interruption on each generator: L2mask (CMUA/TSDF's masked L2 with mask Σ_c |G(x) − x| > 0.5) and
   SRmask (L2mask > 0.05) over the official edits; and ‖δ‖∞.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense, project_linf
from pdbench.defenses.cmua import load_delta, resolve_members, save_delta, train_on_faces
from pdbench.defenses.tsdf import poison
from pdbench.faces.detectors import shared_detector
from pdbench.generators import Target
from pdbench.io import write_text
from pdbench.metrics.functional import cmua_mask
from pdbench.metrics.faces import f1_against

DETECTORS = ("retinaface", "mtcnn", "yunet")
GENERATORS = ("stargan", "attgan")
THRESHOLD = 0.05  # SRmask: L2mask > 0.05


def universal(name: str, epochs: int, train_n: int, alpha: float, members, work: Path) -> tuple[torch.Tensor, dict, float]:
    """The δ of defense ``name`` trained on train_n faces (cached in work), its metadata and minutes."""
    path = work / f"{name}-n{train_n}-e{epochs}-a{alpha}.safetensors"
    if path.exists():
        delta, meta = load_delta(path, name)
        return delta, meta, meta.get("minutes", float("nan"))
    d = get_defense(name, steps=epochs, train_n=train_n, alpha=alpha)
    t0 = time.time()
    delta, meta = train_on_faces(members, train_n, trainer=d.train_delta, method=d.delta_method, **d.train_kwargs())
    meta["minutes"] = round((time.time() - t0) / 60, 1)
    save_delta(path, delta, meta)
    return delta, meta, meta["minutes"]


def detector_f1(x: torch.Tensor, x_adv: torch.Tensor) -> dict:
    out = {}
    for name in DETECTORS:
        det = shared_detector(name)
        vals = [f1_against(t, f) for t, f in zip(det.detect(x), det.detect(x_adv))]
        vals = [v for v in vals if v == v]
        out[name] = sum(vals) / len(vals)
    return out


@torch.inference_mode()
def interruption(members, x, x_adv, ds, idx) -> dict:
    out = {}
    for g, _ in members:
        labels = ds.labels(g.attributes, idx)
        t = Target.of(g, labels, len(idx))
        clean, adv = t.outputs(x)[0], t.outputs(x_adv)[0]
        mask = cmua_mask(clean, x.unsqueeze(0).expand_as(clean))
        l2 = ((adv - clean) * mask).pow(2).mean(dim=(2, 3, 4))  # (K, N)
        out[g.name] = {"l2_mask": float(l2.mean()), "sr_mask": float((l2 > THRESHOLD).float().mean())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-n", type=int, default=16, help="training faces of each universal δ (papers: 128)")
    ap.add_argument("--n", type=int, default=16, help="held-out faces evaluated")
    ap.add_argument("--alpha", type=float, default=0.005, help="stage-1 sign step (papers: 0.001)")
    ap.add_argument("--epochs-found", type=int, default=8)
    ap.add_argument("--epochs-tsdf", type=int, default=8, help="tsdf (code) stage-1 epochs (code: 30)")
    ap.add_argument("--epochs-paper", type=int, default=50, help="tsdf-paper stage-1 iterations (paper: 50)")
    ap.add_argument("--work", default="runs/tsdf")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    members = resolve_members(list(GENERATORS))
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", 64, attr_file=root / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x = ds.load(idx)
    eps = 0.05

    deltas, minutes = {}, {}
    for name, epochs in (("found", args.epochs_found), ("tsdf", args.epochs_tsdf), ("tsdf-paper", args.epochs_paper)):
        deltas[name], _, minutes[name] = universal(name, epochs, args.train_n, args.alpha, members, work)
        print(f"{name}: δ trained in {minutes[name]} min", flush=True)

    g = torch.Generator().manual_seed(1)
    protections = {
        "none": lambda: x,
        "random ±ε": lambda: project_linf(x + eps * torch.sign(torch.rand(x.shape, generator=g) - 0.5), x, eps),
        "found": lambda: project_linf(x + deltas["found"], x, eps),
        "tsdf stage 1 only (τ = 0)": lambda: project_linf(x + deltas["tsdf"], x, eps),
        "tsdf (code: τ 0.04, 50 steps)": lambda: poison(x, deltas["tsdf"], tau=0.04, steps=50),
        "tsdf-paper stage 1 only (τ = 0)": lambda: project_linf(x + deltas["tsdf-paper"], x, eps),
        "tsdf-paper (τ 0.3, 20 steps)": lambda: poison(x, deltas["tsdf-paper"], tau=0.3, steps=20),
    }
    rows = {}
    for label, make in protections.items():
        t0 = time.time()
        x_adv = make()
        rows[label] = {"linf": float((x_adv - x).abs().max()), "f1": detector_f1(x, x_adv),
                       "interruption": interruption(members, x, x_adv, ds, idx), "seconds": round(time.time() - t0, 1)}
        print(label, json.dumps(rows[label]), flush=True)

    lines = ["| protection | ‖δ‖∞ | RetinaFace F1 (poisoned) ↓ | MTCNN F1 (held out) ↓ | YuNet F1 (held out) ↓ "
             "| StarGAN L2mask ↑ / SRmask | AttGAN L2mask ↑ / SRmask |", "|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        f, i = r["f1"], r["interruption"]
        lines.append(f"| {label} | {r['linf']:.3f} | {f['retinaface']:.2f} | {f['mtcnn']:.2f} | {f['yunet']:.2f} "
                     f"| {i['stargan']['l2_mask']:.3f} / {100 * i['stargan']['sr_mask']:.0f} % "
                     f"| {i['attgan']['l2_mask']:.3f} / {100 * i['attgan']['sr_mask']:.0f} % |")
    table = "\n".join(lines)
    result = {"n_test": len(idx), "train_n": args.train_n, "eps": eps, "iou": 0.7, "alpha": args.alpha,
              "epochs": {"found": args.epochs_found, "tsdf": args.epochs_tsdf, "tsdf-paper": args.epochs_paper},
              "train_minutes": minutes, "rows": rows, "table": table}
    print(table)
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
