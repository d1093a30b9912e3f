"""Run a benchmark matrix: generators × defenses × practical settings × metrics on a face dataset.

The run is a **plan** of cells, each computed by :func:`compute_cell`, then **collected**:

* :func:`make_plan` lists the cells: (batch of images of the dataset × generator × defense), each with
  all the configured settings and metrics. A :class:`Cell` is plain, picklable data: the images' files
  and sha256, their labels and dataset indices, the generator spec and its weights' fingerprint.
* :func:`compute_cell` is a function of a cell and the asset directory alone. Its results are cached
  under ``<out>/cache`` in folders keyed by content: the generator's weights fingerprint, the images'
  sha256 (and indices, labels), the defense with its seed, each setting with the metrics and the
  checksums of the metric weights. Replacing a photo or a checkpoint therefore never reuses a stale
  result, and an interrupted run resumes without redoing finished cells. A cache file that cannot
  be read is named, removed and recomputed.
* :func:`collect` writes the tidy table ``results.csv`` (one row per image × generator × defense ×
  setting × metric), ``results.json`` (metadata, metric directions, per-cell means with how many images
  were undefined), the Markdown ``summary.md`` and ``report.html``, all atomically. A run that stops
  early (Ctrl-C, SIGTERM, a cell that raises) writes summary.md and report.html of the cells that
  finished, marked partial (:func:`collect_partial`), then raises as before; the resumed run replaces them.
  results.json records the plan's ``results_key`` (:meth:`Plan.results_key`: weights, photos, settings,
  metrics) and results.csv's sha256, so that a partial summary can tell an earlier complete run's pair of
  this same plan (kept) from one of other inputs (renamed ``results.stale.json`` / ``.csv``).

**Transfer** (a ``transfer: {from: [...], to: [...]}`` block): a cell whose generator is a source also
judges its perturbations on every target generator ≠ source (:class:`TransferTarget`). The attack runs
once per image × source (its ``adv.pt`` is the white-box cell's own) and is reused for every target and
setting (the block's ``settings``, default all of the run's; PDB's TE needs only ``none``). Each target
reads the perturbation with its own preprocessing: where its view (resolution,
crop) equals the source's, x_adv is fed as it is (PDB's protocol); otherwise it is carried onto the
photo by the publish stage (:func:`pdbench.publish.publish_upsampled`: δ upsampled onto the source's
crop square, 8-bit) and read back with the target's crop and resize (:func:`carry`).

**Publish** (``publish: native``; default ``model-input``, PDB's protocol): a cell's defense optimises δ
at each photo's own resolution through the generator's own crop and resize, and the photo is published
(8 bits, within ε grey levels, read back) by :func:`pdbench.publish.protect_images`; x_adv is then the
published photo as the generator's official preprocessing reads it, so every setting, metric and
transfer target acts on the published photo (:func:`_protect`). The tidy table's
``source``/``target`` columns say which (white-box rows: source = target = generator; a transfer row's
``generator`` is its target); ``results.json`` keeps the transfer means under ``transfer`` and R_TE
per (defense, source → target) under ``aggregates.te`` (:func:`pdbench.report.pdb.te_aggregates`).

**Face swaps** (a ``swap: {role: source|target}`` block; needed by a swapper that reads a partner photo,
SimSwap): every protected photo is one side of a swap whose other side, its *partner*, is a photo of a
different person (``swap.identities``, CelebA's ``identity_CelebA.txt`` by default) from the same pool
(the held-out split), drawn by the swap seed and the photo's name (:func:`swap_partners`). ``role``
says which side the protected photo is: ``source`` (it gives the identity; the partner is the face it is
pasted onto) or ``target`` (the face the partner's identity is pasted onto). A swapper whose identities
are its decoders (aeswap, ``protected_role = "target"``) takes the target role only and brings its own
pairs (``G.swap_pairs``: its held-out photos of its identities, each to the other's decoder). A defense
attacks that one swap per photo (:func:`swap_target`); a swap cell's rows are the configured disruption
metrics (G(pair) vs G(protected pair)) and the swap metrics (:func:`swap_metric_info`: closer to source
and cosines per identity judge, landmark NME, background L1) of the protected swap and, as
``clean_swap_*``, of the clean swap, both against the clean source and target. The role and the
partners are in the cells' keys and the role in the content key; results.json records the role, the
pairs and the swap metrics (``swap``), summary.md has a face swap table.

An executor runs the cells: :class:`LocalExecutor` (one after another, in this process, the default) or
:class:`~pdbench.bench.ray_executor.RayExecutor` (Ray tasks on a local or multi-node cluster, imported
only when asked for). Both follow one interface, ``run(cells, asset_dir, on_progress) -> iterator of
(cell, result)`` in any order; the run puts the results back in plan order, so the tables do not depend
on the executor. A run folder is locked while a run writes it and belongs to one config (its content key).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import sys
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..assets import ASSETS, asset_dir, resolve, sha256_file, verify_files
from ..data import FaceFolder
from ..data.folder import _load_image, preprocess
from ..defenses import get_defense
from ..defenses.base import takes_progress
from ..errors import AssetCorruptError, InputError, PdbenchError
from ..generators import Condition, Target, TargetMember, get_generator
from ..io import torch_save, write_text
from ..metrics import MetricInputs, get_metric
from ..registry import spec_label, spec_params
from ..tensors import from_uint8, resolve_device
from .config import BenchConfig
from .schema import transfer_judges
from .rundir import RunFolder


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


def metric_weights_key() -> str:
    """Checksums of every metric, identity and detector weight file the catalog knows (what metric
    values depend on besides the images): part of each result's cache key."""
    return _key(sorted((s.name, s.sha256 or s.meta.get("sha256_prefix")) for s in ASSETS.values()
                       if s.kind in ("metric", "identity", "detector")))


# -- the plan -----------------------------------------------------------------------------------------

