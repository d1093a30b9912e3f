"""Speed, measured against the limit: achieved FLOP/s of a PGD step against this machine's measured peak,
pdbench against a re-creation of PDB's reference loop, and CPU speed-ups tried one at a time.

    PDBENCH_ASSETS=../shared/assets python benchmarks/speed.py [--quick] [--threads 1] [--device cpu|cuda]
                                                               [--sections abcd]
                                                               [--n 4] [--steps 30] [--repeats 3]
                                                               [--json docs/results/speed.json]

All on real CelebA faces (held-out split of ``celeba-10k-89px``, 64 px, each generator's own crop and
its official edits of the photo's true attributes) and pdbench's shipped StarGAN and AttGAN.

(a) **FLOP/s of a PGD step.** One step of pdbench's ``pgd`` (forward and backward through the generator
    for N images × K edits in one batch, sign update, projection) is counted with
    ``torch.utils.flop_counter.FlopCounterMode`` and timed; achieved FLOP/s = FLOPs / step time. The
    peaks are measured in the same run: a large fp32 matmul and the generator's dominant convolution
    (the conv shape that carries most of its FLOPs, at the step's batch), forward only.
(b) **pdbench against PDB's reference loop.** ``pdb_pgd`` re-creates PDB's
    ``disrupting_methods/PGD/pgd.py`` as ``attacks/batch_pgd_attack.py`` drives it through its
    StarGAN wrapper: one image at a time (batch 1), one edit at a time, fp32, random start from the
    global RNG (``--seed 42``), the clean output under ``no_grad``, ``F.mse_loss``, sign step,
    clamp to the ε-ball and [-1, 1] — for every image and each of StarGAN's K edits. pdbench solves the
    same N·K problems (same images, edits, ε, α, steps, loss) with its ``pgd`` defense as one batch of
    N·K rows. The two must give the same disruption: their per-(image, edit) MSEs differ only through
    the random start (PDB's global RNG against pdbench's per-image keys) and float summation order,
    so the paired differences are zero-mean noise and the means must agree within 3 standard errors
    of the paired difference. pdbench's default protocol (one protection per image against all K
    edits at once: the same N·K generator passes per step) is timed as well.
(c) **CPU speed-ups**, each against the fp32 baseline on the same step: channels-last memory format,
    another thread count, bf16 autocast, ``torch.compile`` (``--compile``; its compile time is reported in
    wall seconds: inductor compiles in worker processes, whose CPU time this process does not see, and
    reuses its on-disk cache on a second run), AttGAN's eval BatchNorm folded into its convolutions,
    ``inference_mode`` against ``no_grad`` for the clean references, one fused forward of G(x) and
    G(x_adv) for the metrics against two. The baseline is the plain network (``G.fast = False``), so
    these are the measurements the shipped speed path was chosen from.
(d) **The shipped default against the old path**: each generator with a speed path, as
    ``get_generator`` returns it (AttGAN: BatchNorm folded into a channels-last copy of its network,
    ``PDBENCH_FAST`` on), against the same weights with ``G.fast = False`` (the network as loaded, the
    path before it), on the same PGD step and on the metrics' clean forward (``inference_mode``), with
    the largest output and input-gradient differences between the two.

Timings: the machine may be shared, so absolute times are noisy. Every comparison is interleaved in one
run (A, B, B, A, A, B, ...; after one warm-up call each) and reported as the median of ``--repeats``
rounds, as wall-clock time and as process CPU time (the CPU time is the steadier figure on a loaded
machine at one thread; for the thread-count variant only wall time means anything). The default run
costs about 5 CPU-minutes at one thread (``--quick``: well under one); on a machine shared with
other jobs its wall time is longer by the load factor.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.defenses.base import project_linf
from pdbench.generators import Target, get_generator
from pdbench.generators import attgan
from pdbench.generators.base import Generator, TargetMember
from pdbench.io import write_json
from pdbench.tensors import resolve_device

GENERATORS = ("stargan", "attgan")
PDB_SEED = 42  # attacks/batch_pgd_attack.py --seed


# -- timing ------------------------------------------------------------------------------------------
def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def interleaved(fns: dict, repeats: int, dev: torch.device, warmup: dict | None = None) -> dict:
    """Run every function once (or its cheaper ``warmup`` stand-in: the same shapes, fewer steps), then
    ``repeats`` rounds alternating the order (A B, B A, ...); returns
    ``{name: {"wall": median s, "cpu": median s, "walls": [...], "cpus": [...]}}``."""
    for f in (warmup or fns).values():
        f()
    _sync(dev)
    walls, cpus = defaultdict(list), defaultdict(list)
    names = list(fns)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            _sync(dev)
            w0, c0 = time.perf_counter(), time.process_time()
            fns[name]()
            _sync(dev)
            walls[name].append(time.perf_counter() - w0)
            cpus[name].append(time.process_time() - c0)
    return {n: {"wall": statistics.median(walls[n]), "cpu": statistics.median(cpus[n]),
                "walls": walls[n], "cpus": cpus[n]} for n in names}


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


# -- data --------------------------------------------------------------------------------------------
def faces(G, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n held-out CelebA faces at G's resolution and crop, with G's attribute labels."""
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", G.resolution, attr_file=root / "list_attr_celeba_first20k.txt",
                    check_files=False, crop=G.crop)
    _, test = ds.split(1000)
    idx = ds.select(n, seed=0, pool=test)
    return ds.load(idx), ds.labels(G.attributes, idx)


