"""StarGAN's official CelebA training recipe (yunjey/stargan: solver.py, main.py defaults).

Per iteration: one critic step on WGAN-GP (λ_gp = 10) plus the auxiliary attribute classification
(λ_cls = 1, BCE summed over attributes, averaged over the batch); every ``n_critic`` = 5 iterations one
generator step with adversarial, classification and L1 cycle-reconstruction (λ_rec = 10) losses.
Target labels are the batch's real labels in a random permutation. Adam lr 1e-4, β = (0.5, 0.999),
batch 16, random horizontal flip, learning rate decayed linearly to zero over the last
``decay_iters`` iterations (the official code means to do this; its arithmetic decays by only 0.1 %,
see the model card). Runs on CPU or CUDA (bf16 autocast on CUDA), checkpoints atomically and resumes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import FaceFolder
from ..generators.stargan import ATTRS, StarGANDiscriminator, StarGANNet, target_conditions
from ..io import save_png, save_safetensors, torch_save, write_text
from ..tensors import to_uint8


@dataclass
class StarGANRecipe:
    resolution: int = 128
    batch_size: int = 16
    iters: int = 200_000
    decay_iters: int = 100_000
    n_critic: int = 5
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    g_conv_dim: int = 64
    d_conv_dim: int = 64
    g_repeat_num: int = 6
    d_repeat_num: int = 0  # 0: official 6 at 128/256 px, 5 at 64 px (keeps a 2×2 patch output)
    holdout: int = 1000
    seed: int = 0

    def d_repeat(self) -> int:
        if self.d_repeat_num:
            return self.d_repeat_num
        return 6 if self.resolution >= 128 else max(1, int(math.log2(self.resolution)) - 1)


def _gradient_penalty(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((g.float().flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def sample_grid(G: StarGANNet, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Rows: input, then the five official edits (black, blond, brown hair, gender, age)."""
    with torch.inference_mode():
        outs = [x] + [G(x, c) for c in target_conditions(labels).to(x.device)]
    row = torch.cat(outs, dim=3)  # N, 3, H, 6W
    img = to_uint8(row)  # N, H, 6W, 3
    return np.concatenate(list(img), axis=0)


