"""FOUND (Tang et al., arXiv 2303.00200): a universal δ that attacks the generators' *feature extractors* first.

"Feature Extraction Matters More: Universal Deepfake Disruption through Attacking Ensemble Feature
Extractors". There is no public code; pdbench implements what the paper's abstract states (the full
text was not available to pdbench) and takes the rest from TSDF's official code, which descends from
FOUND's (``get_output.get_all_features``, the same authors' lineage) and uses FOUND as its baseline:

1. *Feature-extractor disruption* by **multi-feature aggregation** and **individual-feature maintenance**:
   each member's encoder features E_m(x) (:meth:`Generator.encode`: StarGAN's bottleneck after the residual
   blocks, AttGAN's last encoder map), averaged over its edits, summed over channels and resized to
   (resolution/8)² (TSDF's code: 32² at 256 px), are summed over members into one map A(x);
   the loss is MSE(A(x+δ), A(x)) (aggregation) + Σ_m w_m·MSE(E_m(x+δ), E_m(x)) (maintenance: no member's own
   features are left undisturbed by the sum).
2. *Gradient ensemble* on the end-to-end outputs: one step per batch on Σ_m w_m·g_m / mean|g_m|, g_m the
   gradient of MSE(G_m(x+δ), G_m(x)), so no generator dominates the sign (TSDF's code normalises its
   gradient by its mean absolute value the same way).

Each training epoch runs, for every batch, ``inner`` sign steps of (1) then one of (2); δ is universal
(one (3, H, W) tensor, the batch-mean gradient), starts at U(-ε, ε) and stays in [-ε, ε].

Open choices (the paper's text was not read; each is pdbench's and says so): the features (the
bottleneck), the 1:1 weight of aggregation and maintenance, the feature size, ``inner`` = 3 and the step
size α = 0.001 (both TSDF's code, "aligned with FOUND" per the TSDF paper), the number of epochs, the
batch and the 128 training faces (the TSDF paper: 128 "to ensure a fair comparison with FOUND").

The trainer :func:`train_feature_universal` is shared with TSDF's stage 1 (:mod:`pdbench.defenses.tsdf`).
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from ..generators import Target
from ..tensors import check_images
from . import DEFENSES
from .base import EPS, Record
from .cmua import UniversalDefense, resolve_members, save_delta, train_on_faces
from .ensemble import check_resolution
from .objectives import latents

RECORD = Record(
    paper="Feature Extraction Matters More: Universal Deepfake Disruption through Attacking Ensemble Feature "
          "Extractors (FOUND)",
    venue="arXiv", year=2023, url="https://arxiv.org/abs/2303.00200",
    code="(no public code; pdbench follows the abstract and TSDF's code, vpsg-research/TSDF get_output.py / train.py)",
    official={"eps": 0.05, "train_images": 128,
              "stages": "1) disrupt the ensemble's feature extractors (multi-feature aggregation + individual-feature "
                        "maintenance), 2) gradient ensemble on the end-to-end outputs",
              "source": "abstract; ε 0.05 and 128 training images as the TSDF paper runs FOUND"},
    reported={"TSDF paper Table I, CelebA, L2mask (StarGAN / AGGAN / AttGAN / HiSD)": [0.26, 0.19, 0.15, 0.09],
              "TSDF paper Table I, CelebA, SRmask": ["100.00%", "100.00%", "97.90%", "92.55%"],
              "TSDF paper Table III, CelebA, average SRmask original -> retrained": ["97.61%", "70.41%"]},
    notes="Numbers are FOUND as the TSDF paper reports it (the FOUND paper's own tables were not available). "
          "pdbench's open choices: bottleneck features, 1:1 aggregation/maintenance, α 0.001, inner 3, feature size "
          "resolution/8.",
)


def member_features(target: Target, x: torch.Tensor) -> list[torch.Tensor]:
    """Each member's encoder features (N, C, h, w), averaged over its edits (AttGAN's encoder has one)."""
    return [latents(m.generator, x, m.conditions.to(x.device)).mean(dim=0) for m in target.members]


def aggregate(feats: list[torch.Tensor], size: int) -> torch.Tensor:
    """Multi-feature aggregation: every member's features summed over channels, resized to size², summed
    over members -> (N, size, size) (TSDF's code: concatenated on channels, then summed)."""
    out = 0.0
    for f in feats:
        out = out + F.interpolate(f.sum(dim=1, keepdim=True), size=(size, size), mode="bilinear",
                                  align_corners=False)[:, 0]
    return out


def diverse_input(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """TSDF's ``DI``: with probability 1/2, resize to a random side in [R, 1.133 R), zero-pad at a random
    offset to 1.133 R and resize back to R (nearest, as the code); otherwise x itself."""
    r = x.shape[-1]
    big = round(r * 290 / 256)
    if float(torch.rand(1, generator=gen)) > 0.5 or big <= r:
        return x
    side = int(torch.randint(r, big, (1,), generator=gen))
    top = int(torch.randint(0, big - side + 1, (1,), generator=gen))
    left = int(torch.randint(0, big - side + 1, (1,), generator=gen))
    y = F.pad(F.interpolate(x, size=(side, side)), (left, big - side - left, top, big - side - top))
    return F.interpolate(y, size=(r, r))


def enhance(a: torch.Tensor, a0: torch.Tensor, alpha: float = 0.4, temperature: float = 0.1,
            z: float = 1e-7) -> torch.Tensor:
    """TSDF's enhanced feature F_enh (eqs. 3–7) of aggregated maps a = A(x̂), a0 = A(x), each (N, h, w).

    Δ = (local L_D, global G_D, structural S_D): standardised maps' difference, mean shift over the clean
    std, and the difference of a self-attention over the standardised maps' rows; w_i = sigmoid(mean|Δ_i|);
    F_enh = a + α·exp(mean|Σ w_i Δ_i| / T)·Σ w_i Δ_i with the code's α 0.4, T 0.1 (the exponent is capped at
    30, pdbench's guard against overflow). Per image: the code's attention mixes the images of a batch."""
    n, h = a.shape[0], a.shape[1]
    f, f0 = a.reshape(n, -1), a0.reshape(n, -1)
    mu, sd = f.mean(1, keepdim=True), f.std(1, keepdim=True)
    mu0, sd0 = f0.mean(1, keepdim=True), f0.std(1, keepdim=True)
    s, s0 = (f - mu) / (sd + z), (f0 - mu0) / (sd0 + z)

    def att(t):
        rows = t.reshape(n, h, -1)
        w = torch.softmax(rows @ rows.transpose(1, 2) / math.sqrt(rows.shape[-1]), dim=-1)
        return (w @ rows).reshape(n, -1)

    deltas = [s - s0, ((mu - mu0) / (sd0 + z)).expand_as(s), att(s) - att(s0)]
    enh = sum(torch.sigmoid(d.abs().mean(1, keepdim=True)) * d for d in deltas)
    scale = torch.exp((enh.abs().mean(1, keepdim=True) / temperature).clamp(max=30.0))
    return (f + alpha * scale * enh).reshape_as(a)


def train_feature_universal(x: torch.Tensor, target: Target, eps: float = EPS, alpha: float = 0.001, steps: int = 10,
                            batch_size: int = 32, seed: int = 0, inner: int = 3, individual: bool = True,
                            enh_weight: float = 0.0, output_step: bool = True, output_feature_weight: float = 0.0,
                            diverse: bool = False, progress=None) -> torch.Tensor:
    """A universal δ (3, H, W) that disrupts the target members' feature extractors (FOUND; TSDF stage 1).

    ``steps`` epochs over x (N, 3, H, W); per batch ``inner`` sign-ascent steps on the feature loss
    MSE(A(x+δ), A(x)) [+ Σ_m w_m MSE(E_m(x+δ), E_m(x)) when ``individual``] [+ ``enh_weight``·MSE(F_enh, A(x))],
    then, when ``output_step``, one gradient-ensemble step on each member's (1 − f)·MSE(G(x+δ), G(x)) +
    f·MSE(E(x+δ), E(x)) (f = ``output_feature_weight``), normalised per member. ``diverse``: TSDF's random
    resize-and-pad of x+δ before the generators."""
    check_images(x, "universal training images")
    check_resolution(target, x)
    gen = torch.Generator().manual_seed(seed)
    res = x.shape[-1]
    size = max(1, res // 8)
    bound = torch.tensor(eps, dtype=x.dtype)
    if float(bound) > eps:  # the largest float not above ε, so that |δ| ≤ ε holds exactly (as project_linf)
        bound = torch.nextafter(bound, torch.zeros_like(bound))
    bound = float(bound)
    up = torch.empty(x.shape[1:]).uniform_(-bound, bound, generator=gen).to(x.device)
    batches = [slice(i, min(i + batch_size, len(x))) for i in range(0, len(x), batch_size)]
    total, done = steps * len(batches) * (inner + int(output_step)), 0


    def step(up, grad):
        return (up + alpha * grad.sign()).clamp(-bound, bound).detach()

    def view(xa):
        return diverse_input(xa, gen) if diverse else xa

    for _ in range(steps):
        for b in batches:
            xb, tb = x[b].detach(), target.subset(b)
            with torch.no_grad():
                f0 = member_features(tb, xb)
                a0 = aggregate(f0, size)
                y0 = tb.outputs(xb) if output_step else None
            for _ in range(inner):
                u = up.clone().requires_grad_(True)
                xin = view((xb + u).clamp(-1.0, 1.0))
                fs = member_features(tb, xin)
                a = aggregate(fs, size)
                loss = (a - a0).pow(2).mean()
                if individual:
                    for m, f, g0 in zip(tb.members, fs, f0):
                        loss = loss + m.weight * (f - g0).pow(2).mean()
                if enh_weight:
                    loss = loss + enh_weight * (enhance(a, a0) - a0).pow(2).mean()
                (grad,) = torch.autograd.grad(loss, u)
                up = step(up, grad)
                done += 1
                if progress is not None:
                    progress(done, total)
            if output_step:
                u = up.clone().requires_grad_(True)
                xin = view((xb + u).clamp(-1.0, 1.0))
                total_grad = torch.zeros_like(up)
                for j, (m, clean, g0) in enumerate(zip(tb.members, y0, f0)):
                    loss = (1 - output_feature_weight) * (m.generator.generate_many(xin, m.conditions.to(x.device))
                                                          - clean).pow(2).mean()
                    if output_feature_weight:
                        f = latents(m.generator, xin, m.conditions.to(x.device)).mean(dim=0)
                        loss = loss + output_feature_weight * (f - g0).pow(2).mean()
                    (g,) = torch.autograd.grad(loss, u, retain_graph=j < len(tb.members) - 1)
                    total_grad = total_grad + m.weight * g / g.abs().mean().clamp_min(1e-12)
                up = step(up, total_grad)
                done += 1
                if progress is not None:
                    progress(done, total)
    return up


@DEFENSES.register("found")
class FOUND(UniversalDefense):
    """FOUND: universal δ = feature-extractor disruption (aggregation + maintenance) + gradient ensemble."""

    record = RECORD
    delta_method = "found"
    objective = "feature disruption (universal)"

    def __init__(self, eps: float = EPS, alpha: float = 0.001, steps: int = 15, seed: int = 0, delta: str | None = None,
                 surrogates: list | None = None, train_n: int = 128, batch_size: int = 32, inner: int = 3,
                 faces: str | None = None, save_to: str | None = None):
        self.inner = int(inner)
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed, delta=delta, surrogates=surrogates,
                         train_n=train_n, batch_size=batch_size, faces=faces, save_to=save_to)

    def config(self) -> dict:
        return {**super().config(), "inner": self.inner}

    def train_kwargs(self) -> dict:
        return {**super().train_kwargs(), "inner": self.inner}

    def train_delta(self, x, target, **kw):
        return train_feature_universal(x, target, individual=True, output_step=True, **kw)


def main(argv=None, name: str = "found") -> int:
    from . import get_defense

    p = argparse.ArgumentParser(prog=f"python -m pdbench.defenses.{name}",
                                description=f"Train {name}'s universal δ on training faces and save it.")
    p.add_argument("--out", required=True, help="δ file to write (.safetensors)")
    p.add_argument("--generators", nargs="+", default=["stargan", "attgan"])
    p.add_argument("--n", type=int, default=128, help="training faces (the papers: 128)")
    p.add_argument("--faces", default=None, help="a folder of faces (default: the CelebA asset's training split)")
    p.add_argument("--steps", type=int, default=None, help="epochs (default: the defense's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    d = get_defense(name, train_n=a.n, batch_size=a.batch_size, faces=a.faces,
                    **({"steps": a.steps} if a.steps is not None else {}))
    delta, meta = train_on_faces(resolve_members(a.generators, a.device), a.n, a.faces, device=a.device,
                                 trainer=d.train_delta, method=d.delta_method, **d.train_kwargs())
    fp = save_delta(a.out, delta, meta)
    print(f"wrote {a.out}: {name} universal δ {tuple(delta.shape)} trained on {meta['n_train']} faces against "
          f"{', '.join(meta['generators'])} (fingerprint {fp})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