# -- (a) FLOP/s against the peak ---------------------------------------------------------------------
def pgd_step(defense, x, target, refs):
    """One step of pdbench's sign-PGD (SignPGD.run's loop body) from a fixed point; returns a closure."""
    x_adv = project_linf(x + defense.eps / 2, x, defense.eps)

    def step():
        grad = defense.gradient(x_adv, 0, x, target, refs)
        return project_linf(x_adv.detach() + defense.alpha * grad.sign(), x, defense.eps)

    return step


def dominant_conv(G, x, cs) -> dict:
    """The convolution shape that carries most of G's forward FLOPs on (x, cs), with its share."""
    calls: dict = defaultdict(lambda: {"flops": 0, "calls": 0})
    hooks = []

    def hook(m, inp, out):
        i = inp[0]
        if isinstance(m, nn.ConvTranspose2d):
            f = 2 * i.numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        else:
            f = 2 * out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        key = (type(m).__name__, tuple(i.shape), tuple(m.weight.shape), m.stride, m.padding,
               getattr(m, "output_padding", (0, 0)))
        calls[key]["flops"] += f
        calls[key]["calls"] += 1

    for m in G.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            G.generate_many(x, cs)
    finally:
        for h in hooks:
            h.remove()
    total = sum(v["flops"] for v in calls.values())
    key, v = max(calls.items(), key=lambda kv: kv[1]["flops"])
    kind, in_shape, w_shape, stride, padding, out_pad = key
    return {"op": kind, "input": list(in_shape), "weight": list(w_shape), "stride": list(stride),
            "padding": list(padding), "output_padding": list(out_pad), "calls_per_forward": v["calls"],
            "share_of_conv_flops": v["flops"] / total}


def conv_peak_fn(spec: dict, dev: torch.device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*spec["input"], generator=g).to(dev)
    w = (0.05 * torch.randn(*spec["weight"], generator=g)).to(dev)
    if spec["op"] == "ConvTranspose2d":
        def f():
            with torch.inference_mode():
                return F.conv_transpose2d(x, w, stride=spec["stride"], padding=spec["padding"],
                                          output_padding=spec["output_padding"])
    else:
        def f():
            with torch.inference_mode():
                return F.conv2d(x, w, stride=spec["stride"], padding=spec["padding"])
    return f


def matmul_peak_fn(n: int, dev: torch.device):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g).to(dev), torch.randn(n, n, generator=g).to(dev)

    def f():
        with torch.inference_mode():
            return a @ b

    return f


