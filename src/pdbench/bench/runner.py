"""Run a benchmark matrix: generators × defenses × practical settings × metrics on a face dataset.

Work is cut into cells (generator, defense, batch of images). Each finished piece is written
atomically to ``<out>/cache`` (clean generator outputs, protected images, per-setting metric rows), so
an interrupted run picks up where it stopped without redoing finished cells. At the end the tidy
table ``results.csv`` (one row per image × generator × defense × setting × metric), ``results.json``
(metadata, metric directions) and the Markdown summary ``summary.md`` are written atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import zlib
from pathlib import Path
from typing import Callable

import torch

from ..assets import ASSETS, resolve
from ..data import FaceFolder
from ..defenses import DEFENSES, get_defense
from ..errors import InputError
from ..generators import GENERATORS, Target, get_generator
from ..io import torch_save, write_text
from ..tensors import resolve_device
from ..metrics import METRICS, MetricInputs, get_metric
from ..registry import spec_label
from ..transforms import expand_settings
from .config import BenchConfig


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def open_dataset(ds: dict, resolution: int, crop: float = 1.0) -> FaceFolder:
    ds = dict(ds)
    if "asset" in ds:
        spec = ASSETS.get(ds["asset"])
        root = resolve(spec.name, check=False)
        images = root / ds.get("images", "")
        attrs = root / ds["attrs"] if ds.get("attrs") else None
    elif "path" in ds:
        images = Path(os.path.expandvars(ds["path"])).expanduser()
        attrs = Path(os.path.expandvars(ds["attrs"])).expanduser() if ds.get("attrs") else None
    else:
        raise InputError("config: dataset needs 'path' (a folder of photos) or 'asset' (a dataset name)")
    return FaceFolder(images, resolution, attr_file=attrs, strict=not ds.get("skip_bad", False), crop=crop)


def select_images(folder: FaceFolder, ds: dict) -> list[int]:
    pool = None
    if ds.get("holdout"):
        train, test = folder.split(int(ds["holdout"]))
        pool = test if ds.get("split", "test") == "test" else train
    return folder.select(ds.get("n"), int(ds.get("seed", 0)), pool)


def _validate(cfg: BenchConfig) -> list:
    for g in cfg.generators:
        GENERATORS.get(g["name"])
    for d in cfg.defenses:
        DEFENSES.get(d["name"])
    for m in cfg.metric_specs:
        METRICS.get(m["name"])
    return expand_settings(cfg.settings)


def run(cfg: BenchConfig, progress: bool = True, on_cell: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the benchmark; returns counts of computed and reused cells and the output paths."""
    from tqdm import tqdm

    settings = _validate(cfg)
    metrics = []  # (label, metric) in the configured order
    for lab, spec in zip(cfg.metrics, cfg.metric_specs):
        params = {k: v for k, v in spec.items() if k != "name"}
        try:
            metrics.append((lab, get_metric(spec["name"], **params)))
        except TypeError:
            raise InputError(f"config: metric {spec['name']!r} takes no parameter(s) {sorted(params)}") from None
    device = resolve_device(cfg.device)
    out = Path(cfg.out)
    stats = {"computed": 0, "reused": 0}
    rows: list[dict] = []
    meta: dict = {"name": cfg.name, "config": cfg.__dict__, "generators": {}, "metrics": {lab: m.info() for lab, m in metrics}}

    for gspec in cfg.generators:
        gkw = {k: v for k, v in gspec.items() if k != "name"}
        G = get_generator(gspec["name"], device=device, **gkw)
        folder = open_dataset(cfg.dataset, G.resolution, G.crop)
        idx = select_images(folder, cfg.dataset)
        names = folder.names(idx)
        labels = folder.labels(G.attributes, idx) if getattr(G, "attributes", None) else None
        batches = [list(range(i, min(i + cfg.batch_size, len(idx)))) for i in range(0, len(idx), cfg.batch_size)]
        weights = G.fingerprint()
        gkey = f"{gspec['name']}-{_key([gspec, weights, cfg.dataset, cfg.batch_size, names])}"
        meta["generators"][spec_label(gspec)] = {"resolution": G.resolution, "n_images": len(idx), "weights": weights,
                                             "conditions": list(G.condition_names)}
        cache = out / "cache" / gkey
        n_cells = len(batches) * len(cfg.defenses)
        shown: dict = {}  # defense label -> its cache folder, for the image grid
        bar = tqdm(total=n_cells, desc=f"{spec_label(gspec)}", disable=not progress, dynamic_ncols=True)
        plan = []  # (spec, defense, cache key) per configured defense
        for dspec in cfg.defenses:
            dkw = {k: v for k, v in dspec.items() if k != "name"}
            dkw.setdefault("seed", cfg.seed * 100_003 + zlib.crc32(dspec["name"].encode()) % 100_003)
            dkey = f"{dspec['name']}-{_key([dspec, cfg.seed])}"
            plan.append((dspec, get_defense(dspec["name"], **dkw), dkey))
            shown[spec_label(dspec)] = cache / dkey
        for b, bidx in enumerate(batches):  # batches outer: each batch is decoded and its G(x) made once
            sel = [idx[i] for i in bidx]
            x = out_clean = target = None
            x_memo: dict = {}  # quantities of the clean batch alone (face masks, detections), shared by all cells
            for dspec, defense, dkey in plan:
                cell_files = {t.label(): cache / dkey / f"b{b:04d}-{_key([t.label(), cfg.metrics])}.json" for t in settings}
                if all(p.exists() for p in cell_files.values()):
                    stats["reused"] += 1
                    for t in settings:
                        rows += json.loads(cell_files[t.label()].read_text())
                    bar.update(1)
                    continue
                if x is None:
                    x = folder.load(sel).to(device)
                    target = Target.of(G, None if labels is None else labels[bidx], len(bidx))
                    clean_path = cache / f"clean-b{b:04d}.pt"
                    if clean_path.exists():
                        out_clean = torch.load(clean_path, map_location=device, weights_only=True)
                    else:
                        with torch.inference_mode():
                            out_clean = target.outputs(x)[0]
                        torch_save(out_clean.cpu(), clean_path)
                adv_path = cache / dkey / f"b{b:04d}-adv.pt"
                if adv_path.exists():
                    saved = torch.load(adv_path, map_location=device, weights_only=True)
                    x_adv, secs = saved["x_adv"], float(saved["seconds"])
                else:
                    t0 = time.perf_counter()
                    x_adv = defense.protect(x, target, keys=torch.tensor(sel))
                    secs = time.perf_counter() - t0
                    torch_save({"x_adv": x_adv.cpu(), "seconds": secs}, adv_path)
                for t in settings:
                    with torch.inference_mode():
                        out_adv = target.outputs(t(x_adv))[0]
                        inp = MetricInputs(x, x_adv, out_clean, out_adv, x_memo=x_memo)
                        values = {lab: m(inp).tolist() for lab, m in metrics}
                    cell_rows = [
                        {"image": names[i], "generator": spec_label(gspec), "defense": spec_label(dspec), "setting": t.label(),
                         "metric": m, "value": values[m][j]}
                        for j, i in enumerate(bidx) for m in cfg.metrics
                    ] + [{"image": "*batch*", "generator": spec_label(gspec), "defense": spec_label(dspec), "setting": t.label(),
                          "metric": "protect_seconds_per_image", "value": secs / len(bidx)}]
                    write_text(cell_files[t.label()], json.dumps(cell_rows))
                    rows += cell_rows
                stats["computed"] += 1
                bar.update(1)
                if on_cell is not None:
                    on_cell(f"{gkey}/{dkey}/b{b}")
        bar.close()
        if batches:
            grid = _grid(G, folder, idx[:min(4, len(batches[0]))], labels, shown, cache, out / f"grid-{gspec['name']}.png", device)
            meta["generators"][spec_label(gspec)]["grid"] = grid.name

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["image", "generator", "defense", "setting", "metric", "value"])
    w.writeheader()
    w.writerows(rows)
    write_text(out / "results.csv", buf.getvalue())
    from ..report.markdown import summary_table

    from ..report.pdb import pdb_aggregates

    meta["summary"] = summarise(rows, cfg.metrics)
    meta["aggregates"] = pdb_aggregates(meta["summary"])
    write_text(out / "results.json", json.dumps(meta, indent=1, default=str))
    write_text(out / "summary.md", summary_table(meta, cfg.metrics))
    stats.update({"results": str(out / "results.csv"), "summary": str(out / "summary.md")})
    return stats


