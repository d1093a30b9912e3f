"""Does a defense survive an attacker who retrains the generator on protected photos? (TSDF, §IV-D)

    python benchmarks/persistence.py [--defense pgd] [--steps 10] [--train-photos 1500] [--iters 2000] [--n 100]
                                     [--work runs/persistence] [--json docs/results/persistence.json]

1. The defender publishes: the first ``--train-photos`` photos of the training split of
   ``celeba-10k-89px`` are protected with ``--defense`` against pdbench's StarGAN exactly as
   ``pdbench protect <folder>`` does it (no attribute labels: a person protecting photos does not know
   which edit will be attempted; published as lossless uint8 files, perturbation keyed by file name).
2. The attacker retrains: pdbench's StarGAN, generator and critic (``pdbench train --init``), is
   fine-tuned with StarGAN's official recipe for ``--iters`` iterations on those protected photos.
   A control fine-tunes it identically on the clean photos, so that what fine-tuning does by itself is
   not mistaken for adaptation to the perturbation.
3. On ``--n`` held-out faces (never trained on), for the original, the control and the retrained model:
   * *published* perturbations, made against the original model without labels as above (what the
     defender could do before the attacker retrained), applied at the model's 64 px input and rounded to
     8 bits as PDB evaluates (no resampling onto the 89 px photo, which smooths a perturbation and weakens
     it): MSE(M(x, c), M(x_adv, c)) and the success rate (MSE > 0.05, PDB's threshold) over every image and
     the five official edits of its true attributes;
   * *re-crafted* perturbations, white-box against that model (how attackable it still is);
   * the model's own quality: reconstruction L1 |M(x, c_org) − x| and the mean edit strength.

Every stage is cached in ``--work`` (protected folder, training runs) and resumes when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from pathlib import Path

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.generators import Target, get_generator
from pdbench.generators.stargan import StarGAN
from pdbench.io import write_text
from pdbench.protect import protect_folder
from pdbench.tensors import from_uint8, to_uint8
from pdbench.train.evaluate import edit_report
from pdbench.train.stargan import StarGANRecipe, StarGANTrainer

ASSET = "stargan-celeba-64-pdbench"
THRESHOLD = 0.05


def training_folder(root: Path, work: Path, holdout: int, n: int) -> Path:
    """A folder of links to the first ``n`` photos of the training split (all but the last ``holdout``)."""
    ds = FaceFolder(root / "images", 64, check_files=False)
    train, _ = ds.split(holdout)
    dst = work / f"clean-{n}"
    dst.mkdir(parents=True, exist_ok=True)
    for i in train[:n]:
        link = dst / ds.files[i].name
        if not link.exists():
            os.symlink(ds.files[i].resolve(), link)
    return dst


def fine_tune(data: Path, attrs: Path, out: Path, iters: int, width: int) -> Path:
    """Fine-tune the shipped StarGAN (conv_dim ``width``) and its critic on ``data``; resumes ``out``."""
    recipe = StarGANRecipe(resolution=64, g_conv_dim=width, d_conv_dim=width, iters=iters, decay_iters=iters // 2,
                           holdout=0)
    trainer = StarGANTrainer(str(data), str(attrs), str(out), recipe)
    if (out / "state.pt").exists():
        trainer.resume()
    else:
        trainer.init_from(ASSET)
    if trainer.step < iters:
        trainer.train()
    return out / "G.safetensors"


def disruption(G, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor) -> dict:
    cs = G.conditions(labels, x.shape[0])
    with torch.inference_mode():
        a = G.generate_many(x, cs)
        b = G.generate_many(x_adv, cs)
    mse = (a - b).pow(2).mean(dim=(2, 3, 4))  # (K edits, N)
    return {"mse": float(mse.mean()), "success": float((mse > THRESHOLD).float().mean())}


def published(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """x_adv as a saved 8-bit file would hold it."""
    return from_uint8(to_uint8(x_adv))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--defense", default="pgd")
    ap.add_argument("--steps", type=int, default=10, help="defense iterations (published photos and test photos alike)")
    ap.add_argument("--train-photos", type=int, default=1500, help="protected photos the attacker retrains on")
    ap.add_argument("--iters", type=int, default=2000, help="fine-tuning iterations (critic steps; 1/5 are generator steps)")
    ap.add_argument("--n", type=int, default=100, help="held-out faces evaluated")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--work", default="runs/persistence")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    torch.manual_seed(0)
    root = resolve("celeba-10k-89px", check=False)
    attrs = root / "list_attr_celeba_first20k.txt"
    work = Path(args.work)
    t0 = time.time()

    clean_dir = training_folder(root, work, 1000, args.train_photos)
    tag = f"{args.defense}{args.steps}-{args.train_photos}"
    prot_dir = work / f"protected-{tag}"
    print(protect_folder(str(clean_dir), str(prot_dir), defense=args.defense, generator="stargan", steps=args.steps,
                         batch_size=64), flush=True)
    t_protect = time.time() - t0
    G0 = get_generator("stargan")
    width = G0.net.main[0].out_channels
    runs = {"control (clean photos)": fine_tune(clean_dir, attrs, work / f"ft-clean-{args.train_photos}-{args.iters}",
                                                args.iters, width),
            "retrained (protected photos)": fine_tune(prot_dir, attrs, work / f"ft-{tag}-{args.iters}", args.iters, width)}
    t_train = time.time() - t0 - t_protect

    models = {"original": G0, **{k: StarGAN.from_assets(checkpoint=str(v), resolution=64) for k, v in runs.items()}}
    ds = FaceFolder(root / "images", 64, attr_file=attrs, check_files=False)
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    defense = get_defense(args.defense, steps=args.steps)
    rows = {name: {"published": [], "recrafted": [], "quality": []} for name in models}
    for s in range(0, len(idx), args.batch):
        part = idx[s:s + args.batch]
        x, labels = ds.load(part), ds.labels(G0.attributes, part)
        keys = torch.tensor([zlib.crc32(n.encode()) for n in ds.names(part)])
        x_pub = published(x, defense.protect(x, Target.of(G0, None, len(part)), keys=keys))
        for name, G in models.items():
            rows[name]["published"].append((len(part), disruption(G, x, x_pub, labels)))
            own = x_pub if G is G0 else published(x, defense.protect(x, Target.of(G, None, len(part)), keys=keys))
            rows[name]["recrafted"].append((len(part), disruption(G, x, own, labels)))
            rep = edit_report(G, x, labels)
            strength = sum((e["hair"] + e["face"]) / 2 for e in rep["edits"].values()) / len(rep["edits"])
            rows[name]["quality"].append((len(part), {"self_l1": rep["self_l1"], "edit_strength": strength}))

    def mean(parts):
        n = sum(k for k, _ in parts)
        return {key: sum(k * v[key] for k, v in parts) / n for key in parts[0][1]}

    result = {
        "defense": args.defense, "eps": defense.eps, "steps": args.steps, "iters": args.iters, "n_test": len(idx),
        "train_photos": len(os.listdir(clean_dir)), "threshold": THRESHOLD,
        "minutes": {"protect": round(t_protect / 60, 1), "fine_tune": round(t_train / 60, 1),
                    "total": round((time.time() - t0) / 60, 1)},
        "models": {name: {part: mean(v) for part, v in r.items()} for name, r in rows.items()},
    }
    lines = ["| model | made against the original: MSE ↑ | success ↑ | re-crafted against the model: MSE ↑ | success ↑ "
             "| reconstruction L1 ↓ | edit strength |", "|---|---|---|---|---|---|---|"]
    for name, r in result["models"].items():
        lines.append(f"| {name} | {r['published']['mse']:.3f} | {100 * r['published']['success']:.0f} % "
                     f"| {r['recrafted']['mse']:.3f} | {100 * r['recrafted']['success']:.0f} % "
                     f"| {r['quality']['self_l1']:.3f} | {r['quality']['edit_strength']:.3f} |")
    table = "\n".join(lines)
    result["table"] = table
    print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=1))
    print(table)
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