def flops_vs_peak(gens: dict, data: dict, args, dev) -> dict:
    pgd = get_defense("pgd", steps=args.steps)
    fns, flops, shapes = {}, {}, {}
    for name, G in gens.items():
        x, labels = data[name]
        target = Target.of(G, labels, x.shape[0])
        refs = pgd.prepare(x, target)
        fns[f"{name} pgd step"] = pgd_step(pgd, x, target, refs)
        spec = dominant_conv(G, x, target.members[0].conditions)
        fns[f"{name} conv peak"] = conv_peak_fn(spec, dev)
        shapes[name] = {"images": x.shape[0], "edits": int(target.members[0].conditions.shape[0]),
                        "resolution": G.resolution, "dominant_conv": spec}
    fns["matmul peak"] = matmul_peak_fn(args.matmul, dev)
    for k, f in fns.items():
        flops[k] = count_flops(f)
    t = interleaved(fns, args.variant_repeats, dev)
    out = {"matmul": {"n": args.matmul, "flops": flops["matmul peak"], **_rates(flops["matmul peak"], t["matmul peak"])}}
    for name in gens:
        step, conv = f"{name} pgd step", f"{name} conv peak"
        out[name] = {**shapes[name], "step_flops": flops[step], **_rates(flops[step], t[step]),
                     "conv_peak": {"flops": flops[conv], **_rates(flops[conv], t[conv])}}
        for clock in ("wall", "cpu"):
            r = out[name][f"gflops_{clock}"]
            out[name][f"of_matmul_peak_{clock}"] = r / out["matmul"][f"gflops_{clock}"]
            out[name][f"of_conv_peak_{clock}"] = r / out[name]["conv_peak"][f"gflops_{clock}"]
    return out


def _rates(flops: int, t: dict) -> dict:
    return {"wall_s": t["wall"], "cpu_s": t["cpu"], "gflops_wall": flops / t["wall"] / 1e9,
            "gflops_cpu": flops / t["cpu"] / 1e9}


# -- (b) PDB's reference loop ------------------------------------------------------------------------
def pdb_pgd(net, x_source, c, epsilon=0.05, alpha=0.01, steps=30):
    """PDB's ``pgd_attack`` as its StarGAN wrapper runs it (``encode(x)`` is a copy of x, ``decode`` is
    the official generator ``G(x, c_trg)``): batch 1, one edit, fp32."""
    x_source = x_source.detach()
    x_adv = torch.clamp(x_source + torch.empty_like(x_source).uniform_(-epsilon, epsilon), -1, 1).detach()
    with torch.no_grad():
        decoded_src = net(x_source.clone(), c)
    for _ in range(steps):
        x_adv.requires_grad_()
        decoded_adv = net(x_adv.clone(), c)
        loss = F.mse_loss(decoded_src, decoded_adv)
        grad = torch.autograd.grad(loss, x_adv)[0]
        x_adv = x_adv + alpha * grad.sign()
        delta = torch.clamp(x_adv - x_source, -epsilon, epsilon)
        x_adv = torch.clamp(x_source + delta, -1, 1).detach()
    return x_adv


def pdb_loop(G, x, cs, steps, start_seeds=None):
    """Every edit and image, one attack each (PDB's loop), seeded once as its script is. -> (K, N, 3, H, W)

    ``start_seeds`` (K, N): seed the global RNG before each attack instead, so that its random start is
    the one pdbench draws for the same problem (a test of the two loops' equivalence)."""
    torch.manual_seed(PDB_SEED)
    out = []
    for k in range(cs.shape[0]):
        row = []
        for i in range(x.shape[0]):
            if start_seeds is not None:
                torch.manual_seed(int(start_seeds[k, i]))
            row.append(pdb_pgd(G.net, x[i:i + 1], cs[k, i:i + 1], steps=steps))
        out.append(torch.cat(row))
    return torch.stack(out)


def pair_mse(G, x, cs, x_adv) -> torch.Tensor:
    """MSE(G(x_adv[k, i], c[k, i]), G(x[i], c[k, i])) per (edit, image), unclamped as PDB computes it. (K, N)"""
    k, n = cs.shape[:2]
    with torch.inference_mode():
        clean = G.generate_many(x, cs)
        adv = G.generate(x_adv.reshape(k * n, *x.shape[1:]), cs.reshape(k * n, -1)).reshape(clean.shape)
    return (adv - clean).pow(2).mean(dim=(2, 3, 4))