class StarGANTrainer:
    def __init__(self, data: str, attrs: str, out: str, recipe: StarGANRecipe, device: str | None = None):
        self.recipe = recipe
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch.manual_seed(recipe.seed)
        ds = FaceFolder(data, recipe.resolution, attr_file=attrs)
        train_idx, test_idx = ds.split(recipe.holdout) if recipe.holdout else (list(range(len(ds))), [])
        self.dataset = ds
        t0 = time.time()
        self.images = torch.from_numpy(ds.load_uint8(train_idx)).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.labels = ds.labels(ATTRS, train_idx).to(self.device)
        fixed = (test_idx or train_idx)[:8]
        self.fixed_x = ds.load(fixed).to(self.device)
        self.fixed_c = ds.labels(ATTRS, fixed)
        print(f"loaded {len(train_idx)} training images ({time.time() - t0:.1f}s), device {self.device}", flush=True)

        r = recipe
        self.G = StarGANNet(r.g_conv_dim, len(ATTRS), r.g_repeat_num).to(self.device)
        self.D = StarGANDiscriminator(r.resolution, r.d_conv_dim, len(ATTRS), r.d_repeat()).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), r.g_lr, (r.beta1, r.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), r.d_lr, (r.beta1, r.beta2))
        self.step = 0
        self.wall = 0.0
        self.gen = torch.Generator(device=self.device).manual_seed(r.seed)
        self._perm = torch.empty(0, dtype=torch.long, device=self.device)
        self._pos = 0

    # -- state ---------------------------------------------------------------------------------
    def state_path(self) -> Path:
        return self.out / "state.pt"

    def save(self) -> None:
        torch_save({"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                    "opt_d": self.opt_d.state_dict(), "step": self.step, "wall": self.wall,
                    "recipe": asdict(self.recipe), "gen": self.gen.get_state()}, self.state_path())
        save_safetensors(self.G.state_dict(), self.out / "G.safetensors",
                         {"step": str(self.step), "recipe": json.dumps(asdict(self.recipe))})
        write_text(self.out / "progress.json", json.dumps({"step": self.step, "wall_s": round(self.wall, 1),
                                                           "device": str(self.device)}))

    def resume(self) -> bool:
        p = self.state_path()
        if not p.exists():
            return False
        st = torch.load(p, map_location=self.device, weights_only=True)
        self.G.load_state_dict(st["G"])
        self.D.load_state_dict(st["D"])
        self.opt_g.load_state_dict(st["opt_g"])
        self.opt_d.load_state_dict(st["opt_d"])
        self.step, self.wall = int(st["step"]), float(st["wall"])
        self.gen.set_state(st["gen"].cpu())
        print(f"resumed from step {self.step}", flush=True)
        return True

    # -- training ------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.recipe.batch_size
        if self._pos + b > self._perm.numel():
            self._perm = torch.randperm(self.images.shape[0], device=self.device, generator=self.gen)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + b]
        self._pos += b
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        flip = torch.rand(b, device=self.device, generator=self.gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x, self.labels[idx]

    def _lr(self, base: float) -> float:
        r = self.recipe
        start = r.iters - r.decay_iters
        if self.step < start:
            return base
        return base * max(0.0, (r.iters - self.step) / max(1, r.decay_iters))

    def train_step(self) -> dict[str, torch.Tensor]:
        r = self.recipe
        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        x_real, label_org = self._batch()
        rand = torch.randperm(label_org.shape[0], device=self.device, generator=self.gen)
        label_trg = label_org[rand]
        for opt, base in ((self.opt_g, r.g_lr), (self.opt_d, r.d_lr)):
            for grp in opt.param_groups:
                grp["lr"] = self._lr(base)

        with amp:
            out_src, out_cls = self.D(x_real)
            d_real = -out_src.float().mean()
            d_cls = F.binary_cross_entropy_with_logits(out_cls.float(), label_org, reduction="sum") / x_real.shape[0]
            with torch.no_grad():
                x_fake = self.G(x_real, label_trg)
            out_src, _ = self.D(x_fake.detach())
            d_fake = out_src.float().mean()
            alpha = torch.rand(x_real.shape[0], 1, 1, 1, device=self.device, generator=self.gen)
            x_hat = (alpha * x_real + (1 - alpha) * x_fake.float()).requires_grad_(True)
            out_src, _ = self.D(x_hat)
            d_gp = _gradient_penalty(out_src.float(), x_hat)
        d_loss = d_real + d_fake + r.lambda_cls * d_cls + r.lambda_gp * d_gp
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        logs = {"D/real": d_real.detach(), "D/fake": d_fake.detach(), "D/cls": d_cls.detach(), "D/gp": d_gp.detach()}

        if (self.step + 1) % r.n_critic == 0:
            with amp:
                x_fake = self.G(x_real, label_trg)
                out_src, out_cls = self.D(x_fake)
                g_fake = -out_src.float().mean()
                g_cls = F.binary_cross_entropy_with_logits(out_cls.float(), label_trg, reduction="sum") / x_real.shape[0]
                x_rec = self.G(x_fake, label_org)
                g_rec = (x_real - x_rec.float()).abs().mean()
            g_loss = g_fake + r.lambda_rec * g_rec + r.lambda_cls * g_cls
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            logs.update({"G/fake": g_fake.detach(), "G/rec": g_rec.detach(), "G/cls": g_cls.detach()})
        self.step += 1
        return logs

    def sample(self) -> Path:
        grid = sample_grid(self.G, self.fixed_x, self.fixed_c)
        path = self.out / "samples" / f"{self.step:06d}.png"
        save_png(path, grid)
        save_png(self.out / "samples" / "latest.png", grid)
        return path

    def train(self, max_minutes: float | None = None, save_every: int = 2000, sample_every: int = 2000,
              log_every: int = 100, progress: bool = True) -> None:
        from tqdm import tqdm

        r = self.recipe
        deadline = time.time() + 60 * max_minutes if max_minutes else math.inf
        bar = tqdm(total=r.iters, initial=self.step, disable=not progress, dynamic_ncols=True, mininterval=5)
        t_last = time.time()
        try:
            while self.step < r.iters and time.time() < deadline:
                logs = self.train_step()
                bar.update(1)
                if self.step % log_every == 0:
                    bar.set_postfix({k: f"{float(v):.3f}" for k, v in logs.items()}, refresh=False)
                if self.step % save_every == 0 or self.step % sample_every == 0:
                    now = time.time()
                    self.wall += now - t_last
                    t_last = now
                    if self.step % sample_every == 0:
                        self.sample()
                    if self.step % save_every == 0:
                        self.save()
        finally:
            self.wall += time.time() - t_last
            bar.close()
            self.save()
            self.sample()


def export_generator(run_dir: str | Path, dest: str | Path, fp16: bool = True) -> dict:
    """Write the run's generator as a safetensors state dict (fp16 by default); returns sha256/size/step."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..assets import sha256_file

    src = Path(run_dir) / "G.safetensors"
    state = load_file(str(src))
    with safe_open(str(src), "pt") as f:
        meta = f.metadata() or {}
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_safetensors(state, dest, {**meta, "dtype": "float16" if fp16 else "float32"})
    dest = Path(dest)
    return {"path": str(dest), "sha256": sha256_file(dest), "size": dest.stat().st_size, "step": meta.get("step")}