@dataclass
class Cell:
    """One unit of work: a batch of images × one generator × one defense, with every setting and metric.

    Plain data only (picklable, so another executor can ship it to a worker)."""

    generator: dict  # configured spec {"name": ..., **params}
    weights: str  # the generator's fingerprint when the plan was made
    defense: dict  # configured spec
    defense_kwargs: dict  # what the defense is built with (the spec's parameters and the resolved seed)
    settings: list  # the practical settings (Transform objects, probe sets expanded)
    metrics: list  # metric specs {"name": ..., **params}
    batch: int
    n_batches: int
    files: list  # absolute paths of the images
    sha256: list  # their content hashes
    names: list  # their names in results (relative to the dataset folder)
    indices: list  # dataset indices (keys of the defenses' per-image random starts)
    labels: list | None  # attribute labels (n, A) or None
    resolution: int
    crop: float
    device: str
    cache: str  # this generator's cache folder
    metrics_key: str = ""
    transfer: list = field(default_factory=list)  # TransferTarget: the other generators that judge this x_adv
    transfer_settings: list | None = None  # the transfer block's ``settings`` (labels / probe sets); None: all
    publish: str = "model-input"  # the config's publish mode (pdbench.publish): "model-input" or "native"
    swap_role: str | None = None  # a face swap: what the protected photos are ("source" or "target"), else None
    partners: list = field(default_factory=list)  # a swap: each photo's partner (the other side of its swap), paths
    partner_sha256: list = field(default_factory=list)
    partner_names: list = field(default_factory=list)
    judges: list = field(default_factory=list)  # a swap: the identity judges of its swap metrics

    @property
    def batch_dir(self) -> Path:
        what = [self.sha256, self.indices, self.labels, self.resolution, self.crop]
        if self.swap_role is not None:  # attribute editors keep their old keys
            what += [self.swap_role, self.partner_sha256]
        return Path(self.cache) / f"b{self.batch:04d}-{_key(what)}"

    @property
    def defense_key(self) -> str:
        native = [self.publish] if self.publish != "model-input" else []  # model-input keeps its old keys
        return f"{self.defense['name']}-{_key([self.defense, self.defense_kwargs] + native)}"

    def setting_file(self, t) -> Path:
        """Rows of setting ``t`` (a Transform): keyed by its label, name and parameters, the metrics and their weights."""
        what = [t.label(), t.name, t.params, self.metrics, self.metrics_key] + ([self.judges] if self.swap_role else [])
        return self.batch_dir / self.defense_key / f"rows-{_key(what)}.json"

    @property
    def swap_clean_file(self) -> Path:
        """A swap's metrics of its clean swaps (the same for every defense and setting of the batch)."""
        return self.batch_dir / f"swap-clean-{_key([self.judges, self.metrics_key])}.json"

    @property
    def adv_file(self) -> Path:
        return self.batch_dir / self.defense_key / "adv.pt"

    @property
    def clean_file(self) -> Path:
        return self.batch_dir / "clean.pt"

    @property
    def timing_file(self) -> Path:
        """Wall seconds (and host) of the run that computed this cell's rows (for the report's timing)."""
        return self.batch_dir / self.defense_key / f"cell-{_key([self.setting_file(t).name for t in self.settings])}.json"

    def cache_files(self) -> list[Path]:
        """Every cache file of this cell (what a worker that computed it ships back to the driver)."""
        return [self.clean_file, *([self.swap_clean_file] if self.swap_role else []), self.adv_file,
                *(self.setting_file(t) for t in self.settings),
                *(self.transfer_file(tt, t) for tt in self.transfer for t in self.judged_settings), self.timing_file]

    def label(self) -> str:
        return f"{spec_label(self.generator)} {spec_label(self.defense)} b{self.batch}/{self.n_batches}"

    def view(self, t: "TransferTarget") -> "Cell":
        """This cell's images as target ``t`` reads them: its spec, weights, labels, resolution, crop and
        cache (so its batch folder and clean outputs are those of the target's own white-box cell)."""
        return replace(self, generator=dict(t.generator), weights=t.weights, labels=t.labels, resolution=t.resolution,
                       crop=t.crop, cache=t.cache, transfer=[])

    @property
    def judged_settings(self) -> list:
        """The settings the transfer targets judge this cell's x_adv under (the transfer block's ``settings``)."""
        return [t for t in self.settings if transfer_judges(t.label(), self.transfer_settings)]

    def transfer_file(self, t: "TransferTarget", setting) -> Path:
        """Rows of setting ``setting`` of this cell's x_adv judged on target ``t`` (keyed like
        :meth:`setting_file`, below the defense's folder, by the target's weights and view)."""
        view = self.view(t)
        what = [setting.label(), setting.name, setting.params, self.metrics, self.metrics_key]
        return self.batch_dir / self.defense_key / f"to-{t.generator['name']}-{_key([view.batch_dir.name, t.generator, t.weights])}" \
            / f"rows-{_key(what)}.json"


@dataclass
class TransferTarget:
    """A generator that judges a source cell's perturbations (plain data, like :class:`Cell`)."""

    generator: dict  # configured spec
    weights: str  # its fingerprint when the plan was made
    labels: list | None  # the cell's images' attribute labels for this generator
    resolution: int
    crop: float
    cache: str  # this generator's cache folder


@dataclass
class Plan:
    cells: list[Cell]
    generators: dict = field(default_factory=dict)  # label -> metadata (resolution, n_images, weights, conditions)

    def results_key(self, out: str | os.PathLike) -> str:
        """What this plan's numbers depend on: the cache files of its rows (relative to the run folder
        ``out``), whose names are keyed by the generators' weights, the photos' sha256, the defenses, the
        settings, the metrics and their weights. The config alone does not fix these (a replaced photo or
        checkpoint keeps the config's key); results.json records this key."""
        files = [p for c in self.cells for p in (*(c.setting_file(t) for t in c.settings),
                                                 *(c.transfer_file(tt, t) for tt in c.transfer for t in c.judged_settings))]
        return _key(sorted(os.path.relpath(p, out) for p in files))


def _defense_kwargs(dspec: dict, seed: int) -> dict:
    kw = spec_params(dspec)
    kw.setdefault("seed", seed * 100_003 + zlib.crc32(dspec["name"].encode()) % 100_003)
    return kw