def against_pdb(G, x, labels, args, dev) -> dict:
    n = x.shape[0]
    cs = G.conditions(labels, n)
    k = cs.shape[0]
    pgd = get_defense("pgd", steps=args.steps)
    x_pairs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
    pairs_target = Target([TargetMember(G, cs.reshape(1, k * n, -1))])
    joint_target = Target.of(G, labels, n)
    out: dict = {}

    def run_pdb(steps=args.steps):
        out["pdb"] = pdb_loop(G, x, cs.to(dev), steps)

    def run_pairs(defense=pgd):
        out["pairs"] = defense.protect(x_pairs, pairs_target, keys=torch.arange(k * n)).reshape(k, n, *x.shape[1:])

    def run_joint(defense=pgd):
        out["joint"] = defense.protect(x, joint_target)

    one = get_defense("pgd", steps=1)
    t = interleaved({"pdb_loop": run_pdb, "pdbench_pairs": run_pairs, "pdbench_joint": run_joint}, args.repeats, dev,
                    warmup={"pdb_loop": lambda: run_pdb(1), "pdbench_pairs": lambda: run_pairs(one),
                            "pdbench_joint": lambda: run_joint(one)})
    m_pdb = pair_mse(G, x, cs.to(dev), out["pdb"]).cpu()
    m_pairs = pair_mse(G, x, cs.to(dev), out["pairs"]).cpu()
    m_joint = pair_mse(G, x, cs.to(dev), out["joint"].unsqueeze(0).expand(k, *x.shape)).cpu()
    d = (m_pdb - m_pairs).flatten()
    se = float(d.std() / d.numel() ** 0.5)
    linf = {
        "pdb": float((out["pdb"] - x.unsqueeze(0)).abs().max()),
        "pdbench_pairs": float((out["pairs"] - x.unsqueeze(0)).abs().max()),
        "pdbench_joint": float((out["joint"] - x).abs().max())}
    # the same problems again with PDB's loop started where pdbench starts (its RNG seeded per problem as
    # pdbench seeds each image's start): a tight check that the two loops are one algorithm
    matched = pdb_loop(G, x, cs.to(dev), args.steps, start_seeds=(pgd.seed * 1_000_003 + torch.arange(k * n)).reshape(k, n))
    m_matched = pair_mse(G, x, cs.to(dev), matched).cpu()
    same_start = {"mse_pdb": float(m_matched.mean()), "mse_pdbench": float(m_pairs.mean()),
                  "rel_diff": float(m_matched.mean() / m_pairs.mean() - 1),
                  "max_pair_rel_diff": float(((m_matched - m_pairs).abs() / m_pairs).max()),
                  "pixels_differing": float((matched - out["pairs"]).abs().gt(1e-4).float().mean())}
    return {
        "generator": G.name, "images": n, "edits": k, "steps": args.steps, "eps": pgd.eps, "alpha": pgd.alpha,
        "timing": {a: {"wall_s": v["wall"], "cpu_s": v["cpu"]} for a, v in t.items()},
        "ratio_wall": t["pdb_loop"]["wall"] / t["pdbench_pairs"]["wall"],
        "ratio_cpu": t["pdb_loop"]["cpu"] / t["pdbench_pairs"]["cpu"],
        "ratio_joint_wall": t["pdb_loop"]["wall"] / t["pdbench_joint"]["wall"],
        "ratio_joint_cpu": t["pdb_loop"]["cpu"] / t["pdbench_joint"]["cpu"],
        "mse_pdb": float(m_pdb.mean()), "mse_pdbench_pairs": float(m_pairs.mean()),
        "mse_pdbench_joint": float(m_joint.mean()), "mean_diff": float(d.mean()), "se_diff": se,
        "agree": abs(float(d.mean())) <= 3 * se, "max_linf": linf, "same_start": same_start,
    }


# -- (c) CPU speed-ups -------------------------------------------------------------------------------
def _bench_step(G, x, labels, steps=1):
    pgd = get_defense("pgd", steps=steps)
    target = Target.of(G, labels, x.shape[0])
    return pgd, target, pgd.prepare(x, target)


def fold_batchnorm(G):
    """A copy of G (its speed path off) with every eval-mode BatchNorm folded into the convolution
    before it (:func:`pdbench.generators.attgan.fold_batchnorm`, here without channels-last), or None
    when G has none. Checked to give G's output."""
    if not isinstance(G, attgan.AttGAN):
        return None
    G2 = copy.deepcopy(G)
    G2.fast = False
    G2.net = attgan.fold_batchnorm(G.net, channels_last=False)
    dev = next(G.parameters()).device
    x = (torch.rand(2, 3, G.resolution, G.resolution) * 2 - 1).to(dev)
    cs = G.conditions(None, 2).to(dev)
    with torch.inference_mode():
        assert torch.allclose(G.generate_many(x, cs), G2.generate_many(x, cs), atol=1e-4), "BatchNorm folding changed G"
    return G2