@torch.inference_mode()
def _grid(G, folder, idx, labels, shown: dict, cache: Path, dest: Path, device) -> Path:
    """Grid of the images ``idx`` (the start of the cached first batch): x, G(x), then x_adv, G(x_adv) per defense."""
    from ..report.grid import defense_grid

    x = folder.load(idx).to(device)
    m = x.shape[0]
    target = Target.of(G, None if labels is None else labels[:m], m)
    clean = torch.load(cache / "clean-b0000.pt", map_location=device, weights_only=True)[0, :m]
    cols = {}
    for dlabel, folder_ in shown.items():
        x_adv = torch.load(folder_ / "b0000-adv.pt", map_location=device, weights_only=True)["x_adv"][:m]
        cols[dlabel] = (x_adv, target.outputs(x_adv)[0][0])
    return defense_grid(x, clean, cols, dest)


def summarise(rows: list[dict], metric_names: list[str]) -> list[dict]:
    """Per-cell (generator, defense, setting) means of every metric over the images where it is defined."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        key = (r["generator"], r["defense"], r["setting"])
        cells.setdefault(key, {}).setdefault(r["metric"], []).append(float(r["value"]))
    out = []
    for (g, d, s), vals in cells.items():
        entry = {"generator": g, "defense": d, "setting": s,
                 "n_images": len(vals.get(metric_names[0], [])) if metric_names else 0}
        for m, v in vals.items():
            v = [a for a in v if a == a]  # NaN: not defined for that image (e.g. no face found on the clean image)
            entry[m] = sum(v) / len(v) if v else None
        out.append(entry)
    return out
