"""Does a defense survive an attacker who retrains the generator on protected photos? (TSDF, §IV-D)

    python benchmarks/persistence.py [--defense pgd [tsdf cmua found ...]] [--detector retinaface|none]
                                     [--steps 10] [--epochs 8] [--universal-n 16] [--alpha 0.005]
                                     [--train-photos 600] [--iters 800] [--n 100] [--no-recraft]
                                     [--work runs/persistence] [--json docs/results/persistence-tsdf.json]
                                     [--prepare-only] [--skip-control] [--prepare-test]

1. The defender publishes: the first ``--train-photos`` photos of the training split of
   ``celeba-10k-89px``, each as pdbench's StarGAN reads it (the 89 px square resized to its 64 px input),
   are protected with each ``--defense`` against that StarGAN by ``pdbench protect`` (no attribute labels:
   a person protecting photos does not know which edit will be attempted; ``--mode model-input`` at the
   model's own resolution, so nothing is resampled; lossless 8-bit files, perturbation keyed by file
   name). Per-image defenses (pgd) run ``--steps`` iterations; universal ones (tsdf, cmua, found) train
   their δ against this StarGAN on ``--universal-n`` training faces (``--epochs``, ``--alpha``), and TSDF
   then poisons RetinaFace on every photo (stage 2).
2. The attacker prepares the data (``--detector retinaface``, :func:`pdbench.faces.crop.crop_faces`):
   RetinaFace runs on every published photo; a photo where it finds no face (score ≥ 0.6) is dropped
   — TSDF's mechanism —; otherwise the best box → a square of 1.6 × its longer side around its centre
   (shifted inside the photo, capped at the photo) → resized to 64 px (Pillow bilinear). On clean photos
   that square is nearly the whole photo, the framing the model was trained on. ``--detector none``
   trains on the published photos as they are.
3. The attacker retrains: pdbench's StarGAN, generator and critic (``pdbench train --init``), is
   fine-tuned with StarGAN's official recipe for ``--iters`` iterations on those crops. A control does
   the same on the clean photos through the same pipeline, so that what fine-tuning does by itself is
   not mistaken for adaptation to the perturbation.
4. On ``--n`` held-out faces (never trained on), for the original, the control and each retrained model:
   * each defense's perturbation made against the *original* model without labels (what the defender
     published before the attacker retrained), at the model's 64 px input, rounded to 8 bits:
     MSE(M(x, c), M(x_adv, c)) and the success rate (MSE > 0.05, PDB's threshold) over every image and
     the five official edits of its true attributes;
   * per-image defenses only (unless ``--no-recraft``): the perturbation re-crafted white-box against
     that model;
   * the model's own quality: reconstruction L1 |M(x, c_org) − x|, mean edit strength, and FID (asset
     ``inception-fid``) of its outputs on the clean faces (face i with official edit i mod 5) against
     those real faces — TSDF's Table V measure. With ~100 images FID is biased upward (fewer images than
     its 2048 dimensions): compare it only between these rows.

Every stage is cached in ``--work`` (clean folder per ``--train-photos``, one protected folder per
defense setting that larger runs extend, crops with their manifest ``crops.json``, training runs with a
checkpoint every 100 iterations, the test perturbations, every model's evaluation and FID features)
and resumes when interrupted. Parallel processes (one thread each) prepare the parts:
``--prepare-only --skip-control --defense X`` protects, crops and fine-tunes for X alone,
``--prepare-only --defense`` (no defense) the control alone, ``--prepare-test`` makes the test
perturbations and evaluates the original; a final run with every defense then only evaluates.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.data.folder import load_photo
from pdbench.defenses import get_defense
from pdbench.faces.crop import SCALE, crop_faces
from pdbench.faces.detectors.base import box_iou
from pdbench.generators import Target, get_generator
from pdbench.generators.stargan import StarGAN
from pdbench.io import save_png, write_json, write_text
from pdbench.metrics.fid import features, fid_from_features
from pdbench.protect import protect_folder
from pdbench.tensors import from_uint8, to_uint8
from pdbench.train.evaluate import edit_report
from pdbench.train.stargan import StarGANRecipe, StarGANTrainer

ASSET = "stargan-celeba-64-pdbench"
THRESHOLD = 0.05
IOU = 0.7  # a kept face counts as well framed when its box overlaps the clean photo's box this much
UNIVERSAL = ("tsdf", "tsdf-paper", "tsdf-stage1", "cmua", "found")
ABLATIONS = {"tsdf-stage1": ("tsdf", {"poison_steps": 0})}  # TSDF's δ without its detector poisoning (τ = 0)


def clean_folder(root: Path, work: Path, holdout: int, n: int) -> Path:
    """The first ``n`` photos of the training split (all but the last ``holdout``), each saved as the
    generator's 64 px input (8-bit PNG): what the defender publishes, before protection."""
    ds = FaceFolder(root / "images", 64, check_files=False)
    train, _ = ds.split(holdout)
    dst = work / f"clean64-{n}"
    for i in train[:n]:
        out = dst / (Path(ds.files[i].name).stem + ".png")
        if not out.exists():
            save_png(out, ds.load_uint8([i])[0])
    return dst