def variants(gens: dict, data: dict, args, dev) -> dict:
    """Each speed-up against the fp32 baseline on the same PGD step, interleaved."""
    res: dict = {}
    threads = torch.get_num_threads()
    for name, G in gens.items():
        G = copy.deepcopy(G)
        G.fast = False  # the plain network: each speed-up is measured against it
        x, labels = data[name]
        pgd, target, refs = _bench_step(G, x, labels)
        fns = {"baseline": pgd_step(pgd, x, target, refs)}

        # channels-last: the generator's weights and the input in NHWC
        G_cl = copy.deepcopy(G).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        t_cl = Target.of(G_cl, labels, x.shape[0])
        fns["channels_last"] = pgd_step(pgd, x_cl, t_cl, pgd.prepare(x_cl, t_cl))
        # what a defense alone could do: only its images in NHWC, the caller's generator as it is
        fns["channels_last (images only)"] = pgd_step(pgd, x_cl, target, pgd.prepare(x_cl, target))

        folded = fold_batchnorm(G)
        if folded is not None:
            t_f = Target.of(folded, labels, x.shape[0])
            fns["conv+BatchNorm folded"] = pgd_step(pgd, x, t_f, pgd.prepare(x, t_f))
            folded_cl = copy.deepcopy(folded).to(memory_format=torch.channels_last)
            t_fc = Target.of(folded_cl, labels, x.shape[0])
            fns["folded + channels_last"] = pgd_step(pgd, x_cl, t_fc, pgd.prepare(x_cl, t_fc))

        other = 2 if threads == 1 else 1
        base = fns["baseline"]

        def other_threads(base=base, other=other):
            torch.set_num_threads(other)
            try:
                base()
            finally:
                torch.set_num_threads(threads)

        fns[f"threads={other}"] = other_threads

        if args.compile:
            G_c = copy.deepcopy(G)
            G_c.net.forward = torch.compile(G_c.net.forward)
            t_c = Target.of(G_c, labels, x.shape[0])
            f_c = pgd_step(pgd, x, t_c, pgd.prepare(x, t_c))
            w0, c0 = time.perf_counter(), time.process_time()
            f_c()
            res.setdefault(name, {})["compile"] = {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0}
            fns["torch.compile"] = f_c

        t = interleaved(fns, args.variant_repeats, dev)
        r = res.setdefault(name, {})
        r["step"] = {k: {"wall_s": v["wall"], "cpu_s": v["cpu"],
                         "speedup_wall": t["baseline"]["wall"] / v["wall"],
                         "speedup_cpu": t["baseline"]["cpu"] / v["cpu"]} for k, v in t.items()}

        # inference_mode vs no_grad for the clean references (what ObjectiveDefense.prepare does)
        def refs_with(ctx):
            def f():
                with ctx():
                    return target.outputs(x)
            return f

        t = interleaved({"inference_mode": refs_with(torch.inference_mode), "no_grad": refs_with(torch.no_grad)},
                        args.variant_repeats, dev)
        r["references"] = {k: {"wall_s": v["wall"], "cpu_s": v["cpu"]} for k, v in t.items()}

        # metrics: G(x) and G(x_adv) in one forward of 2N against two forwards
        x_adv = project_linf(x + pgd.eps / 2, x, pgd.eps)
        cs = target.members[0].conditions

        def two():
            with torch.inference_mode():
                return G.generate_many(x, cs), G.generate_many(x_adv, cs)

        def fused():
            with torch.inference_mode():
                return G.generate_many(torch.cat([x, x_adv]), torch.cat([cs, cs], dim=1)).chunk(2, dim=1)

        t = interleaved({"two_forwards": two, "fused_forward": fused}, args.variant_repeats, dev)
        r["metrics_forward"] = {k: {"wall_s": v["wall"], "cpu_s": v["cpu"]} for k, v in t.items()}

    # bf16 autocast: on one image and one edit (without native bf16 it is far too slow for the full batch),
    # timed against fp32 on the same step and checked on a short attack
    G = gens["stargan"]
    x, labels = data["stargan"]
    x1, l1 = x[:1], None if labels is None else labels[:1]
    pgd, target, refs = _bench_step(G, x1, l1)
    one = Target([TargetMember(G, target.members[0].conditions[:1])])
    refs1 = pgd.prepare(x1, one)
    f32 = pgd_step(pgd, x1, one, refs1)

    def bf16():
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            return f32()

    t = interleaved({"fp32": f32, "bf16_autocast": bf16}, args.repeats, dev)
    short = get_defense("pgd", steps=args.bf16_steps)
    xa32 = short.protect(x1, one)
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        xa16 = short.protect(x1, one)
    cs1 = one.members[0].conditions
    res["bf16"] = {"generator": "stargan", "images": 1, "edits": 1,
                   "step": {k: {"wall_s": v["wall"], "cpu_s": v["cpu"]} for k, v in t.items()},
                   "slowdown_cpu": t["bf16_autocast"]["cpu"] / t["fp32"]["cpu"],
                   "attack_steps": args.bf16_steps,
                   "mse_fp32": float(pair_mse(G, x1, cs1, xa32.unsqueeze(0)).mean()),
                   "mse_bf16": float(pair_mse(G, x1, cs1, xa16.unsqueeze(0)).mean())}
    return res


