"""How much of PDB's model-input disruption can a perturbation on the published photo reach? The first-order
bound beside what optimisers achieve, native mode, StarGAN, PGD's ε.

    PDBENCH_ASSETS=../shared/assets python benchmarks/publish_bound.py [--faces 8] [--hq 2] [--steps 30]
        [--variants pgd,pgd-100,...] [--json docs/results/publish_bound.json]

Same photos as ``benchmarks/publish.py`` (held-out 89×109 CelebA faces with their attributes; 1024² CelebA-HQ
/ FFHQ photos with StarGAN's default edits), same ε 0.05, seed 0 and keys 0…N−1 for every row.

* ``pdb``: PDB's number, the disruption PGD (``--steps``) reaches at the 64 px model input, before publishing.
* ``first-order bound``: along PDB's PGD trajectory and along native PGD's, the ratio ‖Rᵀg‖₁ / ‖g‖₁
  (:func:`pdbench.publish.first_order_ratio`): of the best gain of the loss *linearised* at that iterate
  within the ε-ball at the model input (ε‖g‖₁), the fraction a perturbation on the photo within ε can
  deliver through the resize R (ε‖Rᵀg‖₁); times grey_levels(ε)/(127.5 ε) for the 8-bit photo.
* ``pgd at ε·ρ``: PDB's attack at the model input with the budget shrunk to the first-order ratio, the
  disruption a model-input attack gets with the gain the photo can deliver.
* each native variant (``--variants``, ``+``-joined parts, see :func:`variant`): the published disruption (8-bit photo, read back through Pillow's crop + resize,
  :func:`pdbench.publish.published_disruption`) and its ratio to ``pdb``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from publish import photo_sets  # noqa: E402  (the photo sets of benchmarks/publish.py)

from pdbench.defenses import get_defense  # noqa: E402
from pdbench.defenses.base import project_linf  # noqa: E402
from pdbench.defenses.optim import SignPGD  # noqa: E402
from pdbench.generators import Target, get_generator  # noqa: E402
from pdbench.io import write_text  # noqa: E402
from pdbench.publish import (_mean_disruption, first_order_ratio, grey_levels, photo_target,  # noqa: E402
                             published_disruption, quantise)
from pdbench.tensors import from_uint8  # noqa: E402

BOUND_STEPS = (0, 1, 3, 10, 30)


class ProjectedStart(SignPGD):
    """Sign-PGD on the photo from ε·sign(Rᵀδ₆₄) instead of PGD's uniform start, δ₆₄ PDB's own PGD
    perturbation at the model input (``steps`` steps there first)."""

    def iterates(self, defense, x, target, keys, refs):
        eps = defense.eps
        pg = target.members[0].generator
        inner = Target([type(m)(m.generator.inner, m.conditions, m.weight) for m in target.members])
        with torch.no_grad():
            xm = pg.model_input(x)
        dm = (get_defense("pgd", steps=self.steps, eps=eps).protect(xm, inner, keys=keys) - xm).detach()
        p = x.clone().requires_grad_(True)
        (rt,) = torch.autograd.grad(pg.model_input(p), p, grad_outputs=dm)
        x_adv = project_linf(x + eps * rt.sign() * pg.footprint().to(x.device), x, eps)
        yield x_adv
        for step in range(self.steps):
            grad = defense.gradient(x_adv, step, x, target, refs)
            x_adv = project_linf(x_adv.detach() + self.step_size(step) * grad.sign(), x, eps)
            yield x_adv


def variant(name: str, steps: int):
    """(defense, straight-through 8-bit rounding?) for a native variant's name: ``+``-joined parts of
    ``pgd`` (PDB's PGD), ``adam-LR`` (Adam on δ = ε tanh w), ``cosine-AMAX`` (cosine step schedule),
    ``proj`` (projected start), ``ste8`` (straight-through 8-bit rounding), ``steps-N``, ``eps-E``."""
    parts = name.split("+")
    kw: dict = {"steps": steps}
    for part in parts:
        if part.startswith("steps-"):
            kw["steps"] = int(part[6:])
        elif part.startswith("eps-"):
            kw["eps"] = float(part[4:])
            kw["alpha"] = 0.2 * kw["eps"]
    ste = "ste8" in parts
    adam = [p for p in parts if p.startswith("adam-")]
    if adam:
        opt = {"name": "adam", "lr": float(adam[0][5:]), "param": "tanh"}
        return get_defense("composite", optimiser=opt, **kw), ste
    cos = [p for p in parts if p.startswith("cosine-")]
    if cos:  # α_max given at ε 0.05, scaled with ε
        kw.update(schedule="cosine", alpha=float(cos[0][7:]) * kw.get("eps", 0.05) / 0.05)
    d = get_defense("pgd", **kw)
    if "proj" in parts:
        d.optimiser = ProjectedStart(alpha=d.alpha, steps=d.steps, schedule=d.schedule)
    known = {"pgd", "proj", "ste8"}
    bad = [p for p in parts if p not in known and not p.startswith(("steps-", "eps-", "adam-", "cosine-"))]
    if bad:
        raise SystemExit(f"unknown variant part(s) {bad} in {name!r}")
    return d, ste


def run_native(d, target: Target, imgs, keys, ste: bool, bound_steps=()) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Native-mode protection of same-size photos with ``d``: (published disruption (N,), disruption before
    publishing (N,), {step: first-order ratio (N,)} along the iterates for ``bound_steps``)."""
    photos = np.stack([np.asarray(im, dtype=np.uint8) for im in imgs])
    x = from_uint8(photos)
    size = tuple(x.shape[-2:])
    pt = photo_target(target, size, per_image=False, rounding=ste)
    refs = d.prepare(x, pt)
    ratios = {}
    if bound_steps:
        pg = pt.members[0].generator
        for step, xa in enumerate(d.optimiser.iterates(d, x, pt, keys, refs)):
            if step in bound_steps:
                with torch.no_grad():
                    xm = pg.model_input(xa)
                ratios[step] = first_order_ratio(d, target, x, xm)
        x_adv = xa
    else:
        x_adv = d.optimiser.run(d, x, pt, keys, refs)
    pt = photo_target(target, size, per_image=False)  # before publishing: the float x_adv, unrounded
    with torch.inference_mode():
        pre = _mean_disruption(pt.outputs(x_adv), pt.outputs(x), pt)
    foot = torch.stack([m.generator.footprint() for m in pt.members]).any(dim=0)
    pub = published_disruption(target, imgs, list(quantise(photos, x_adv, d.eps, foot)))
    return pub, pre, ratios


def run_pdb(target: Target, imgs, keys, steps: int, eps: float = 0.05, bound_steps=()) -> tuple[torch.Tensor, dict]:
    """PDB's PGD at the model input (Pillow's crop + resize of the 8-bit photo): (disruption (N,), ratios)."""
    G = target.members[0].generator
    pre = G.preprocessing
    x = from_uint8(np.stack([pre.apply(im) for im in imgs]))
    photos = from_uint8(np.stack([np.asarray(im, dtype=np.uint8) for im in imgs]))
    d = get_defense("pgd", steps=steps, eps=eps, alpha=0.01 * eps / 0.05)
    refs = d.prepare(x, target)
    ratios = {}
    for step, xa in enumerate(d.optimiser.iterates(d, x, target, keys, refs)):
        if step in bound_steps:
            ratios[step] = first_order_ratio(d, target, photos, xa, x)
    with torch.inference_mode():
        dis = _mean_disruption(target.outputs(xa), refs[0], target)
    return dis, ratios


def mean(t) -> float:
    return float(torch.as_tensor(t).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=8)
    ap.add_argument("--hq", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--variants", default="pgd,pgd+steps-100,pgd+cosine-0.02,adam-0.1,pgd+proj,pgd+ste8,pgd+proj+cosine-0.02+ste8")
    ap.add_argument("--sets", default="celeba-89px,hq-1024px")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    G = get_generator("stargan")
    eps = 0.05
    bit8 = grey_levels(eps) / (127.5 * eps)
    out: dict = {"generator": "stargan", "eps": eps, "steps": args.steps, "grey_level_factor": bit8, "sets": {}}
    bsteps = tuple(s for s in BOUND_STEPS if s <= args.steps)
    for set_name, (imgs, labels, names) in photo_sets(args.faces, args.hq).items():
        if set_name not in args.sets.split(","):
            continue
        n = len(imgs)
        keys = torch.arange(n)
        target = Target.of(G, labels, n)
        t0 = time.perf_counter()
        pdb, pdb_ratio = run_pdb(target, imgs, keys, args.steps, bound_steps=bsteps)
        row: dict = {"n": n, "photos": names, "pdb": mean(pdb), "pdb_seconds": time.perf_counter() - t0,
                     "bound_along_pdb": {s: mean(r) for s, r in pdb_ratio.items()}, "variants": {}}
        print(set_name, "pdb", round(row["pdb"], 4), "bound along pdb", {s: round(v, 3) for s, v in
                                                                           row["bound_along_pdb"].items()}, flush=True)
        for name in args.variants.split(","):
            d, ste = variant(name, args.steps)
            t0 = time.perf_counter()
            pub, pre, ratios = run_native(d, target, imgs, keys, ste, bound_steps=bsteps if name == "pgd" else ())
            v = {"published": mean(pub), "before_publishing": mean(pre), "ratio": mean(pub) / row["pdb"],
                 "per_photo_ratio": (pub / pdb).tolist(), "seconds": time.perf_counter() - t0}
            if ratios:
                row["bound_along_native"] = {s: mean(r) for s, r in ratios.items()}
            row["variants"][name] = v
            print(set_name, name, json.dumps({k: (round(x, 4) if isinstance(x, float) else x) for k, x in v.items()
                                              if k != "per_photo_ratio"}), flush=True)
            if ratios:
                print(set_name, "bound along native", {s: round(mean(r), 3) for s, r in ratios.items()}, flush=True)
        rho = row["bound_along_pdb"][bsteps[-1]]
        small, _ = run_pdb(target, imgs, keys, args.steps, eps=eps * rho)
        row["pdb_at_eps_rho"] = {"eps": eps * rho, "disruption": mean(small), "ratio": mean(small) / row["pdb"]}
        print(set_name, "pgd at eps*rho", row["pdb_at_eps_rho"], flush=True)
        out["sets"][set_name] = row
        if args.json:
            write_text(args.json, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