def make_plan(cfg: BenchConfig, device: torch.device, out: Path) -> Plan:
    """Every cell of the run, in order (generators, then batches, then defenses); with a ``transfer``
    block, a source generator's cells also list the targets that judge their perturbations."""
    settings = cfg.validate()
    plan = Plan([])
    mkey = metric_weights_key()
    views = {}  # generator label -> what its cells need
    for gspec in cfg.generators:
        G = _generator(gspec, str(device))
        pre = G.preprocessing  # these weights' record: crop, size, ...
        label = spec_label(gspec)
        swap = cfg.swap if getattr(G, "kind", "attribute") == "swap" else None
        if swap is not None and hasattr(G, "swap_pairs"):  # identities in its weights: its own held-out pairs
            folder, idx, partner_idx, who = G.swap_pairs(cfg.dataset.get("n"), _swap_seed(cfg))
            pairs = {"partners": [folder.files[j] for j in partner_idx], "partner_names": folder.names(partner_idx),
                     "labels": torch.eye(len(G.attributes))[who], "source": G.pairs_asset,
                     "pairs": f"{G.name}'s held-out {G.pairs_asset} photos of its identities ({', '.join(G.attributes)}), "
                              "each swapped to the other's decoder (the dataset section does not apply)"}
            verify_files(ASSETS.get(G.pairs_asset), [folder.files[i] for i in idx] + pairs["partners"])
        else:
            folder = open_dataset(cfg.dataset, pre.size, pre.crop)
            idx = select_images(folder, cfg.dataset)
            pairs = None if swap is None else swap_partners(cfg, folder, idx)
        files = [folder.files[i] for i in idx]
        if "asset" in cfg.dataset and (pairs is None or "source" not in pairs):
            spec = ASSETS.get(cfg.dataset["asset"])
            attrs = [spec.location() / cfg.dataset["attrs"]] if cfg.dataset.get("attrs") else []
            ids = [pairs["identities"]] if pairs and pairs["identities"].is_relative_to(spec.location()) else []
            verify_files(spec, files + attrs + (pairs["partners"] + ids if pairs else []))
        weights = _fingerprint(G)
        views[label] = {"G": G, "folder": folder, "idx": idx, "files": files, "weights": weights, "pairs": pairs,
                        "cache": out / "cache" / f"{gspec['name']}-{_key([gspec, weights])}"}
        plan.generators[label] = {"resolution": G.resolution, "crop": pre.crop, "n_images": len(idx),
                                  "weights": weights, "conditions": list(G.condition_names)}
        if getattr(G, "kind", "attribute") == "swap":  # a face swap: say which role the protected photo plays
            plan.generators[label]["kind"] = "swap"
            plan.generators[label]["protected_role"] = getattr(G, "protected_role", None)
        if swap is not None:
            plan.generators[label].update(
                conditions=["swap"], protected_role=swap["role"], judges=list(swap["judges"]), pairs=pairs["pairs"],
                swap_pairs=[[a, b] for a, b in zip(folder.names(idx), pairs["partner_names"])])
        if getattr(G, "edit_selection", None) is not None:  # edits: [...] kept a subset of the official edits
            plan.generators[label]["official_edits"] = list(G.official_edits)
            if getattr(G, "experimental_cleared", None):
                plan.generators[label]["judged_edits"] = (
                    f"only edits judged real are used ({', '.join(G.condition_names)} of the judged "
                    f"{', '.join(G.judged_edits)}; docs/results/attribute-judge.json), so these weights count; "
                    f"for their other edits they stay experimental ({G.experimental_cleared})")
        if getattr(G, "experimental", None):  # weights whose edits are not yet real enough to report on
            plan.generators[label]["experimental"] = str(G.experimental)
            print(f"pdbench: warning: generator {label!r} has experimental weights ({G.experimental}); "
                  "its numbers are marked experimental and are not fit for reporting", file=sys.stderr)
    transfer = cfg.transfer or {"from": [], "to": []}
    for gspec in cfg.generators:
        label = spec_label(gspec)
        v = views[label]
        G, folder, idx, files = v["G"], v["folder"], v["idx"], v["files"]
        pre = G.preprocessing
        hashes = [sha256_file(p) for p in files]
        names = folder.names(idx)
        pairs = v["pairs"]
        if pairs is not None:
            labels = pairs.get("labels")  # a swapper whose identities are its decoders: each photo's own
            partners = [str(p) for p in pairs["partners"]]
            partner_hashes = [sha256_file(Path(p)) for p in partners]
        else:
            labels = folder.labels(G.attributes, idx) if getattr(G, "attributes", None) else None
        targets = [t for t in transfer["to"] if t != label] if label in transfer["from"] else []
        starts = list(range(0, len(idx), cfg.batch_size))
        for b, i0 in enumerate(starts):
            sl = slice(i0, i0 + cfg.batch_size)
            judges = [_transfer_target(views[t], files[sl], next(g for g in cfg.generators if spec_label(g) == t))
                      for t in targets]
            for dspec in cfg.defenses:
                plan.cells.append(Cell(
                    generator=dict(gspec), weights=v["weights"], defense=dict(dspec),
                    defense_kwargs=_defense_kwargs(dspec, cfg.seed), settings=list(settings),
                    metrics=[dict(m) for m in cfg.metric_specs], batch=b, n_batches=len(starts),
                    files=[str(p) for p in files[sl]], sha256=hashes[sl], names=names[sl], indices=list(idx[sl]),
                    labels=None if labels is None else labels[sl].tolist(), resolution=pre.size, crop=pre.crop,
                    device=str(device), cache=str(v["cache"]), metrics_key=mkey, transfer=list(judges),
                    transfer_settings=transfer.get("settings"), publish=cfg.publish,
                    **({} if pairs is None else {
                        "swap_role": cfg.swap["role"], "partners": partners[sl], "partner_sha256": partner_hashes[sl],
                        "partner_names": pairs["partner_names"][sl], "judges": list(cfg.swap["judges"])})))
    return plan


# -- face swaps ------------------------------------------------------------------------------------------

def _swap_seed(cfg: BenchConfig) -> int:
    s = cfg.swap.get("seed")
    return int(cfg.dataset.get("seed", 0) if s is None else s)


def identity_file(cfg: BenchConfig) -> Path:
    """The dataset's identity file (``swap.identities``): relative to the asset (as ``attrs``) or a path; by
    default CelebA's ``identity_CelebA.txt`` beside the images or in the folder above them."""
    from ..train.simswap import IDENTITY_FILE

    ds, given = cfg.dataset, cfg.swap.get("identities")
    if "asset" in ds:
        root = resolve(ASSETS.get(ds["asset"]).name, check=False)
        images = root / ds.get("images", "")
        if given:
            return root / given
    else:
        images = Path(os.path.expandvars(ds["path"])).expanduser()
        if given:
            return Path(os.path.expandvars(given)).expanduser()
    for d in (images, images.parent):
        if (d / IDENTITY_FILE).is_file():
            return d / IDENTITY_FILE
    raise InputError(f"config: swap needs to know who is who in the dataset: no {IDENTITY_FILE} in {images} or its "
                     "parent; give swap.identities (a file of 'name id' lines, as CelebA's)")


def swap_partners(cfg: BenchConfig, folder: FaceFolder, idx: list[int]) -> dict:
    """Each protected photo's partner: a photo of a *different* person (by the identity file) from the same
    pool the photos are drawn from (the dataset's held-out split, when it has one), drawn by the swap
    seed and the photo's name alone (so a photo keeps its partner whatever n is)."""
    import random

    from ..train.simswap import read_identities

    path = identity_file(cfg)
    if not path.is_file():
        raise InputError(f"config: swap.identities {path} does not exist; give CelebA's identity_CelebA.txt "
                         "(or a file of 'name id' lines) relative to the dataset")
    ids = read_identities(path)
    pool = list(range(len(folder)))
    if cfg.dataset.get("holdout"):
        train, test = folder.split(int(cfg.dataset["holdout"]))
        pool = test if cfg.dataset.get("split", "test") == "test" else train
    unknown = [folder.files[i].name for i in set(pool) | set(idx) if folder.files[i].stem not in ids]
    if unknown:
        raise InputError(f"config: {len(unknown)} photo(s) of the dataset have no row in {path} (e.g. {sorted(unknown)[0]}); "
                         "give the identity file of these photos (swap.identities)")
    person = {i: ids[folder.files[i].stem] for i in pool}
    seed, out = _swap_seed(cfg), []
    for i in idx:
        me = ids[folder.files[i].stem]
        others = [j for j in pool if person[j] != me]
        if not others:
            raise InputError(f"config: every photo of the dataset's pool is of the same person as {folder.files[i].name}; "
                             "a swap needs photos of at least two people")
        out.append(random.Random(f"{seed}:{folder.files[i].name}").choice(others))
    return {"partners": [folder.files[j] for j in out], "partner_names": folder.names(out), "identities": path,
            "pairs": f"each photo with a photo of a different person (by {path.name}) from the same pool, drawn by "
                     f"seed {seed}"}