# -- (d) the shipped default against the old path ----------------------------------------------------
def has_speed_path(G) -> bool:
    return type(G).optimise_for_inference is not Generator.optimise_for_inference


def shipped(gens: dict, data: dict, args, dev) -> dict:
    """Each generator's shipped speed path (on, the default) against ``G.fast = False``, interleaved."""
    res: dict = {}
    for name, G in gens.items():
        if not has_speed_path(G):
            res[name] = {"speed_path": False}
            continue
        x, labels = data[name]
        old, new = copy.deepcopy(G), copy.deepcopy(G)
        old.fast, new.fast = False, True
        new.optimise_for_inference()
        steps, forwards, grads, outs = {}, {}, {}, {}
        for label, g in (("old", old), ("shipped", new)):
            pgd, target, refs = _bench_step(g, x, labels)
            steps[label] = pgd_step(pgd, x, target, refs)
            cs = target.members[0].conditions

            def forward(g=g, cs=cs):
                with torch.inference_mode():
                    return g.generate_many(x, cs)

            forwards[label] = forward
            outs[label] = forward()
            grads[label] = pgd.gradient(project_linf(x + pgd.eps / 2, x, pgd.eps), 0, x, target, refs)
        t_step = interleaved(steps, args.variant_repeats, dev)
        t_fwd = interleaved(forwards, args.variant_repeats, dev)
        ga, gb = grads["old"], grads["shipped"]
        res[name] = {
            "speed_path": True, "images": x.shape[0], "edits": int(outs["old"].shape[0]),
            "step": {k: {"wall_s": v["wall"], "cpu_s": v["cpu"]} for k, v in t_step.items()},
            "forward": {k: {"wall_s": v["wall"], "cpu_s": v["cpu"]} for k, v in t_fwd.items()},
            "speedup_step_cpu": t_step["old"]["cpu"] / t_step["shipped"]["cpu"],
            "speedup_step_wall": t_step["old"]["wall"] / t_step["shipped"]["wall"],
            "speedup_forward_cpu": t_fwd["old"]["cpu"] / t_fwd["shipped"]["cpu"],
            "speedup_forward_wall": t_fwd["old"]["wall"] / t_fwd["shipped"]["wall"],
            "max_abs_output_diff": float((outs["old"] - outs["shipped"]).abs().max()),
            "max_abs_grad_diff": float((ga - gb).abs().max()), "max_abs_grad": float(ga.abs().max()),
            "grad_sign_disagree": float((ga.sign() != gb.sign()).float().mean()),
        }
    return res