def make_defense(name: str, args, work: Path, G0):
    """The defense, its universal δ (if any) cached in ``work`` and trained against the run's StarGAN."""
    if name not in UNIVERSAL:
        return get_defense(name, steps=args.steps)
    base, extra = ABLATIONS.get(name, (name, {}))
    path = work / f"delta-{base}-n{args.universal_n}-e{args.epochs}-a{args.alpha}.safetensors"
    kw = {"steps": args.epochs, "train_n": args.universal_n, "alpha": args.alpha}
    if not path.exists():  # train it once (against the run's StarGAN) and save it
        t = time.time()
        get_defense(base, save_to=str(path), **kw).load_network(torch.zeros(1, 3, 64, 64), Target.of(G0, None, 1))
        print(f"{base}: universal δ trained in {(time.time() - t) / 60:.1f} min", flush=True)
    return get_defense(base, delta=str(path), **kw, **extra)  # one config (the δ file) for every run: protect resumes


def tag_of(name: str, args) -> str:
    """A defense with its settings (its protected folder holds every photo protected so far, for any
    ``--train-photos``: a larger run reuses a smaller one's photos)."""
    if name in UNIVERSAL:
        return f"{name}-n{args.universal_n}-e{args.epochs}-a{args.alpha}"
    return f"{name}{args.steps}"


def attacker_crops(src: Path, names: list[str], dst: Path, detector: str, reference: dict | None = None) -> dict:
    """The attacker's training folder: each photo ``names`` of ``src`` through the detector and the crop
    (:func:`pdbench.faces.crop.crop_faces`); photos without a face are dropped. Returns (and caches in
    ``dst/crops.json``) the counts, and with ``reference`` (name -> clean box) how many kept boxes
    overlap the clean photo's box at IoU ≥ 0.7."""
    manifest = dst / "crops.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    files = [src / n for n in names]
    kept, dropped, boxes, ious = [], [], {}, []
    for s in range(0, len(files), 64):
        part = files[s:s + 64]
        crops = crop_faces([np.asarray(load_photo(p).rgb) for p in part], detector, size=64)
        for p, c in zip(part, crops):
            if c is None:
                dropped.append(p.name)
                continue
            save_png(dst / p.name, c.image)
            kept.append(p.name)
            boxes[p.name] = [round(float(v), 2) for v in c.box]
            if reference is not None and p.name in reference:
                ious.append(float(box_iou(c.box, np.asarray(reference[p.name]))[0, 0]))
    out = {"detector": detector, "scale": SCALE, "size": 64, "photos": len(files), "kept": len(kept),
           "dropped": dropped, "boxes": boxes}
    if reference is not None:
        out["well_framed"] = sum(v >= IOU for v in ious)
        out["mean_iou"] = float(np.mean(ious)) if ious else float("nan")
    write_json(manifest, out)
    return out


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
        trainer.train(save_every=100)  # a checkpoint every 100 iterations: an interrupted run resumes
    return out / "G.safetensors"


def disruption(G, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor) -> dict:
    cs = G.conditions(labels, x.shape[0])
    with torch.inference_mode():
        a = G.generate_many(x, cs)
        b = G.generate_many(x_adv, cs)
    mse = (a - b).pow(2).mean(dim=(2, 3, 4))  # (K edits, N)
    return {"mse": float(mse.mean()), "success": float((mse > THRESHOLD).float().mean())}


def published(x_adv: torch.Tensor) -> torch.Tensor:
    """x_adv as a saved 8-bit file would hold it."""
    return from_uint8(to_uint8(x_adv))


