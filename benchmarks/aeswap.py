"""Is pdbench's autoencoder face swap a real swapper? And what do PGD and LEAT do to it?

    PDBENCH_ASSETS=../shared/assets python benchmarks/aeswap.py [--checkpoint AE.safetensors] [--n 32]
                                                                [--attack-n 16] [--steps 30] [--json docs/results/aeswap.json]

Held-out LFW photos (the last 32 of each identity, sorted by name, never trained on), 64 px (centre
crop 0.6). Every held-out photo of George W. Bush is a *target* swapped to Colin Powell (his decoder),
and every one of Powell's to Bush: 2n swaps. The source of swap i, for the identity judges, is held-out
photo i of the other identity (a photo the decoder never saw). Swap metrics
(:mod:`pdbench.metrics.swap`): the closer-to-source rate and cosines under MobileFaceNet and dlib, the
5-point landmark NME and the background L1 outside the target's face. The 80 % rule: the swapper counts
as real when the rate is ≥ 0.8 under both judges, the landmark NME ≤ 0.10 and the background L1 ≤ 0.05.
Two references: ``no_swap_floor`` (the target returned unchanged: what the rate is with no swap at all)
and ``decoded_unpasted`` (the decoder's whole face before it is pasted: has the decoder learnt the
identity, whatever the paste does?).

Attacks (only reported when the swapper is real): the protected photo is the target (the only input of
this swapper); ``random`` (±ε signs), ``pgd`` (PDB's PGD through the swap) and ``leat`` (the shared
encoder's latent), ε 0.05, on ``--attack-n`` photos of each identity. Columns: MSE and LPIPS of the
swap of the clean vs the protected photo (registered metrics), and the swap metrics of the protected
photo's swap against the clean source and target (a protection works when the closer-to-source rate
falls).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.generators import Condition, Target, TargetMember, get_generator
from pdbench.generators.aeswap import IDENTITIES, identity_split
from pdbench.io import write_text
from pdbench.metrics import MetricInputs, get_metric
from pdbench.metrics.swap import summarise, swap_identity, swap_keep, swap_report

RULE = {"rate": 0.8, "landmark_nme": 0.10, "background_l1": 0.05}


def is_real(rep: dict) -> dict:
    """The 80 % rule on a :func:`swap_report`: each condition and whether all hold."""
    ident, keep = rep["identity"], rep["keep"]
    checks = {f"closer_to_source_{j}": ident[j]["closer_to_source"] >= RULE["rate"] for j in ident}
    checks["pose_kept"] = keep["landmark_nme"] <= RULE["landmark_nme"]
    checks["background_kept"] = keep["background_l1"] <= RULE["background_l1"]
    return {**checks, "real": all(checks.values())}


def load_pairs(G, n: int):
    """Targets (2n), their swap conditions and sources: n of each identity, paired with the other's photo i."""
    root = resolve("lfw-gray-250", check=False) / "images"
    pre = G.preprocessing
    ds = FaceFolder(root, pre.size, crop=pre.crop, check_files=False)
    _, held = identity_split(ds.files)
    a, b = held[0][:n], held[1][:n]
    x = ds.load(a + b)
    who = torch.tensor([0] * len(a) + [1] * len(b))
    source = torch.cat([x[len(a):], x[:len(a)]])
    names = ds.names(a + b)
    return x, who, source, names


def swap(G, x: torch.Tensor, who: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return G.generate(x, Condition(attrs=torch.nn.functional.one_hot(1 - who, 2).float()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="AE.safetensors of `pdbench train aeswap` (default: the shipped weights)")
    ap.add_argument("--n", type=int, default=32, help="held-out photos per identity (at most 32)")
    ap.add_argument("--attack-n", type=int, default=16, help="photos per identity the defenses protect")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--force-attacks", action="store_true", help="run the attacks even for an unreal swapper (not reported)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    G = get_generator("aeswap", checkpoint=args.checkpoint)
    x, who, source, names = load_pairs(G, args.n)
    out = swap(G, x, who)
    t0 = time.perf_counter()
    memo: dict = {}  # the sources' and targets' embeddings and landmarks, computed once for every output judged
    ident, keep = swap_identity(out, source, x, memo=memo), swap_keep(out, x, memo)
    rep = summarise(ident, keep)
    per_dir = {f"to_{IDENTITIES[1 - k]}": summarise(ident, keep, who == k) for k in (0, 1)}
    # what the rule measures on no swap at all (the target returned): the floor of the identity rate
    floor = swap_report(x.clone(), source, x, embedders=("mobilefacenet",), memo=memo)
    # diagnostic: the decoder's whole face before it is pasted onto the target (has the decoder learnt the identity?)
    with torch.inference_mode():
        decoded = G.decoded(x, torch.nn.functional.one_hot(1 - who, 2).float()).clamp(-1, 1)
    unpasted = summarise(swap_identity(decoded, source, x, memo=memo))["identity"]
    verdict = is_real(rep)
    result = {"weights": G.weights, "fingerprint": G.fingerprint(), "n_swaps": int(x.shape[0]),
              "swap": rep, "per_direction": per_dir, "no_swap_floor": floor, "decoded_unpasted": unpasted,
              "rule": RULE, "verdict": verdict, "eval_s": round(time.perf_counter() - t0, 1)}
    print(json.dumps({"swap": rep, "decoded_unpasted": unpasted, "verdict": verdict}, indent=1), flush=True)
    if verdict["real"] or args.force_attacks:
        result["attacks"] = attacks(G, x, who, source, args, memo)
        result["attacks_reported"] = bool(verdict["real"])
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")


def attacks(G, x_all: torch.Tensor, who_all: torch.Tensor, source_all: torch.Tensor, args, memo: dict) -> dict:
    n = args.attack_n
    half = x_all.shape[0] // 2
    sel = torch.cat([torch.arange(n), half + torch.arange(n)])
    x, who, source = x_all[sel], who_all[sel], source_all[sel]
    cond = torch.nn.functional.one_hot(1 - who, 2).float()[None]  # (1, N, 2): the swap alone
    target = Target([TargetMember(G, cond)])
    metrics = {k: get_metric(k) for k in ("mse", "lpips", "id_sim")}
    g = torch.Generator().manual_seed(0)
    methods = {"random": lambda x: (x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1),
               "pgd": lambda x: get_defense("pgd", steps=args.steps).protect(x, target, keys=torch.arange(x.shape[0])),
               "leat": lambda x: get_defense("leat", steps=args.steps).protect(x, target, keys=torch.arange(x.shape[0]))}
    clean = swap(G, x, who)
    rows = {}
    shared: dict = {}
    for name, f in methods.items():
        t0 = time.perf_counter()
        xa = f(x)
        secs = time.perf_counter() - t0
        assert float((xa - x).abs().max()) <= 0.05 + 1e-6
        adv = swap(G, xa, who)
        inp = MetricInputs(x, xa, clean[None], adv[None], x_memo=shared)
        vals = {k: round(float(m(inp).nanmean()), 4) for k, m in metrics.items()}
        rows[name] = {**vals, "swap": swap_report(adv, source, x, memo=memo), "s_per_image": round(secs / x.shape[0], 3)}
        print(name, json.dumps(rows[name]), flush=True)
    return {"n_images": int(x.shape[0]), "eps": 0.05, "steps": args.steps, "protected": "target (x)", "rows": rows}


if __name__ == "__main__":
    main()