# -- report ------------------------------------------------------------------------------------------
def environment(dev: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {"torch": torch.__version__, "device": str(dev), "cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(dev)
    try:
        with open("/proc/loadavg") as f:
            env["loadavg_1min_at_start"] = float(f.read().split()[0])
    except OSError:
        pass
    return env


def table(res: dict) -> str:
    lines: list[str] = []
    if "flops" in res:
        a = res["flops"]
        lines += ["| generator | step (N×K) | GFLOP / step | step time (CPU s) | achieved GFLOP/s | matmul peak "
                  "| of matmul peak | conv peak | of conv peak |", "|---|---|---|---|---|---|---|---|---|"]
        for name in GENERATORS:
            r = a[name]
            lines.append(f"| {name} | {r['images']}×{r['edits']} | {r['step_flops'] / 1e9:.2f} | {r['cpu_s']:.3f} "
                         f"| {r['gflops_cpu']:.1f} | {a['matmul']['gflops_cpu']:.1f} | {100 * r['of_matmul_peak_cpu']:.0f}% "
                         f"| {r['conv_peak']['gflops_cpu']:.1f} | {100 * r['of_conv_peak_cpu']:.0f}% |")
    if "pdb" in res:
        b, tm = res["pdb"], res["pdb"]["timing"]
        lines += ["", f"| StarGAN, {b['images']} faces × {b['edits']} edits, {b['steps']} steps | CPU s | wall s "
                  "| mean MSE ↑ | PDB's time / this (CPU, wall) |", "|---|---|---|---|---|"]
        lines.append(f"| PDB's loop (batch 1, one edit at a time) | {tm['pdb_loop']['cpu_s']:.1f} | {tm['pdb_loop']['wall_s']:.1f} "
                     f"| {b['mse_pdb']:.4f} | 1 |")
        lines.append(f"| pdbench `pgd`, the same N·K problems in one batch | {tm['pdbench_pairs']['cpu_s']:.1f} "
                     f"| {tm['pdbench_pairs']['wall_s']:.1f} | {b['mse_pdbench_pairs']:.4f} "
                     f"| {b['ratio_cpu']:.2f}×, {b['ratio_wall']:.2f}× |")
        lines.append(f"| pdbench `pgd`, one protection per face against all K edits | {tm['pdbench_joint']['cpu_s']:.1f} "
                     f"| {tm['pdbench_joint']['wall_s']:.1f} | {b['mse_pdbench_joint']:.4f} "
                     f"| {b['ratio_joint_cpu']:.2f}×, {b['ratio_joint_wall']:.2f}× |")
    if "variants" in res:
        v = res["variants"]
        gens = [n for n in GENERATORS if n in v]
        lines += ["", "| speed-up of a PGD step (vs fp32, NCHW, the plain network) | " + " | ".join(gens) + " |",
                  "|---|" + "---|" * len(gens)]
        keys = [k for n in gens for k in v[n]["step"] if k != "baseline"]
        for key in dict.fromkeys(keys):
            cells = []
            for name in gens:
                s = v[name]["step"].get(key)
                if s is None:
                    cells.append("—")
                elif key.startswith("threads"):
                    cells.append(f"{s['speedup_wall']:.2f}× wall")
                else:
                    cells.append(f"{s['speedup_cpu']:.2f}× CPU, {s['speedup_wall']:.2f}× wall")
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        for name in gens:
            if "compile" in v[name]:
                c = v[name]["compile"]
                lines.append(f"| torch.compile: compiling {name} | {c['cpu_s']:.0f} s CPU, {c['wall_s']:.0f} s wall | |")
        for key, a_, b_ in (("references", "no_grad", "inference_mode"), ("metrics_forward", "two_forwards", "fused_forward")):
            cells = [f"{v[n][key][a_]['cpu_s'] / v[n][key][b_]['cpu_s']:.2f}× CPU" for n in gens]
            lines.append(f"| {b_} vs {a_} | " + " | ".join(cells) + " |")
        if "bf16" in v:
            bf = v["bf16"]
            lines.append(f"| bf16 autocast (StarGAN, 1 face, 1 edit) | {1 / bf['slowdown_cpu']:.3f}× CPU; after "
                         f"{bf['attack_steps']} steps MSE {bf['mse_bf16']:.4f} vs fp32 {bf['mse_fp32']:.4f} | |")
    if "shipped" in res:
        d = res["shipped"]
        lines += ["", "| shipped default (speed path on) vs the old path (`G.fast = False`) | PGD step (N×K) "
                  "| clean forward (metrics) | max abs Δ output | max abs Δ input grad (max abs grad) | grad signs differing |",
                  "|---|---|---|---|---|---|"]
        for name in GENERATORS:
            r = d.get(name)
            if r is None:
                continue
            if not r["speed_path"]:
                lines.append(f"| {name} | no speed path (channels-last measured slower): unchanged | | | | |")
                continue
            lines.append(f"| {name} | {r['speedup_step_cpu']:.2f}× CPU, {r['speedup_step_wall']:.2f}× wall ({r['images']}×{r['edits']}) "
                         f"| {r['speedup_forward_cpu']:.2f}× CPU, {r['speedup_forward_wall']:.2f}× wall "
                         f"| {r['max_abs_output_diff']:.1e} | {r['max_abs_grad_diff']:.1e} ({r['max_abs_grad']:.1e}) "
                         f"| {100 * r['grad_sign_disagree']:.3f}% |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=None, help="faces (default 4, --quick 2)")
    ap.add_argument("--steps", type=int, default=None, help="PGD steps for the PDB comparison (default 30, --quick 5)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3, --quick 2)")
    ap.add_argument("--variant-repeats", type=int, default=None,
                    help="interleaved rounds for the one-step speed-up comparisons (default 9, --quick 3)")
    ap.add_argument("--matmul", type=int, default=None, help="square fp32 matmul size for the peak (default 2048)")
    ap.add_argument("--bf16-steps", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also try torch.compile (compiles for minutes on a CPU)")
    ap.add_argument("--sections", default="abcd", help="which parts to run: a (FLOP/s), b (PDB's loop), c (speed-ups), d (shipped default vs old path)")
    ap.add_argument("--quick", action="store_true", help="fewer faces, steps and repeats (a smoke run)")
    ap.add_argument("--json", default=None, help="write the results here (atomically)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other sections of an existing --json file and replace only those run now "
                         "(each merged section records the env and args of its own run)")
    args = ap.parse_args()
    q = args.quick
    args.n = args.n or (2 if q else 4)
    args.steps = args.steps or (5 if q else 30)
    args.repeats = args.repeats or (2 if q else 3)
    args.variant_repeats = args.variant_repeats or (3 if q else 9)
    args.matmul = args.matmul or (1024 if q else 2048)
    args.bf16_steps = min(args.bf16_steps, 2) if q else args.bf16_steps
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    t0, c0 = time.perf_counter(), time.process_time()
    gens = {name: get_generator(name, device=dev) for name in GENERATORS}
    data = {}
    for name, G in gens.items():
        x, labels = faces(G, args.n)
        data[name] = (x.to(dev), labels)
    res = {"env": environment(dev), "args": {k: v for k, v in vars(args).items() if k != "json"}}
    if "a" in args.sections:
        res["flops"] = flops_vs_peak(gens, data, args, dev)
        print(f"(a) done in {time.perf_counter() - t0:.0f}s", flush=True)
    if "b" in args.sections:
        res["pdb"] = against_pdb(gens["stargan"], *data["stargan"], args, dev)
        print(f"(b) done in {time.perf_counter() - t0:.0f}s", flush=True)
    if "c" in args.sections:
        res["variants"] = variants(gens, data, args, dev)
        print(f"(c) done in {time.perf_counter() - t0:.0f}s", flush=True)
    if "d" in args.sections:
        res["shipped"] = shipped(gens, data, args, dev)
    res["env"]["total_wall_s"] = time.perf_counter() - t0
    res["env"]["total_cpu_s"] = time.process_time() - c0
    res["table"] = table(res)
    print(json.dumps(res["env"]))
    print(res["table"])
    if "pdb" in res:
        b, m = res["pdb"], res["pdb"]["same_start"]
        print(f"PDB loop vs pdbench: mean MSE {b['mse_pdb']:.4f} vs {b['mse_pdbench_pairs']:.4f}, paired diff "
              f"{b['mean_diff']:+.4f} ± {b['se_diff']:.4f} (SE): {'agree' if b['agree'] else 'DISAGREE'} within 3 SE; "
              f"from pdbench's starts: {m['mse_pdb']:.4f} vs {m['mse_pdbench']:.4f} ({100 * m['rel_diff']:+.2f}%, "
              f"{100 * m['pixels_differing']:.2f}% of pixels differ)")
    if args.json and args.merge and Path(args.json).exists():
        merged = json.loads(Path(args.json).read_text())
        for key in ("flops", "pdb", "variants", "shipped"):
            if key in res:
                merged[key] = res[key]
                merged.setdefault("runs", {})[key] = {"env": res["env"], "args": res["args"]}
        merged["table"] = table(merged)
        res = merged
    if args.json:
        write_json(args.json, res)


if __name__ == "__main__":
    main()