def swap_sides(role: str, x: torch.Tensor, partner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, target) photos of each swap: the protected photos x are the source or the target."""
    return (x, partner) if role == "source" else (partner, x)


def swap_target(G, x_partner: torch.Tensor, labels: torch.Tensor | None, role: str, n: int) -> Target:
    """What a defense attacks for a swapper: one swap per photo (K = 1), with its partner as the reference
    image (SimSwap) or, for a swapper whose identities are its decoders (aeswap), the other decoder."""
    if "reference" in G.inputs:
        cond = Condition(reference=x_partner.unsqueeze(0), role=role, names=("swap",))
    else:
        cond = Condition(attrs=G.swap_condition(labels, n), names=("swap",))
    return Target([TargetMember(G, cond)])


# per-image swap metrics of one set of swaps: name -> (what it is, direction for the protected swap)
def swap_metric_info(judges: list[str]) -> dict:
    info = {}
    for j in judges:
        info[f"swap_closer_{j}"] = ("1 when the swap is closer in identity (" + j + ") to the source than to the "
                                    "target, else 0; its mean is the closer-to-source rate", "lower=more disrupted")
        info[f"swap_cos_source_{j}"] = (f"cosine of the swap's and the source's {j} embeddings", "lower=more disrupted")
        info[f"swap_cos_target_{j}"] = (f"cosine of the swap's and the target's {j} embeddings", "")
    info["swap_landmark_nme"] = ("5-point landmark distance of the swap to the target / inter-ocular distance",
                                 "higher=more disrupted")
    info["swap_background_l1"] = ("mean |swap − target| outside the target's face ([-1, 1] scale)", "higher=more disrupted")
    return info


def swap_values(out: torch.Tensor, source: torch.Tensor, target: torch.Tensor, judges: list[str], memo: dict,
                prefix: str = "") -> dict[str, list[float]]:
    """Per-image swap metrics (:mod:`pdbench.metrics.swap`) of swaps ``out`` (N, 3, H, W) against their clean
    source and target photos; names of :func:`swap_metric_info`, with ``prefix``."""
    from ..metrics.swap import swap_identity, swap_keep

    out = out.detach().nan_to_num(0.0).clamp(-1, 1)
    ident = swap_identity(out, source, target, tuple(judges), memo)
    keep = swap_keep(out, target, memo)
    vals = {}
    for j in judges:
        r = ident[j]
        vals[f"{prefix}swap_closer_{j}"] = r["closer"].tolist()
        vals[f"{prefix}swap_cos_source_{j}"] = r["to_source"].tolist()
        vals[f"{prefix}swap_cos_target_{j}"] = r["to_target"].tolist()
    vals[f"{prefix}swap_landmark_nme"] = keep["landmark_nme"].tolist()
    vals[f"{prefix}swap_background_l1"] = keep["background_l1"].tolist()
    return vals


def _transfer_target(v: dict, files: list[Path], gspec: dict) -> TransferTarget:
    """Target generator ``v`` (a make_plan view) judging a batch of ``files``: its labels for those photos."""
    G, folder = v["G"], v["folder"]
    labels = None
    if getattr(G, "attributes", None):
        pos = {f: i for i, f in enumerate(folder.files)}
        labels = folder.labels(G.attributes, [pos[f] for f in files]).tolist()
    pre = G.preprocessing
    return TransferTarget(generator=dict(gspec), weights=v["weights"], labels=labels, resolution=pre.size,
                          crop=pre.crop, cache=str(v["cache"]))


# -- computing one cell -------------------------------------------------------------------------------

# Process-local memos of pure functions (loaded models, the last batch's clean images): caches only,
# a cell's result never depends on what they hold.
_MODELS: dict[str, object] = {}
_BATCH: dict[str, dict] = {}
_BATCH_KEEP = 4  # batches held in memory (a source view and its targets')


def _generator(gspec: dict, device: str):
    ckpt = gspec.get("checkpoint")
    path = Path(os.path.expandvars(ckpt)).expanduser() if ckpt else None
    content = sha256_file(path) if path is not None and path.is_file() else None  # a replaced file reloads
    key = _key(["G", gspec, content, device, asset_dir()])
    if key not in _MODELS:
        gkw = spec_params(gspec)
        _MODELS[key] = get_generator(gspec["name"], device=device, **gkw)  # a wrong architecture is one line
    return _MODELS[key]


def _fingerprint(G) -> str:
    fp = getattr(G, "_pdbench_fingerprint", None)
    if fp is None:
        fp = G.fingerprint()
        G._pdbench_fingerprint = fp
    return fp


def _metric(spec: dict):
    key = _key(["M", spec])
    if key not in _MODELS:
        _MODELS[key] = get_metric(spec["name"], **spec_params(spec))
    return _MODELS[key]


@contextmanager
def _using_assets(path: str | os.PathLike | None):
    if path is None or Path(path).resolve() == asset_dir():
        yield
        return
    old = os.environ.get("PDBENCH_ASSETS")
    os.environ["PDBENCH_ASSETS"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PDBENCH_ASSETS", None)
        else:
            os.environ["PDBENCH_ASSETS"] = old


def _read_cached(path: Path, read: Callable[[Path], object]):
    """The content of a cache file, or None when it is absent; a file that cannot be read is named,
    removed and recomputed."""
    if not path.exists():
        return None
    try:
        return read(path)
    except Exception as e:  # truncated, not JSON, not a torch file...
        print(f"pdbench: cache file {path} cannot be read ({type(e).__name__}); recomputing it", file=sys.stderr)
        path.unlink(missing_ok=True)
        return None


def _load_pt(path: Path, device):
    return lambda p: torch.load(p, map_location=device, weights_only=True)


def _read_rows(p: Path) -> list:
    rows = json.loads(p.read_text())
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "value" in r for r in rows):
        raise ValueError("not a list of result rows")
    return rows


@dataclass
class CellResult:
    rows: list[dict]
    reused: bool
    seconds: float | None = None  # wall seconds of computing the cell (in the run that did), None if unknown
    host: str = ""  # the machine that computed it


def _batch(cell: Cell, G, device) -> dict:
    """The cell's clean images, target and G(x) (cached on disk; the last batch also in memory)."""
    key = str(cell.batch_dir)
    if key in _BATCH:
        return _BATCH[key]
    for path, want in zip(cell.files + cell.partners, cell.sha256 + cell.partner_sha256):  # a swap's partners too
        if sha256_file(Path(path)) != want:
            raise InputError(f"{path} changed since the run was planned; run the same command again")
    load = lambda files: from_uint8(np.stack([preprocess(_load_image(Path(p)), cell.resolution, cell.crop)  # noqa: E731
                                              for p in files])).to(device)
    x = load(cell.files)
    labels = None if cell.labels is None else torch.tensor(cell.labels, dtype=torch.float32)
    partner = load(cell.partners) if cell.swap_role else None
    target = (Target.of(G, labels, len(cell.files)) if partner is None
              else swap_target(G, partner, labels, cell.swap_role, len(cell.files)))
    clean = _read_cached(cell.clean_file, _load_pt(cell.clean_file, device))
    if clean is None:
        with torch.inference_mode():
            clean = target.outputs(x)[0]
        torch_save(clean.cpu(), cell.clean_file)
    while len(_BATCH) >= _BATCH_KEEP:  # the oldest first: a source's batch and its targets' views alternate
        _BATCH.pop(next(iter(_BATCH)))
    _BATCH[key] = {"x": x, "target": target, "clean": clean.to(device), "x_memo": {}, "partner": partner,
                   "swap_memo": {}}
    return _BATCH[key]


def _read_values(p: Path) -> dict:
    d = json.loads(p.read_text())
    if not isinstance(d, dict) or not all(isinstance(v, list) for v in d.values()):
        raise ValueError("not a mapping of metric values")
    return d


def _swap_clean(cell: Cell, bt: dict) -> dict[str, list[float]]:
    """The swap metrics of the batch's clean swaps (``clean_swap_*``), cached beside its clean outputs."""
    held = bt.setdefault("swap_clean", {})
    name = cell.swap_clean_file.name
    if name not in held:
        vals = _read_cached(cell.swap_clean_file, _read_values)
        if vals is None:
            source, target = swap_sides(cell.swap_role, bt["x"], bt["partner"])
            vals = swap_values(bt["clean"][0], source, target, cell.judges, bt["swap_memo"], prefix="clean_")
            write_text(cell.swap_clean_file, json.dumps(vals))
        held[name] = vals
    return held[name]


def _finite_per_image(out: torch.Tensor) -> torch.Tensor:
    """(K, N, ...) generator outputs -> (N,) whether every edit of each image is finite."""
    return torch.isfinite(out).flatten(2).all(2).all(0)


