"""Agreement of pdbench's face models and BRISQUE with references, on real photos (issue: faces and metrics).

Prints a Markdown table: identity ROC-AUC (MobileFaceNet on LFW pairs and on deepface's labelled pairs of
unaligned photos, with and without RetinaFace + five-point alignment; dlib's ResNet on the same pairs),
BRISQUE against OpenCV's cv2.quality (same LIVE model), and detector agreement (RetinaFace and YuNet
eye landmarks against dlib's 68-point model, box IoU between the two detectors).

    PDBENCH_ASSETS=../shared/assets python benchmarks/faces_reference.py
"""

from __future__ import annotations

import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.faces import get_embedder
from pdbench.metrics.functional import roc_auc
from pdbench.tensors import from_uint8


def photo(path: Path, side: int = 320) -> torch.Tensor:
    im = Image.open(path).convert("RGB")
    s = side / max(im.size)
    return from_uint8(np.asarray(im.resize((round(im.size[0] * s), round(im.size[1] * s))))[None])


def lfw_auc() -> str:
    ds = FaceFolder(resolve("lfw-gray-250", check=False) / "images", 250, check_files=False)
    ids = defaultdict(list)
    for i, p in enumerate(ds.files):
        ids[p.stem.rsplit("_", 1)[0]].append(i)
    rng = random.Random(0)
    pos = [tuple(rng.sample(ids[k], 2)) for k in rng.sample([k for k, v in ids.items() if len(v) >= 2], 300)]
    names, neg = list(ids), []
    while len(neg) < 300:
        a, b = rng.sample(names, 2)
        neg.append((rng.choice(ids[a]), rng.choice(ids[b])))
    idx = sorted({i for pr in pos + neg for i in pr})
    where = {j: k for k, j in enumerate(idx)}
    out = []
    for box in ("lfw", "detect"):
        e = get_embedder(box)
        with torch.inference_mode():
            f = torch.cat([e(ds.load(idx[i:i + 50])) for i in range(0, len(idx), 50)])
        sim = lambda pr: float(f[where[pr[0]]] @ f[where[pr[1]]])  # noqa: E731
        out.append(f"| MobileFaceNet, LFW (grayscale 250 px), 300 + 300 pairs, {'fixed centre box' if box == 'lfw' else 'RetinaFace + alignment'} "
                   f"| ROC-AUC | {roc_auc([sim(p) for p in pos], [sim(p) for p in neg]):.4f} |")
    return "\n".join(out)


def deepface_rows() -> str:
    from pdbench.faces.dlib_resnet import THRESHOLD, dlib_descriptors

    root = resolve("deepface-unit", check=False)
    pairs = list(csv.DictReader(open(root / "master.csv")))
    imgs = {f: photo(root / f) for f in sorted({p["file_x"] for p in pairs} | {p["file_y"] for p in pairs})}
    rows = []
    for box, label in (("detect", "RetinaFace + five-point alignment"), ("full", "whole photo, no alignment")):
        e = get_embedder(box)
        with torch.inference_mode():
            emb = {f: e(x)[0] for f, x in imgs.items()}
        s = lambda p: float(emb[p["file_x"]] @ emb[p["file_y"]])  # noqa: E731
        a = roc_auc([s(p) for p in pairs if p["Decision"] == "Yes"], [s(p) for p in pairs if p["Decision"] == "No"])
        rows.append(f"| MobileFaceNet, deepface pairs (38 same, 262 different, unaligned photos), {label} | ROC-AUC | {a:.4f} |")
    desc = {f: dlib_descriptors(x)[0][0] for f, x in imgs.items()}
    d = lambda p: float(np.linalg.norm(desc[p["file_x"]] - desc[p["file_y"]]))  # noqa: E731
    pos = [d(p) for p in pairs if p["Decision"] == "Yes" if d(p) == d(p)]
    neg = [d(p) for p in pairs if p["Decision"] == "No" if d(p) == d(p)]
    acc = (sum(v < THRESHOLD for v in pos) + sum(v >= THRESHOLD for v in neg)) / (len(pos) + len(neg))
    rows.append(f"| dlib ResNet, deepface pairs where dlib finds both faces ({len(pos)} + {len(neg)}) | ROC-AUC / accuracy at 0.6 "
                f"| {roc_auc([-v for v in pos], [-v for v in neg]):.4f} / {acc:.3f} |")
    return "\n".join(rows)


def brisque_row() -> str:
    import cv2

    from pdbench.metrics.brisque import brisque_score

    model, rng = str(resolve("brisque-live-model")), str(resolve("brisque-live-range"))
    ours, ref = [], []
    for folder, res in (("celebahq-stargan-v2", 256), ("celebahq-stargan-v2", 64), ("codeformer-cropped", 128),
                        ("ffhq-styleclip", 256)):
        ds = FaceFolder(resolve(folder, check=False), res)
        for im in ds.load_uint8(list(range(min(12, len(ds))))):
            ours.append(brisque_score(im))
            ref.append(cv2.quality.QualityBRISQUE_compute(np.ascontiguousarray(im[..., ::-1]), model, rng)[0])
    diff = np.abs(np.array(ours) - np.array(ref))
    return (f"| BRISQUE (LIVE model) vs OpenCV cv2.quality, {len(ours)} faces at 64–256 px | mean / max abs. difference, "
            f"Pearson | {diff.mean():.3f} / {diff.max():.3f}, {np.corrcoef(ours, ref)[0, 1]:.5f} |")


def detector_rows() -> str:
    from pdbench.faces.detectors import get_detector
    from pdbench.faces.detectors.base import box_iou
    from pdbench.faces.landmarks import landmarks68

    root = resolve("deepface-unit", check=False)
    rf, yn = get_detector("retinaface"), get_detector("yunet")
    err = {"retinaface": [], "yunet": []}
    ious = []
    for f in sorted(root.glob("*.jpg")):
        x = photo(f, 640)
        pts, found = landmarks68(x)
        r, y = rf.detect(x)[0], yn.detect(x)[0]
        if not (found[0] and r and y):
            continue
        eyes = np.stack([pts[0, 36:42].mean(0), pts[0, 42:48].mean(0)])
        iod = np.linalg.norm(eyes[1] - eyes[0])
        for name, d in (("retinaface", r[0]), ("yunet", y[0])):
            err[name].append(np.linalg.norm(d.landmarks[:2] - eyes, axis=1).max() / iod)
        ious.append(box_iou(r[0].box, y[0].box)[0, 0])
    rows = [f"| {n} eye landmarks vs dlib 68-point, {len(v)} deepface photos | median error (inter-ocular distances) "
            f"| {np.median(v):.3f} |" for n, v in err.items()]
    rows.append(f"| RetinaFace vs YuNet best box, same photos | median IoU | {np.median(ious):.3f} |")
    return "\n".join(rows)


def main() -> int:
    torch.set_grad_enabled(False)
    print("| check | measure | value |\n|---|---|---|")
    for part in (lfw_auc, deepface_rows, brisque_row, detector_rows):
        print(part(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
