"""`pdbench train idguard`: ID-Guard's perturbation generator against several attribute editors at once.

Per iteration (official ``Solver.train_batch``, ZOMIN28/ID-Guard: solver.py), on a batch x with facial
mask m, δ = clamp(PG(x ⊕ δ_p), ±ε), x_adv = clamp(x + δ), x_pri = clamp(x + δ_p), and for each target
G_k with one of its edits c (drawn per image):

    L_k = ℓ(x_adv) + ℓ(x_pri),   ℓ(x') = MSE(G(x)·m, G(x')·m) − λ_id cos(ID(G(x)), ID(G(x')))
                                          + λ_ft MSE(E(x)·m, E(x')·m)

(E: the target's bottleneck features, m resized to them). PG and δ_p *maximise* Σ_k w_k L_k (Adam on
−Σ w_k L_k, lr 1e-4, β (0.5, 0.999)). Weights ``dws``: ``mgda`` (S-I) takes w = the min-norm convex
combination of the per-model gradients in PG's parameters (Frank–Wolfe; closed form for two models),
``kpi`` (S-II) w_k = p_k · KPI(L_mask,k) with KPI(L) = −(1 − L)^τ log L (τ 1, L clamped to
[1e-13, 1]; L_mask,k the masked-MSE terms of x_adv and x + δ_p summed) and the official priors p
(stargan 1, attgan 10, fpgan 1, relgan 10, hisd 100; others 1), ``equal`` w_k = 1.

What pdbench substitutes, and why: ID = MobileFaceNet (pdbench's identity model; ArcFace IR-SE50 is not
available), m = the dlib facial mask (eyebrows to mouth; CelebAMask-HQ annotations are not available)
averaged over ``mask_faces`` training faces and thresholded at 0.5 (CelebA's aligned crops put faces in
the same place; computing dlib landmarks per batch costs 0.3 s an image on this CPU), no VGGFace Grad-CAM
heat map (no VGGFace weights), δ_p starts as uniform noise in ±ε/2 (seeded) instead of the official
pre-optimised ``pri_pert.pt`` (not published) and is then optimised with PG (P-Pert's joint step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..defenses.idguard import IDGuardNet
from ..errors import InputError
from . import TRAINERS
from .loop import PerturbationTrainer


@dataclass
class IDGuardRecipe:
    resolution: int = 64  # pdbench's shipped StarGAN and AttGAN; the paper: 256
    batch_size: int = 8  # official 3
    iters: int = 100_000
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ngf: int = 64  # official width; the shipped CPU network is narrower (model card)
    n_blocks: int = 6
    eps: float = 0.05
    lambda_mask: float = 1.0
    lambda_id: float = 0.1
    lambda_ft: float = 0.01
    prior_loss: bool = True  # the official loss also scores x + δ_p
    prior_id: bool = False  # the ID term on x + δ_p too (official; off on the CPU: MobileFaceNet is the cost)
    dws: str = "mgda"  # mgda (S-I) | kpi (S-II) | equal
    edits_per_step: int = 1  # the official code uses one edit per model per step
    targets: str = "stargan,attgan"
    mask_faces: int = 128
    holdout: int = 1000
    seed: int = 0

    @property
    def target(self) -> str:  # the first target, for what PerturbationTrainer expects
        return self.target_names()[0]

    def target_names(self) -> list[str]:
        return [t.strip() for t in self.targets.split(",") if t.strip()]


KPI_PRIORS = {"stargan": 1.0, "attgan": 10.0, "fpgan": 1.0, "relgan": 10.0, "hisd": 100.0}  # configs/prior_weight.json


def kpi_weights(mask_losses: dict[str, float], tau: float = 1.0) -> dict[str, float]:
    """S-II: p_k · (−(1 − L_k)^τ log L_k) per model, L_k its masked-MSE loss clamped to [1e-13, 1] (a
    target that is still barely disrupted, small L_k, gets a large weight)."""
    out = {}
    for name, loss in mask_losses.items():
        v = min(max(float(loss), 1e-13), 1.0)
        out[name] = KPI_PRIORS.get(name, 1.0) * -((1 - v) ** tau) * float(np.log(v))
    return out


def min_norm_weights(grads: list[torch.Tensor], iters: int = 250) -> torch.Tensor:
    """The convex weights w minimising ‖Σ w_k g_k‖ (MGDA's common descent direction), for flat gradients.

    Two gradients: the closed form γ = clamp((g₂−g₁)·g₂ / ‖g₁−g₂‖², 0, 1). More: Frank–Wolfe on the Gram
    matrix (Sener & Koltun's MinNormSolver, which ID-Guard's strategy/MinNorm.py follows)."""
    k = len(grads)
    g = torch.stack([x.float() for x in grads])
    gram = g @ g.T
    if k == 1:
        return torch.ones(1)
    if k == 2:
        den = (gram[0, 0] + gram[1, 1] - 2 * gram[0, 1]).clamp_min(1e-20)
        gam = ((gram[1, 1] - gram[0, 1]) / den).clamp(0.0, 1.0)
        return torch.stack([gam, 1 - gam]).cpu()
    w = torch.full((k,), 1.0 / k, dtype=gram.dtype, device=gram.device)
    for _ in range(iters):
        t = int(torch.argmin(gram @ w))
        a, b, c = w @ gram @ w, w @ gram[:, t], gram[t, t]
        den = (a + c - 2 * b).clamp_min(1e-20)
        gam = ((a - b) / den).clamp(0.0, 1.0)
        new = (1 - gam) * w
        new[t] += gam
        if float((new - w).abs().sum()) < 1e-6:
            w = new
            break
        w = new
    return w.cpu()


@TRAINERS.register("idguard")
class IDGuardTrainer(PerturbationTrainer):
    Recipe = IDGuardRecipe

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None:
            raise InputError("--fc-dim applies to attgan; ID-Guard's ResNet generator has no fully connected layer")
        opts = {}
        if dim is not None:
            opts["ngf"] = dim
        if layers is not None:
            opts["n_blocks"] = layers
        return opts

    def _classes(self):
        from ..generators import GENERATORS

        names = self.recipe.target_names()
        if not names:
            raise InputError("idguard: --set targets=... names no generator; give e.g. stargan,attgan")
        return [GENERATORS.get(n) for n in names]

    @property
    def attributes(self) -> tuple[str, ...]:  # the union of the targets' labels, in order of appearance
        seen: list[str] = []
        for cls in self._classes():
            seen += [a for a in getattr(cls, "attributes", ()) if a not in seen]
        return tuple(seen)

    def build_parts(self) -> None:
        from ..generators import get_generator

        r = self.recipe
        if r.dws not in ("mgda", "kpi", "equal"):
            raise InputError(f"idguard: unknown dws {r.dws!r}; use mgda (S-I), kpi (S-II) or equal")
        self.targets = []
        for name in r.target_names():
            g = get_generator(name).to(self.device).eval().requires_grad_(False)
            if g.resolution != r.resolution:
                raise InputError(f"{name}'s shipped weights are for {g.resolution} px, the recipe asks for "
                                 f"{r.resolution}: pass --resolution {g.resolution}")
            cols = [self.attributes.index(a) for a in getattr(g, "attributes", ())]
            self.targets.append((name, g, cols))
        self.target = self.targets[0][1]
        from ..faces.identity import get_embedder

        self.embed = get_embedder("celeba", self.device)
        self.mask = self.facial_mask()
        torch.manual_seed(r.seed)
        self.PG = IDGuardNet(r.ngf, r.n_blocks, r.resolution, r.eps).to(self.device).train()
        with torch.no_grad():  # δ_p's start (the official pri_pert.pt is not published)
            g = torch.Generator().manual_seed(r.seed)
            self.PG.pri_pert.copy_(((torch.rand(self.PG.pri_pert.shape, generator=g) - 0.5) * r.eps).to(self.device))
        self.opt = torch.optim.Adam(self.PG.parameters(), r.lr, (r.beta1, r.beta2))
        self.weights = {n: 1.0 for n, _, _ in self.targets}

    def facial_mask(self) -> torch.Tensor:
        """(1, 1, R, R): the mean dlib facial mask of the first ``mask_faces`` training faces, > 0.5."""
        from ..faces.landmarks import face_mask

        n = min(self.recipe.mask_faces, self.images.shape[0])
        x = self.images[:n].float().div(127.5).sub(1.0).cpu()
        m = face_mask(x).mean(0, keepdim=True)
        return (m > 0.5).float().to(self.device)

    def extra_progress(self) -> dict:
        return {"targets": [n for n, _, _ in self.targets],
                "target_fingerprints": {n: g.fingerprint() for n, g, _ in self.targets},
                "dws": self.recipe.dws, "last_weights": self.weights}

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.PG.delta(x).float()).clamp(-1.0, 1.0)

    def _edits(self, g, labels, cols, n):
        cs = g.conditions(None if labels is None or not cols else labels[:, cols].cpu(), n).to(self.device)
        k = self.recipe.edits_per_step
        if k and k < cs.shape[0]:
            pick = torch.rand(cs.shape[0], n, device=self.device, generator=self.gen).argsort(dim=0)[:k]
            cs = cs.gather(0, pick[:, :, None].expand(-1, -1, cs.shape[2]))
        return cs

    def identity(self, y: torch.Tensor) -> torch.Tensor:
        """L2-normalised MobileFaceNet embeddings of (K, N, 3, H, W) outputs, one pass (no flip: half the cost)."""
        v = self.embed.prepare(y.flatten(0, 1).clamp(-1, 1))
        return F.normalize(self.embed.net(v), dim=1)

    def _score(self, g, xs, cs, out_c, id_c, feat_c, m, mf, with_id=True):
        """ℓ for one perturbed batch xs: masked MSE, ID cosine, masked feature MSE (all means)."""
        r = self.recipe
        out = g.generate_many(xs, cs).float()  # (K, N, 3, H, W)
        l_mask = F.mse_loss(out * m, out_c * m)
        cos = (self.identity(out) * id_c).sum(-1).mean() if with_id else out.new_zeros(())
        l_ft = xs.new_zeros(())
        if r.lambda_ft:
            fa = torch.stack([g.encode(xs, c) for c in cs]).float()
            l_ft = F.mse_loss(fa * mf, feat_c * mf)
        return r.lambda_mask * l_mask - r.lambda_id * cos + r.lambda_ft * l_ft, l_mask, cos

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        x, labels = self.batch()
        n = x.shape[0]
        m = self.mask
        with self.autocast():
            delta = self.PG.delta(x).float()
            x_adv = (x + delta).clamp(-1, 1)
            x_pri = (x + self.PG.prior(x).float()).clamp(-1, 1)
            losses, logs, masks = {}, {}, {}
            for name, g, cols in self.targets:
                cs = self._edits(g, labels, cols, n)
                with torch.no_grad():
                    out_c = g.generate_many(x, cs).float()
                    id_c = self.identity(out_c)
                    feat_c = torch.stack([g.encode(x, c) for c in cs]).float() if r.lambda_ft else None
                mf = F.interpolate(m, size=feat_c.shape[-2:], mode="nearest") if feat_c is not None else None
                loss, l_mask, cos = self._score(g, x_adv, cs, out_c, id_c, feat_c, m, mf)
                masks[name] = float(l_mask.detach())
                if r.prior_loss:
                    l_pri, m_pri, _ = self._score(g, x_pri, cs, out_c, id_c, feat_c, m, mf, with_id=r.prior_id)
                    loss = loss + l_pri
                    masks[name] += float(m_pri.detach())
                losses[name] = loss
                logs[f"{name}_mask"] = l_mask.detach()
                logs[f"{name}_cos"] = cos.detach()
        params = list(self.PG.parameters())
        gen_idx = [i for i, p in enumerate(params) if p is not self.PG.pri_pert]
        grads = {}
        names = list(losses)
        for j, name in enumerate(names):
            gs = torch.autograd.grad(losses[name], params, retain_graph=j < len(names) - 1, allow_unused=True)
            grads[name] = [torch.zeros_like(p) if gi is None else gi for gi, p in zip(gs, params)]
        if r.dws == "mgda":
            w = min_norm_weights([torch.cat([grads[nm][i].flatten() for i in gen_idx]) for nm in names])
            self.weights = {nm: float(wi) for nm, wi in zip(names, w)}
        elif r.dws == "kpi":
            self.weights = kpi_weights(masks)
        for i, p in enumerate(params):  # ascend Σ w_k L_k: Adam on −Σ w_k ∇L_k
            p.grad = -sum(self.weights[nm] * grads[nm][i] for nm in names)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        for nm in names:
            logs[f"w_{nm}"] = torch.tensor(self.weights[nm])
        return logs

    def sample_grid(self) -> np.ndarray:
        """Rows: x, x_adv, then the first edit of each target on x and on x_adv."""
        from ..tensors import to_uint8

        self.PG.eval()
        with torch.inference_mode():
            x = self.fixed_x
            x_adv = self.perturb(x)
            outs = [x, x_adv]
            for _, g, cols in self.targets:
                c = g.conditions(None if self.fixed_c is None or not cols else self.fixed_c[:, cols], x.shape[0])[0]
                outs += [g.generate(x, c.to(self.device)), g.generate(x_adv, c.to(self.device))]
        self.PG.train()
        img = to_uint8(torch.cat(outs, dim=3).clamp(-1, 1))
        return np.concatenate(list(img), axis=0)