def _defended(cell: Cell, values: dict, images_ok: torch.Tensor) -> dict:
    """Metric values with every metric of an image NaN where its images or outputs are not finite."""
    if bool(images_ok.all()):
        return values
    return {m: [v if ok else float("nan") for v, ok in zip(vals, images_ok.tolist())] for m, vals in values.items()}


def compute_cell(cell: Cell, assets: str | os.PathLike | None = None,
                 progress: Callable[[str], None] | None = None) -> CellResult:
    """The result rows of one cell (from its cache where complete). Depends only on the cell and the
    asset directory ``assets`` (default: the current one). ``progress`` receives short status strings.

    With transfer targets, the same x_adv (computed once, or read from ``adv.pt``) is also judged on each
    target (:func:`carry`), every setting the transfer block selects (default all), every metric: those rows
    carry ``source``/``target``."""
    settings, judged = cell.settings, cell.judged_settings
    files = {t.label(): cell.setting_file(t) for t in settings}
    cached = {lab: _read_cached(p, _read_rows) for lab, p in files.items()}
    tfiles = {(i, t.label()): cell.transfer_file(tt, t) for i, tt in enumerate(cell.transfer) for t in judged}
    tcached = {k: _read_cached(p, _read_rows) for k, p in tfiles.items()}
    if all(v is not None for v in cached.values()) and all(v is not None for v in tcached.values()):
        return CellResult([r for t in settings for r in cached[t.label()]]
                          + [r for i in range(len(cell.transfer)) for t in judged for r in tcached[(i, t.label())]], True)
    device = torch.device(cell.device)
    with _using_assets(assets):
        G = _checked_generator(cell)
        metrics = [(spec_label(m), _metric(m)) for m in cell.metrics]
        bt = _batch(cell, G, device)
        saved = _read_cached(cell.adv_file, _load_pt(cell.adv_file, device))
        if saved is None:
            defense = get_defense(cell.defense["name"], **cell.defense_kwargs)
            kw = {}
            if progress is not None and takes_progress(defense):
                kw["progress"] = lambda step, total: progress(f"step {step}/{total}")
            t0 = time.perf_counter()
            saved = _protect(cell, defense, bt, kw)
            saved["seconds"] = time.perf_counter() - t0
            torch_save(saved, cell.adv_file)
        x_adv, secs = saved["x_adv"].to(device), float(saved["seconds"])
        published = saved.get("published")  # native mode: the published photos, uint8 HWC
        g, d = spec_label(cell.generator), spec_label(cell.defense)
        rows: list[dict] = []
        for t in settings:
            lab = t.label()
            if cached[lab] is None:
                if progress is not None:
                    progress(lab)
                cached[lab] = _setting_rows(cell, t, bt, x_adv, metrics, {"generator": g, "defense": d}) + [
                    {"image": "*batch*", "generator": g, "defense": d, "setting": lab,
                     "metric": "protect_seconds_per_image", "value": secs / len(cell.files)}]
                write_text(files[lab], json.dumps(cached[lab]))
            rows += cached[lab]
        for i, tt in enumerate(cell.transfer):
            if all(tcached[(i, t.label())] is not None for t in judged):
                rows += [r for t in judged for r in tcached[(i, t.label())]]
                continue
            view = cell.view(tt)
            Gt = _checked_generator(view)
            bt_t = _batch(view, Gt, device)
            x_adv_t = (carry(cell, view, bt["x"], x_adv, _publish_eps(cell)) if published is None
                       else _read_back(published, view).to(device))
            gt = spec_label(tt.generator)
            for t in judged:
                key = (i, t.label())
                if tcached[key] is None:
                    if progress is not None:
                        progress(f"{t.label()} on {gt}")
                    tcached[key] = _setting_rows(view, t, bt_t, x_adv_t, metrics,
                                                 {"generator": gt, "source": g, "target": gt, "defense": d})
                    write_text(tfiles[key], json.dumps(tcached[key]))
                rows += tcached[key]
    return CellResult(rows, False)


def _protect(cell: Cell, defense, bt: dict, kw: dict) -> dict:
    """What ``adv.pt`` holds: ``x_adv`` at the model input; in ``native`` publish mode also ``published``,
    the photos as written (uint8 HWC, each at its own size), and x_adv is their read-back."""
    keys = torch.tensor(cell.indices)
    if cell.publish == "model-input":
        return {"x_adv": defense.protect(bt["x"], bt["target"], keys=keys, **kw).cpu()}
    from ..publish import protect_images

    imgs = [_load_image(Path(p)) for p in cell.files]
    done = protect_images(defense, bt["target"], imgs, keys=keys, mode=cell.publish, eps=_publish_eps(cell),
                          progress=kw.get("progress"))
    published = [torch.from_numpy(p) for p in done.published]
    return {"x_adv": _read_back(published, cell), "published": published}


def _read_back(published: list, cell: Cell) -> torch.Tensor:
    """Published photos (uint8 HWC tensors) as ``cell``'s generator reads them: its official crop and
    Pillow resize, (N, 3, r, r) in [-1, 1]."""
    from PIL import Image

    return from_uint8(np.stack([preprocess(Image.fromarray(p.numpy()), cell.resolution, cell.crop) for p in published]))


def _checked_generator(cell: Cell):
    G = _generator(cell.generator, cell.device)
    if _fingerprint(G) != cell.weights:
        raise AssetCorruptError(f"generator {spec_label(cell.generator)} weights changed since the run was planned "
                                f"({cell.weights} -> {_fingerprint(G)}); run the same command again")
    return G


def _setting_rows(cell: Cell, t, bt: dict, x_adv: torch.Tensor, metrics: list, tags: dict) -> list[dict]:
    """One row per image × metric of setting ``t`` applied to ``x_adv`` and fed to the batch's target
    (``bt`` from :func:`_batch`); ``tags`` (generator, defense, and for transfer source/target) label them."""
    x, target, out_clean = bt["x"], bt["target"], bt["clean"]
    n, lab = len(cell.files), t.label()
    with torch.inference_mode():
        out_adv = target.outputs(t(x_adv))[0]
        ok = (_finite_per_image(out_adv) & _finite_per_image(out_clean) & torch.isfinite(x_adv).flatten(1).all(1)).cpu()
        inp = MetricInputs(x, x_adv, out_clean, out_adv.nan_to_num(0.0), x_memo=bt["x_memo"])
        values = {}
        for mlab, m in metrics:
            v = m(inp)
            if not isinstance(v, torch.Tensor) or v.shape != (n,):
                raise PdbenchError(f"metric {mlab} returned shape {tuple(getattr(v, 'shape', ()))}, "
                                   f"expected one value per image ({n},); fix the metric")
            values[mlab] = v.tolist()
    if cell.swap_role is not None:  # a face swap: whose identity the clean and the protected swaps have
        source, target_img = swap_sides(cell.swap_role, x, bt["partner"])
        values.update(_swap_clean(cell, bt))
        values.update(swap_values(out_adv[0], source, target_img, cell.judges, bt["swap_memo"]))
    values = _defended(cell, values, ok)
    return [{"image": name, **tags, "setting": lab, "metric": mlab, "value": values[mlab][j]}
            for j, name in enumerate(cell.names) for mlab in values]


