"""Transferability R_TE (PDB) between StarGAN and AttGAN: a thin wrapper of ``configs/transfer.yaml``.

    PDBENCH_ASSETS=../shared/assets python benchmarks/transfer.py [--config configs/transfer.yaml] [--n 16]
                                                                  [--out results/transfer] [--json docs/results/transfer.json]

It is ``pdbench run configs/transfer.yaml`` (the runner's ``transfer`` block: each perturbation made once
against its source, judged on every target with the target's own preprocessing; resumable), then writes
the R_TE matrix as JSON: per (defense, source → target) the black-box means on the target, the target's
own white-box means, the clipped ratios per axis and R_TE, their mean (PDB's
``transferability_evaluation.py``), plus the Markdown table of summary.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pdbench.bench import load_config, run
from pdbench.io import write_text
from pdbench.report.pdb import te_table

ROOT = Path(__file__).resolve().parents[1]


def matrix(meta: dict) -> dict:
    """The R_TE matrix of a run's results.json (``meta``) with the values each ratio rests on."""
    te = meta["aggregates"]["te"]
    wb = {(e["generator"], e["defense"]): e for e in meta["summary"] if e["setting"] == meta["transfer"]["setting"]}
    bb = {(e["source"], e["target"], e["defense"]): e for e in meta["transfer"]["summary"]
          if e["setting"] == meta["transfer"]["setting"]}
    pairs = []
    for p in te["pairs"]:
        b, w = bb[(p["source"], p["target"], p["defense"])], wb[(p["target"], p["defense"])]
        pairs.append({**p, "black_box": {a: b.get(a) for a in te["axes"]},
                      "white_box_target": {a: w.get(a) for a in te["axes"]},
                      "white_box_source": {a: wb[(p["source"], p["defense"])].get(a) for a in te["axes"]}})
    n = {g: gi["n_images"] for g, gi in meta["generators"].items()}
    return {"config": meta["name"], "n_images": n, "axes": te["axes"], "pairs": pairs, "te": te["rows"],
            "table": te_table(te)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "transfer.yaml"))
    ap.add_argument("--n", type=int, default=None, help="held-out faces (default: the config's)")
    ap.add_argument("--out", default=None, help="run folder (default: the config's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cfg = load_config(args.config)
    if args.n is not None:
        cfg.dataset["n"] = args.n
    if args.out is not None:
        cfg.out = args.out
    stats = run(cfg)
    meta = json.loads(Path(stats["json"]).read_text())
    result = matrix(meta)
    print(result["table"])
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