def clean_outputs(G, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """G's output on each clean face i with its official edit i mod K (one image per face, for FID)."""
    cs = G.conditions(labels, x.shape[0])
    with torch.inference_mode():
        a = G.generate_many(x, cs)  # (K, N, 3, H, W)
    return torch.stack([a[i % a.shape[0], i] for i in range(x.shape[0])])


def cached_features(path: Path, images: torch.Tensor) -> np.ndarray:
    if path.exists():
        return np.load(path)
    f = features(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npy")
    np.save(tmp, f)
    os.replace(tmp, path)
    return f


def test_perturbation(defense, G0, x: torch.Tensor, keys: torch.Tensor, path: Path, batch: int) -> torch.Tensor:
    """The defense's protection of the test faces made against the original model (no labels), as an
    8-bit image; cached in ``path`` (a PNG strip of the faces side by side)."""
    if path.exists():
        strip = from_uint8(np.asarray(load_photo(path).rgb)[None])[0]
        return torch.stack(strip.split(x.shape[-1], dim=2))
    out = torch.cat([published(defense.protect(x[s:s + batch], Target.of(G0, None, len(x[s:s + batch])),
                                               keys=keys[s:s + batch])) for s in range(0, len(x), batch)])
    save_png(path, to_uint8(torch.cat(list(out), dim=2)[None])[0])
    return out


def evaluate(G, original: bool, defenses: dict, args, x, labels, keys, x_pub: dict, path: Path) -> dict:
    """One model's rows (see the module), cached in ``path`` entry by entry (keyed by each defense's settings)."""
    cached = json.loads(path.read_text()) if path.exists() else {}
    for d, defense in defenses.items():
        tag = tag_of(d, args)
        r = cached.setdefault(tag, {})
        if "published" not in r:
            r["published"] = disruption(G, x, x_pub[d], labels)
        if args.recraft and d not in UNIVERSAL and "recrafted" not in r:
            own = x_pub[d] if original else torch.cat([
                published(defense.protect(x[s:s + args.batch], Target.of(G, None, len(x[s:s + args.batch])),
                                          keys=keys[s:s + args.batch])) for s in range(0, len(x), args.batch)])
            r["recrafted"] = disruption(G, x, own, labels)
        write_json(path, cached)
    if "quality" not in cached:
        rep = edit_report(G, x, labels)
        strength = sum((e["hair"] + e["face"]) / 2 for e in rep["edits"].values()) / len(rep["edits"])
        cached["quality"] = {"self_l1": rep["self_l1"], "edit_strength": strength}
        write_json(path, cached)
    out = {f"{part} {d}": v for d in defenses for part, v in cached[tag_of(d, args)].items()
           if args.recraft or part != "recrafted"}
    return {**out, "quality": dict(cached["quality"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--defense", nargs="*", default=["pgd"],
                    help="defenses the defender publishes with (none at all with --prepare-only: the control only)")
    ap.add_argument("--detector", default="retinaface", help="the attacker's face detector, or none (no cropping)")
    ap.add_argument("--steps", type=int, default=10, help="per-image defense iterations (published and test photos)")
    ap.add_argument("--epochs", type=int, default=8, help="universal δ training epochs (tsdf code: 30)")
    ap.add_argument("--universal-n", type=int, default=16, help="training faces of a universal δ (papers: 128)")
    ap.add_argument("--alpha", type=float, default=0.005, help="universal δ step (papers: 0.001)")
    ap.add_argument("--train-photos", type=int, default=600, help="protected photos the attacker collects")
    ap.add_argument("--iters", type=int, default=800, help="fine-tuning iterations (critic steps; 1/5 are generator steps)")
    ap.add_argument("--n", type=int, default=100, help="held-out faces evaluated")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--work", default="runs/persistence")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--prepare-only", action="store_true", help="stop after fine-tuning")
    ap.add_argument("--skip-control", action="store_true", help="with --prepare-only: leave the control to another process")
    ap.add_argument("--no-recraft", dest="recraft", action="store_false",
                    help="skip re-crafting per-image perturbations against each retrained model (the costliest part)")
    ap.add_argument("--prepare-test", action="store_true",
                    help="only make the test perturbations and evaluate the original model (cached for the final run)")
    args = ap.parse_args()
    if args.skip_control and not args.prepare_only:
        ap.error("--skip-control needs --prepare-only: the evaluation compares against the control")
    if not args.defense and not args.prepare_only:
        ap.error("--defense needs at least one defense (none only with --prepare-only, to train the control)")
    torch.manual_seed(0)
    root = resolve("celeba-10k-89px", check=False)
    attrs = root / "list_attr_celeba_first20k.txt"
    work = Path(args.work)
    t0 = time.time()
    G0 = get_generator("stargan")
    width = G0.net.main[0].out_channels
    defenses = {name: make_defense(name, args, work, G0) for name in args.defense}
    minutes: dict = {}

    clean_dir = clean_folder(root, work, 1000, args.train_photos)
    clean_tag = "clean"
    names = sorted(p.name for p in clean_dir.iterdir() if p.suffix == ".png")
    n_tag = f"{args.train_photos}-{args.detector}"
    sources = {} if args.skip_control or args.prepare_test else {"control (clean photos)": (clean_tag, clean_dir)}
    for name, d in ({} if args.prepare_test else defenses).items():
        t = time.time()
        tag = tag_of(name, args)
        prot_dir = work / f"protected-{tag}"
        print(protect_folder(str(clean_dir), str(prot_dir), defense=name, models=(G0, d), batch_size=50,
                             face_check=False, mode="model-input", progress=False), flush=True)
        minutes[f"protect {name}"] = round((time.time() - t) / 60, 1)
        sources[f"retrained ({name} photos)"] = (tag, prot_dir)

    reference = None
    if args.detector != "none" and not args.prepare_test:
        clean_info = attacker_crops(clean_dir, names, work / f"crops-{clean_tag}-{n_tag}", args.detector)
        reference = clean_info["boxes"]
    runs, data_info = {}, {}
    for label, (tag, folder) in sources.items():
        t = time.time()
        if args.detector == "none":
            data, info = work / f"photos-{tag}-{args.train_photos}", {"detector": "none", "photos": len(names), "kept": None}
            data.mkdir(parents=True, exist_ok=True)
            for n in names:  # the published photos as they are (links), only this run's
                if not (data / n).exists():
                    os.symlink((folder / n).resolve(), data / n)
        else:
            data = work / f"crops-{tag}-{n_tag}"
            info = attacker_crops(folder, names, data, args.detector, None if tag == clean_tag else reference)
        data_info[label] = {k: v for k, v in info.items() if k not in ("boxes", "dropped")}
        print(label, json.dumps(data_info[label]), flush=True)
        runs[label] = fine_tune(data, attrs, work / f"ft-{tag}-{n_tag}-{args.iters}", args.iters, width)
        minutes[f"crop + fine-tune {label}"] = round((time.time() - t) / 60, 1)
    if args.prepare_only:
        print(json.dumps(minutes), flush=True)
        return

    t_eval = time.time()
    ds = FaceFolder(root / "images", 64, attr_file=attrs, check_files=False)
    _, test = ds.split(1000)
    idx = ds.select(args.n, seed=0, pool=test)
    x, labels = ds.load(idx), ds.labels(G0.attributes, idx)
    keys = torch.tensor([zlib.crc32(n.encode()) for n in ds.names(idx)])
    x_pub = {d: test_perturbation(defense, G0, x, keys, work / "eval" / f"test-{tag_of(d, args)}-n{len(idx)}.png",
                                  args.batch) for d, defense in defenses.items()}
    cache = work / "eval"
    f_real = cached_features(cache / f"real-n{len(idx)}.npy", x)
    models = {"original": ("original", G0)}
    if not args.prepare_test:
        models.update({k: (v.parent.name, StarGAN.from_assets(checkpoint=str(v), resolution=64)) for k, v in runs.items()})
    result_models = {}
    for name, (key, G) in models.items():
        r = evaluate(G, G is G0, defenses, args, x, labels, keys, x_pub, cache / f"{key}-n{len(idx)}.json")
        f_fake = cached_features(cache / f"{key}-n{len(idx)}.npy", clean_outputs(G, x, labels))
        r["quality"]["fid_clean_outputs"] = fid_from_features(f_real, f_fake)
        if name in data_info:
            r["training_data"] = data_info[name]
        result_models[name] = r
        print(name, json.dumps(r), flush=True)
    if args.prepare_test:
        return
    minutes["evaluate"] = round((time.time() - t_eval) / 60, 1)
    minutes["total"] = round((time.time() - t0) / 60, 1)
    result = {
        "defenses": {d: defense.config() for d, defense in defenses.items()}, "detector": args.detector,
        "crop_scale": SCALE, "iou": IOU, "iters": args.iters, "n_test": len(idx), "train_photos": len(names),
        "steps": args.steps, "universal": {"train_n": args.universal_n, "epochs": args.epochs, "alpha": args.alpha},
        "threshold": THRESHOLD, "recraft": args.recraft,
        "minutes_this_invocation": minutes,  # stages cached by earlier runs count ~0 here
        "models": result_models,
    }
    names = list(defenses)
    head = ["model", "faces kept by the detector", f"well framed (IoU ≥ {IOU})"]
    for d in names:
        head += [f"{d} (made against the original): MSE ↑ / success"]
        if args.recraft and d not in UNIVERSAL:
            head += [f"{d} re-crafted: MSE ↑"]
    head += ["reconstruction L1 ↓", "edit strength", f"FID of clean outputs ({len(idx)} faces) ↓"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in result_models.items():
        info = r.get("training_data", {})
        kept = "—" if not info or info.get("kept") is None else f"{info['kept']} / {info['photos']}"
        framed = f"{info['well_framed']} / {info['kept']}" if "well_framed" in info else "—"
        cells = [name, kept, framed]
        for d in names:
            p = r[f"published {d}"]
            cells.append(f"{p['mse']:.3f} / {100 * p['success']:.0f} %")
            if args.recraft and d not in UNIVERSAL:
                cells.append(f"{r[f'recrafted {d}']['mse']:.3f}")
        q = r["quality"]
        cells += [f"{q['self_l1']:.3f}", f"{q['edit_strength']:.3f}", f"{q['fid_clean_outputs']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    result["table"] = table
    print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=1))
    print(table)
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