def _publish_eps(cell: Cell) -> float:
    """The L∞ bound the publish stage keeps a carried perturbation in: the defense's ε where it bounds RGB
    (norm ``linf``), else none (2 on the [-1, 1] scale)."""
    defense = get_defense(cell.defense["name"], **cell.defense_kwargs)
    eps = getattr(defense, "eps", None)
    return float(eps) if eps is not None and getattr(defense, "norm", "linf") == "linf" else 2.0


def carry(source: Cell, target: Cell, x: torch.Tensor, x_adv: torch.Tensor, eps: float) -> torch.Tensor:
    """The source cell's protected images as the target cell's generator reads them (N, 3, r_t, r_t).

    Same view (resolution and crop): ``x_adv`` itself. Otherwise each photo is published with its
    perturbation (:func:`pdbench.publish.publish_upsampled`: x_adv − x upsampled onto the source's crop
    square of the photo, rounded to 8 bits, within ``eps``) and read back with the target's own crop and
    resize. An image whose x_adv is not finite stays NaN (its rows are undefined, not "not disrupted")."""
    from PIL import Image

    from ..publish import publish_upsampled

    if (source.resolution, source.crop) == (target.resolution, target.crop):
        return x_adv
    ok = torch.isfinite(x_adv).flatten(1).all(1).cpu()
    xa = x_adv.nan_to_num(0.0)
    out = []
    for j, path in enumerate(source.files):
        pub = publish_upsampled(_load_image(Path(path)), x[j], xa[j], source.crop, eps)
        out.append(preprocess(Image.fromarray(pub), target.resolution, target.crop))
    y = from_uint8(np.stack(out)).to(x_adv.device)
    y[~ok.to(y.device)] = float("nan")
    return y


# -- executors ------------------------------------------------------------------------------------------

def _read_timing(p: Path) -> dict:
    d = json.loads(p.read_text())
    if not isinstance(d, dict) or not isinstance(d.get("seconds"), (int, float)):
        raise ValueError("not a cell timing")
    return d


def timed_compute(cell: Cell, assets: str | os.PathLike | None = None,
                  progress: Callable[[str], None] | None = None) -> CellResult:
    """:func:`compute_cell` with the cell's wall seconds and host: measured (and kept beside the cell's
    rows) when it computes, read back when the cell is reused. What every executor calls."""
    t0 = time.perf_counter()
    res = compute_cell(cell, assets, progress)
    if res.reused:
        saved = _read_cached(cell.timing_file, _read_timing) or {}
        res.seconds, res.host = saved.get("seconds"), str(saved.get("host", ""))
    else:
        res.seconds, res.host = time.perf_counter() - t0, socket.gethostname()
        write_text(cell.timing_file, json.dumps({"seconds": res.seconds, "host": res.host}))
    return res


class LocalExecutor:
    """Computes cells one after another in this process (the default)."""

    name = "local"
    workers = 1

    def run(self, cells: list[Cell], assets: str | os.PathLike | None = None,
            on_progress: Callable[[Cell, str], None] | None = None) -> Iterator[tuple[Cell, CellResult]]:
        for cell in cells:
            cb = None if on_progress is None else (lambda msg, c=cell: on_progress(c, msg))
            yield cell, timed_compute(cell, assets, cb)


EXECUTORS = ("local", "ray")


def make_executor(spec: str | dict | None, device: str = "auto"):
    """The executor of a config's ``executor`` entry: ``local`` (default), ``ray`` or
    ``{name: ray, address: ..., cpus_per_cell: ..., gpus_per_cell: ...}``; ``device`` is the config's
    (``auto`` lets a Ray cluster's GPUs be used)."""
    spec = {"name": spec or "local"} if not isinstance(spec, dict) else dict(spec)
    name = spec.pop("name", "local")
    if name == "local":
        if spec:
            raise InputError(f"executor 'local' takes no parameters (got {', '.join(sorted(spec))}); drop them or use ray")
        return LocalExecutor()
    if name == "ray":
        from .ray_executor import RayExecutor  # Ray is optional: imported only when asked for

        return RayExecutor(device=device, **spec)
    raise InputError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")


# -- the run --------------------------------------------------------------------------------------------

@contextmanager
def _running(executor):
    """An executor's cluster joined (or refused) before any work, and left after the run, whatever happens."""
    getattr(executor, "start", lambda: None)()
    try:
        yield executor
    finally:
        getattr(executor, "stop", lambda: None)()


