"""`pdbench train nullswap`: NullSwap's identity-cloaking network, trained black-box (no generator).

Per iteration, on a batch x of CelebA faces: x_adv = clamp(x + ε·NS(x)) and, for each identity
extractor E_i (the recipe's ``extractors``; pdbench: MobileFaceNet 068.ckpt and the ONNX MobileFaceNet),
L_i = mean cos(E_i(x), E_i(x_adv)). The loss is

    L = Σ_i w_i L_i + λ_pix MSE(x, x_adv),   w = softmax(L / τ) (detached)

*Dynamic loss weighting* (the paper's name; its exact rule is not public code): the extractor that is
fooled least this step gets the largest weight, so no extractor is left behind. The embeddings are
taken without the mirror image in training (half the cost; the evaluation uses both). What the paper
leaves open and pdbench chose: τ, λ_pix, Adam lr 1e-3 with β (0.9, 0.999) for a short CPU run, the
width, 64 px (pdbench's generator resolution). dlib's ResNet is never trained against (held out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..defenses.nullswap import NullSwapNet
from ..errors import InputError
from . import TRAINERS
from .loop import PerturbationTrainer


@dataclass
class NullSwapRecipe:
    resolution: int = 64
    batch_size: int = 16
    iters: int = 100_000
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    ch: int = 64  # PDB's width; the shipped CPU network is narrower (model card)
    eps: float = 0.05
    extractors: tuple = ("mobilefacenet", "mobilefacenet-onnx")
    tau: float = 0.1  # dynamic loss weighting temperature
    lambda_pix: float = 10.0
    holdout: int = 1000
    seed: int = 0


@TRAINERS.register("nullswap")
class NullSwapTrainer(PerturbationTrainer):
    Recipe = NullSwapRecipe
    attributes = ()  # no labels: nothing but faces
    crop = 1.0

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if fc_dim is not None or layers is not None:
            raise InputError("nullswap takes --dim (its width) only; --fc-dim/--layers do not apply")
        return {} if dim is None else {"ch": dim}

    def build_parts(self) -> None:
        from ..faces.identity import get_embedder

        r = self.recipe
        self.extractors = [get_embedder(None, self.device, model=m) for m in r.extractors]
        self.PG = NullSwapNet(r.ch).to(self.device).train()
        self.opt = torch.optim.Adam(self.PG.parameters(), r.lr, (r.beta1, r.beta2))

    def extra_progress(self) -> dict:
        return {"extractors": list(self.recipe.extractors), "access": "black-box (identity extractors only)"}

    @staticmethod
    def _embed(e, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(e.net(e.prepare(x)), dim=1)

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        x, _ = self.batch()
        with self.autocast():
            x_adv = self.perturb(x)
            sims = []
            for e in self.extractors:
                with torch.no_grad():
                    ref = self._embed(e, x).float()
                sims.append((self._embed(e, x_adv).float() * ref).sum(1).mean())
            sims = torch.stack(sims)
            w = torch.softmax(sims.detach() / r.tau, 0)
            pix = (x_adv - x).pow(2).mean()
        loss = (w * sims).sum() + r.lambda_pix * pix
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        logs = {f"sim{i}": s.detach() for i, s in enumerate(sims)}
        logs["pix"] = pix.detach()
        return logs

    def sample_grid(self) -> np.ndarray:
        """Rows: x, x_adv, δ/ε (amplified to the full range)."""
        from ..tensors import to_uint8

        self.PG.eval()
        with torch.inference_mode():
            x = self.fixed_x
            x_adv = self.perturb(x)
            amp = ((x_adv - x) / self.recipe.eps).clamp(-1, 1)
        self.PG.train()
        img = to_uint8(torch.cat([x, x_adv, amp], dim=3))
        return np.concatenate(list(img), axis=0)