class _Progress:
    """The bar over the whole matrix: cells done (of all), images per second of the cells computed in
    this run (reused ones are not work), and the ETA of the cells left at that rate."""

    def __init__(self, cells: list[Cell], desc: str, enabled: bool):
        self.left = sum(len(c.files) for c in cells)
        self.images = 0  # computed in this run
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=len(cells), desc=desc, unit="cell", disable=not enabled, dynamic_ncols=True,
                        bar_format="{desc}: {n_fmt}/{total_fmt} cells |{bar}| {elapsed}{postfix}")
        self.current = ""

    def rate(self) -> float | None:
        dt = time.perf_counter() - self.t0
        return self.images / dt if self.images and dt > 0 else None

    def _postfix(self, refresh: bool) -> None:
        r = self.rate()
        speed = f"{r:.2f} img/s, ETA {tqdm.format_interval(self.left / r)}" if r else "ETA ?"
        if not self.left:
            speed = f"{r:.2f} img/s" if r else ""
        self.bar.set_postfix_str(", ".join(x for x in (speed, self.current) if x), refresh=refresh)

    def show(self, cell: Cell, msg: str) -> None:
        self.current = f"{cell.label()} {msg}"
        self._postfix(True)

    def done(self, cell: Cell, res: CellResult) -> None:
        n = len(cell.files)
        self.left -= n
        if not res.reused:
            self.images += n
        self.current = cell.label()
        self._postfix(False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run(cfg: BenchConfig, progress: bool = True, on_cell: Callable[[str], None] | None = None,
        executor=None) -> dict:
    """Run (or resume) the benchmark; returns counts of computed and reused cells, the images, the wall
    seconds, the executor and the output paths. ``executor``: an executor object, ``"local"``,
    ``"ray"`` or None (the config's ``executor``, default local)."""
    cfg.validate()  # again: a caller may have changed the config since it was loaded
    for m in cfg.metric_specs:  # parameter values (a detector's name...) are checked by building the metric
        _metric(m)
    device = resolve_device(cfg.device)
    if executor is None or isinstance(executor, (str, dict)):
        executor = make_executor(cfg.executor if executor is None else executor, cfg.device)
    out = Path(cfg.out)
    stats = {"computed": 0, "reused": 0}
    t0 = time.perf_counter()
    with _running(executor), RunFolder(out, cfg.content_key(), cfg.name):
        plan = make_plan(cfg, device, out)
        where = {id(c): i for i, c in enumerate(plan.cells)}
        results: list[CellResult | None] = [None] * len(plan.cells)
        bar = _Progress(plan.cells, cfg.name, progress)
        done = executor.run(plan.cells, asset_dir(), bar.show if progress else None)
        try:
            try:
                for cell, res in done:
                    results[where[id(cell)]] = res
                    stats["reused" if res.reused else "computed"] += 1
                    bar.done(cell, res)
                    if on_cell is not None and not res.reused:
                        on_cell(f"{cell.cache}/{cell.defense_key}/b{cell.batch}")
            finally:
                getattr(done, "close", lambda: None)()  # a distributed executor cancels what is still running
                bar.close()
            missing = [c.label() for c, r in zip(plan.cells, results) if r is None]
            if missing:
                raise PdbenchError(f"executor {executor.name} returned no result for {len(missing)} cell(s) "
                                   f"({missing[0]}, ...); run the same command again to compute them")
        except (KeyboardInterrupt, Exception) as e:  # Ctrl-C, SIGTERM (the CLI's), a cell that raised
            info = {**stats, "cells": len(plan.cells), "seconds": time.perf_counter() - t0, "executor": executor.name,
                    "workers": getattr(executor, "workers", 1)}
            collect_partial(cfg, plan, results, device, info, e)
            raise
        seconds = time.perf_counter() - t0
        images = sum(len(c.files) for c in plan.cells)
        computed = sum(len(c.files) for c, r in zip(plan.cells, results) if not r.reused)
        stats.update({"cells": len(plan.cells), "images": images, "seconds": seconds, "executor": executor.name,
                      "workers": getattr(executor, "workers", 1),
                      "images_per_second": computed / seconds if computed and seconds > 0 else None})
        stats.update(collect(cfg, plan, results, device, run_info=dict(stats)))
    return stats


def summary_line(stats: dict) -> str:
    """The line that ends a run: cells computed and reused, protected images, wall time, rate, executor."""
    rate = stats.get("images_per_second")
    workers = stats.get("workers") or 1
    on = stats.get("executor", "local") + (f" ({workers} workers)" if workers > 1 else "")
    return (f"{stats['cells']} cell(s), {stats['images']} protected image(s): {stats['computed']} computed, "
            f"{stats['reused']} reused, in {tqdm.format_interval(stats['seconds'])}"
            + (f" ({rate:.2f} images/s)" if rate else "") + f" on {on}")


def _gather(cfg: BenchConfig, plan: Plan, results: list[CellResult | None], device,
            run_info: dict | None, partial: bool = False) -> tuple[dict, list[dict]]:
    """The metadata with per-cell means, and the tidy rows, of the cells with a result (``results`` in plan
    order, None for a cell not finished). A generator's image grid is drawn when every cell of its first
    batch has finished (``partial``: a grid that cannot be drawn is left out instead of raising)."""
    from ..metrics import METRICS
    from ..report.pdb import pdb_aggregates

    out = Path(cfg.out)
    done = [(c, r) for c, r in zip(plan.cells, results) if r is not None]
    rows = [row for _, res in done for row in res.rows]
    meta: dict = {"name": cfg.name, "config": cfg.__dict__, "config_key": cfg.content_key(),
                  "results_key": plan.results_key(out),
                  "generators": plan.generators,
                  "metrics": {lab: METRICS.get(m["name"]).info() for lab, m in zip(cfg.metrics, cfg.metric_specs)},
                  "run": run_info or {},
                  "cells": [{"generator": spec_label(c.generator), "defense": spec_label(c.defense), "batch": c.batch,
                             "images": len(c.files), "seconds": r.seconds, "host": r.host, "reused": r.reused}
                            for c, r in done]}
    for gspec in cfg.generators:
        first = [(c, r) for c, r in zip(plan.cells, results) if c.batch == 0 and c.generator == gspec]
        gi = meta["generators"][spec_label(gspec)]
        gi.pop("grid", None)
        if first and all(r is not None for _, r in first):
            try:
                gi["grid"] = _grid([c for c, _ in first], out / f"grid-{gspec['name']}{'-' + _key(gspec) if spec_params(gspec) else ''}.png", device).name
            except Exception:
                if not partial:
                    raise
    meta["summary"] = summarise([r for r in rows if "source" not in r], cfg.metrics)
    if cfg.swap is not None:
        info = swap_metric_info(cfg.swap["judges"])
        meta["swap"] = {**cfg.swap, "metrics": {
            **{k: {"description": d, "direction": w, "of": "the swap of the protected photo"} for k, (d, w) in info.items()},
            **{f"clean_{k}": {"description": d, "of": "the swap of the clean photo"} for k, (d, _) in info.items()}}}
    te_entries = None
    if cfg.transfer is not None:
        bb = summarise([r for r in rows if "source" in r], cfg.metrics)
        meta["transfer"] = {**cfg.transfer, "setting": TE_SETTING, "summary": bb}
        te_entries = transfer_entries(meta["summary"], bb, cfg.transfer)
    meta["aggregates"] = pdb_aggregates(meta["summary"], te_entries=te_entries)
    return meta, rows


def _summary_md(meta: dict, cfg: BenchConfig) -> str:
    from ..report.findings import findings_markdown
    from ..report.markdown import summary_table

    return summary_table(meta, cfg.metrics) + "\n" + findings_markdown(meta, meta["findings"])


def collect(cfg: BenchConfig, plan: Plan, results: list[CellResult], device, run_info: dict | None = None) -> dict:
    """Write the tidy table, the metadata with per-cell means and the Markdown summary (atomically).
    ``results`` are in plan order; ``run_info`` (executor, wall seconds...) goes into the metadata."""
    from ..report.findings import compute as compute_findings
    from ..report.html import write_html_report

    out = Path(cfg.out)
    meta, rows = _gather(cfg, plan, results, device, run_info)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["image", "generator", "source", "target", "defense", "setting", "metric", "value"])
    w.writeheader()
    w.writerows({"source": r["generator"], "target": r["generator"], **r} for r in rows)  # white box: source = target
    write_text(out / "results.csv", buf.getvalue())
    meta["results_csv_sha256"] = sha256_file(out / "results.csv")  # how a later partial run knows the file is ours
    meta["findings"] = compute_findings(meta)  # before results.json: it keeps the purification costs it measured
    write_text(out / "results.json", json.dumps(meta, indent=1, default=str))
    write_text(out / "summary.md", _summary_md(meta, cfg))
    html = write_html_report(out)
    return {"results": str(out / "results.csv"), "summary": str(out / "summary.md"), "json": str(out / "results.json"),
            "report": str(html)}


def _stop_reason(e: BaseException) -> str:
    if isinstance(e, KeyboardInterrupt):
        return "interrupted (Ctrl-C or SIGTERM)"
    return f"{type(e).__name__}: {e}".splitlines()[0][:200]


CSV_HEADER = "image,generator,source,target,defense,setting,metric,value"  # the first line of collect's results.csv
STALE = {"results.json": "results.stale.json", "results.csv": "results.stale.csv"}


def _own_results(json_path: Path, config_key: str) -> dict | None:
    """The metadata of a results.json that pdbench's :func:`collect` wrote for this folder's config, else None."""
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("config_key") == config_key and "summary" in meta else None


def _own_csv(csv_path: Path, meta: dict) -> bool:
    """Whether ``csv_path`` is the results.csv written with ``meta`` (its recorded sha256; for a run folder
    of a pdbench that did not record it, its header)."""
    try:
        if meta.get("results_csv_sha256"):
            return sha256_file(csv_path) == meta["results_csv_sha256"]
        with open(csv_path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n") == CSV_HEADER
    except (OSError, UnicodeDecodeError):
        return False


def _set_aside_stale(out: Path, config_key: str, results_key: str) -> str | None:
    """Before a partial summary: make an earlier complete run's results.json / results.csv beside it
    unmistakable. Those of this same plan (same weights, photos, settings, metrics: ``results_key``) stay,
    and the returned note says they are current; those of other inputs (or of a pdbench that did not record
    the key) are renamed ``results.stale.json`` / ``results.stale.csv`` (replacing only pdbench's own
    earlier ones). Files pdbench did not write are never touched: the note names them instead."""
    j, c = out / "results.json", out / "results.csv"
    if not j.exists():
        return ("results.csv beside this summary has no results.json of a complete run beside it; do not read it as "
                "this run's table.") if c.exists() else None
    old = _own_results(j, config_key)
    if old is None:
        return "results.json beside this summary was not written by a complete pdbench run of this config; it is not this run's."
    csv_ours = c.exists() and _own_csv(c, old)
    csv_note = "" if csv_ours or not c.exists() else " results.csv was changed after pdbench wrote it and is left as it is."
    if old.get("results_key") == results_key:
        return ("results.json" + (" and results.csv beside this summary are" if csv_ours else " beside this summary is")
                + " the complete results of an earlier run of this same plan (the same config, weights and photos)."
                + csv_note)
    sj, sc = out / STALE["results.json"], out / STALE["results.csv"]
    stale_meta = _own_results(sj, config_key) if sj.exists() else {}
    if stale_meta is None or (csv_ours and sc.exists() and not _own_csv(sc, stale_meta)):
        return ("results.json beside this summary holds the complete results of an earlier run of other inputs (weights, "
                "photos or metric weights), not this run's numbers; it was left in place because "
                f"{STALE['results.json']} / {STALE['results.csv']} exist and are not pdbench's.")
    if csv_ours:
        os.replace(c, sc)
    elif sc.exists() and _own_csv(sc, stale_meta):
        sc.unlink()  # the table of the stale results.json replaced below: it would pair with the wrong one
    os.replace(j, sj)  # last: while it stands, a retry finds the files again
    return (f"The complete results of an earlier run of other inputs (weights, photos or metric weights) were renamed "
            f"{sj.name}" + (f" and {sc.name}" if csv_ours else "") + ": they are not this run's numbers." + csv_note)


def _finished_images(plan: Plan, results: list[CellResult | None]) -> dict:
    """Per generator label: the images with a finished cell, and per defense the images it finished."""
    done: dict = {}
    for c, r in zip(plan.cells, results):
        g = done.setdefault(spec_label(c.generator), {"names": set(), "by_defense": {}})
        d = spec_label(c.defense)
        g["by_defense"][d] = g["by_defense"].get(d, 0) + (len(c.files) if r is not None else 0)
        if r is not None:
            g["names"].update(c.names)
    return {k: {"images": len(v["names"]), "by_defense": v["by_defense"]} for k, v in done.items()}


def collect_partial(cfg: BenchConfig, plan: Plan, results: list[CellResult | None], device, run_info: dict,
                    stop: BaseException) -> dict | None:
    """After a run stopped early (``stop``: Ctrl-C, a cell that raised...): summary.md and report.html of the
    cells that finished, marked partial ("N of M cells finished; rerun the same command to resume"; each
    generator's images as finished of planned), atomically. results.csv and results.json are written by
    complete runs only; an earlier complete run's pair of other inputs is renamed ``results.stale.*``
    (:func:`_set_aside_stale`) and the summary says what became of it. Nothing is written when no cell
    finished; a failure here is one line on stderr and never hides ``stop`` (the caller re-raises it).
    The resumed run's :func:`collect` replaces both files with the complete ones."""
    n = sum(r is not None for r in results)
    if not n:
        return None
    out = Path(cfg.out)
    try:
        from ..report.findings import compute as compute_findings
        from ..report.html import render_html

        meta, _ = _gather(cfg, plan, results, device, run_info, partial=True)
        finished = _finished_images(plan, results)
        meta["generators"] = {g: {**gi, "finished": finished[g]} for g, gi in meta["generators"].items()}
        meta["partial"] = {"finished": n, "cells": len(plan.cells), "stopped": _stop_reason(stop)}
        try:
            note = _set_aside_stale(out, cfg.content_key(), meta["results_key"])
        except OSError as e:
            note = (f"results.json beside this summary may hold an earlier run's results, not this run's (renaming it "
                    f"failed: {e.strerror or type(e).__name__}).")
        if note:
            meta["partial"]["results_files"] = note
        meta["findings"] = compute_findings(meta, measure=False)  # no photos opened while stopping
        if meta["findings"]["purification_note"]:
            meta["findings"]["purification_note"] = "not measured in a partial summary (the complete run measures it)"
        write_text(out / "summary.md", _summary_md(meta, cfg))
        write_text(out / "report.html", render_html(meta, out, meta["findings"]))
    except Exception as e:  # noqa: BLE001 -- the run's own error is the one to report
        print(f"pdbench: warning: could not write the partial summary ({_stop_reason(e)})", file=sys.stderr)
        return None
    print(f"pdbench: {n} of {len(plan.cells)} cells finished; their partial summary is in {out / 'summary.md'} and "
          f"{out / 'report.html'}; rerun the same command to resume", file=sys.stderr)
    return {"summary": str(out / "summary.md"), "report": str(out / "report.html")}


TE_SETTING = "none"  # PDB's TE: the perturbations unprocessed


def transfer_entries(summary: list[dict], transfer_summary: list[dict], transfer: dict) -> list[dict]:
    """The (defense, source, target) means :func:`pdbench.report.pdb.te_aggregates` takes, unprocessed
    (setting ``none``): the white-box entries (source = target) of the generators in the matrix, and the
    transfer entries."""
    names = set(transfer["from"]) | set(transfer["to"])
    wb = [{**e, "source": e["generator"], "target": e["generator"]} for e in summary
          if e["setting"] == TE_SETTING and e["generator"] in names]
    return wb + [e for e in transfer_summary if e["setting"] == TE_SETTING]


@torch.inference_mode()
def _grid(cells: list[Cell], dest: Path, device) -> Path:
    """Grid of up to four images of the first batch: x, G(x), then x_adv, G(x_adv) per defense."""
    from ..report.grid import defense_grid

    first = cells[0]
    G = _generator(first.generator, first.device)
    bt = _batch(first, G, torch.device(first.device))
    m = min(4, len(first.files))
    x = bt["x"][:m]
    labels = None if first.labels is None else torch.tensor(first.labels[:m], dtype=torch.float32)
    target = Target.of(G, labels, m) if first.swap_role is None else bt["target"].subset(slice(0, m))
    cols = {}
    for cell in cells:
        x_adv = torch.load(cell.adv_file, map_location=device, weights_only=True)["x_adv"][:m]
        cols[spec_label(cell.defense)] = (x_adv, target.outputs(x_adv)[0][0])
    return defense_grid(x, bt["clean"][0, :m], cols, dest)


def summarise(rows: list[dict], metric_names: list[str]) -> list[dict]:
    """Per-cell (generator, defense, setting) means of every metric over the images where it is defined;
    ``undefined`` counts, per metric, the images where it is not (NaN). Transfer rows (with ``source``)
    are grouped by their source too, and their entries carry ``source`` and ``target``."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        key = (r["generator"], r["defense"], r["setting"], r.get("source"))
        cells.setdefault(key, {}).setdefault(r["metric"], []).append(float(r["value"]))
    out = []
    for (g, d, s, src), vals in cells.items():
        entry = {"generator": g, "defense": d, "setting": s,
                 "n_images": len(vals.get(metric_names[0], [])) if metric_names else 0}
        if src is not None:
            entry.update(source=src, target=g)
        undefined = {}
        for m, v in vals.items():
            ok = [a for a in v if a == a]  # NaN: not defined for that image (e.g. no face found on the clean image)
            entry[m] = sum(ok) / len(ok) if ok else None
            if len(ok) < len(v):
                undefined[m] = len(v) - len(ok)
        if undefined:
            entry["undefined"] = undefined
        out.append(entry)
    return out
