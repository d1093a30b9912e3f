"""The training loop every generator recipe shares (``pdbench train <method>``).

A recipe is a dataclass of the official hyper-parameters; a trainer subclass builds the generator and
critic, implements one ``train_step`` (the official update rule) and a ``sample_grid``. This module
does the rest the same way for every method: the CelebA split and the in-memory uint8 image store,
random batches with horizontal flip, atomic checkpoints (``state.pt`` holds everything needed to
resume, ``G.safetensors`` the generator alone), sample grids, a progress bar with the losses, a time
limit, and bf16 autocast (default on CUDA, ``amp="bf16"`` asks for it on the CPU too).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..data import FaceFolder
from ..errors import InputError
from ..io import save_png, save_safetensors, torch_save, write_text
from ..tensors import resolve_device


class GANTrainer:
    name = "?"  # set by TRAINERS.register
    Recipe: type = object  # the recipe dataclass (official defaults)
    attributes: tuple[str, ...] = ()
    crop: float = 1.0  # fraction of the short side centre-cropped before resizing (method's official preprocessing)

    def __init__(self, data: str, attrs: str, out: str, recipe, device: str | None = None, amp: str | None = None):
        self.recipe = recipe
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(device)
        if amp not in (None, "bf16", "none"):
            raise InputError(f"unknown --amp {amp!r}; use bf16 or none")
        self.amp = amp == "bf16" or (amp is None and self.device.type == "cuda")
        torch.manual_seed(recipe.seed)
        ds = FaceFolder(data, recipe.resolution, attr_file=attrs, crop=self.crop)
        train_idx, test_idx = ds.split(recipe.holdout) if recipe.holdout else (list(range(len(ds))), [])
        if len(train_idx) < recipe.batch_size:
            raise InputError(f"{data}: {len(train_idx)} training image(s) for a batch of {recipe.batch_size}; "
                             f"add photos or pass a smaller --batch-size")
        self.dataset = ds
        t0 = time.time()
        self.images = torch.from_numpy(ds.load_uint8(train_idx)).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.labels = ds.labels(self.attributes, train_idx).to(self.device)
        fixed = (test_idx or train_idx)[:8]
        self.fixed_x = ds.load(fixed).to(self.device)
        self.fixed_c = ds.labels(self.attributes, fixed)
        print(f"loaded {len(train_idx)} training images ({time.time() - t0:.1f}s), device {self.device}"
              f"{', bf16 autocast' if self.amp else ''}", flush=True)
        self.G, self.D = self.build()
        self.G.to(self.device)
        self.D.to(self.device)
        self.opt_g, self.opt_d = self.optimizers()
        self.step = 0
        self.wall = 0.0
        self.init: str | None = None  # what the weights were initialised from (fine-tuning), for the record
        self.gen = torch.Generator(device=self.device).manual_seed(recipe.seed)
        self._perm = torch.empty(0, dtype=torch.long, device=self.device)
        self._pos = 0

    # -- what a recipe provides ----------------------------------------------------------------
    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        """Recipe fields implied by the CLI's generic --dim / --fc-dim / --layers / --iters."""
        return {}

    def build(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        r = self.recipe
        return (torch.optim.Adam(self.G.parameters(), r.g_lr, (r.beta1, r.beta2)),
                torch.optim.Adam(self.D.parameters(), r.d_lr, (r.beta1, r.beta2)))

    def lr_factor(self) -> float:
        return 1.0

    def train_step(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample_grid(self) -> np.ndarray:
        raise NotImplementedError

    # -- shared helpers ------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def set_lr(self) -> None:
        f = self.lr_factor()
        for opt, base in ((self.opt_g, self.recipe.g_lr), (self.opt_d, self.recipe.d_lr)):
            for grp in opt.param_groups:
                grp["lr"] = base * f

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch (epoch-wise permutation), float [-1, 1], each image flipped with p = 0.5."""
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

    # -- state ---------------------------------------------------------------------------------
    def state_path(self) -> Path:
        return self.out / "state.pt"

    def save(self) -> None:
        torch_save({"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                    "opt_d": self.opt_d.state_dict(), "step": self.step, "wall": self.wall,
                    "recipe": asdict(self.recipe), "gen": self.gen.get_state(), "init": self.init}, self.state_path())
        save_safetensors(self.G.state_dict(), self.out / "G.safetensors",
                         {"step": str(self.step), "method": self.name, "recipe": json.dumps(asdict(self.recipe))})
        write_text(self.out / "progress.json", json.dumps({"method": self.name, "step": self.step,
                                                           "wall_s": round(self.wall, 1), "device": str(self.device),
                                                           "recipe": asdict(self.recipe), "init": self.init}))

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
        self.init = st.get("init")
        self.gen.set_state(st["gen"].cpu())
        print(f"resumed from step {self.step}", flush=True)
        return True

    def init_from(self, source: str) -> str:
        """Start from trained weights instead of random ones (fine-tuning; e.g. an attacker who retrains
        a generator on protected photos). ``source`` is a run directory of ``pdbench train`` (its
        generator and critic), or a generator checkpoint: a registered asset name (with the critic the
        asset names in its ``critic`` metadata, if any) or a file. Without a critic, the critic starts
        fresh. Optimisers and the step count start anew. Returns a description for messages."""
        from ..assets import ASSETS, load_state_dict
        from ..generators.base import checkpoint_state, float_state

        src = Path(source)
        if src.is_dir():
            if not (src / "state.pt").is_file():
                raise InputError(f"--init {source}: no state.pt there; pass the run directory of `pdbench train`, "
                                 f"a generator asset name or a checkpoint file")
            st = torch.load(src / "state.pt", map_location="cpu", weights_only=True)
            g_state, d_state, what = st["G"], st["D"], f"run {source} (step {st['step']})"
        else:
            if source in ASSETS:
                g_state, _, meta = checkpoint_state(None, source)
                critic = meta.get("critic")
                d_state = checkpoint_state(None, critic)[0] if critic else None
            elif src.is_file():
                g_state, d_state = load_state_dict(source), None
            else:
                raise InputError(f"--init {source}: neither a run directory, a checkpoint file nor a registered asset "
                                 f"(`pdbench assets list` names them)")
            if isinstance(g_state.get("G"), dict):  # official {'G': state} checkpoints
                g_state = g_state["G"]
            what = f"{source}" + ("" if d_state is not None else " (generator only; the critic starts fresh)")
        for net, state, part in ((self.G, g_state, "generator"), (self.D, d_state, "critic")):
            if state is None:
                continue
            try:
                net.load_state_dict(float_state(state))
            except RuntimeError as e:
                lines = str(e).strip().splitlines()
                detail = (lines[1] if len(lines) > 1 else lines[0]).strip()[:140]
                raise InputError(f"--init {source}: its {part} does not fit this recipe ({detail}); "
                                 f"give the --resolution/--dim/--layers it was trained with") from e
        self.init = what
        print(f"initialised from {what}", flush=True)
        return what

    # -- the loop ------------------------------------------------------------------------------
    def sample(self) -> Path:
        grid = self.sample_grid()
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
                self.set_lr()
                logs = self.train_step()
                self.step += 1
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


SCHEDULE_FIELDS = ("iters", "decay_iters", "lr_drop_at")  # may change when a run is resumed; nothing else may
# a run started from another one's weights (--init) must keep its architecture; schedule and data may differ
INIT_FIELDS = SCHEDULE_FIELDS + ("batch_size", "holdout", "seed", "g_lr", "d_lr")


def saved_recipe(out: str | Path) -> tuple[str | None, dict] | None:
    """(method, recipe fields) a run directory was started with, or None if it holds no run.

    Read from ``progress.json``; runs written before it recorded the recipe carry it in the metadata of
    ``G.safetensors``.
    """
    out = Path(out)
    prog = out / "progress.json"
    info = json.loads(prog.read_text()) if prog.is_file() else {}
    if "recipe" in info:
        return info.get("method"), info["recipe"]
    if (out / "G.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(out / "G.safetensors"), "pt") as f:
            meta = f.metadata() or {}
        if "recipe" in meta:
            return meta.get("method"), json.loads(meta["recipe"])
    return None


def resume_recipe(method: str, recipe_cls: type, saved: tuple[str | None, dict], asked: dict, out: str | Path,
                  may_change: tuple[str, ...] = SCHEDULE_FIELDS,
                  fix: str = "resume the run as it was, or choose a new --out"):
    """The recipe to continue a run with: the saved one, with any schedule change the command asks for.

    Options the command gives explicitly must agree with the saved recipe (a different width or
    resolution cannot load the saved weights); only ``may_change`` (the schedule) may differ.
    """
    saved_method, fields = saved
    if saved_method and saved_method != method:
        raise InputError(f"{out} holds a {saved_method} run, not {method}: run `pdbench train {saved_method} …` on it "
                         f"or choose another run")
    known = {f.name for f in dataclasses.fields(recipe_cls)}
    merged = {k: v for k, v in fields.items() if k in known}
    for k, v in asked.items():
        if k in merged and merged[k] != v:
            if k not in may_change:
                raise InputError(f"{out} was started with {k}={merged[k]}, the command asks for {v}: drop that option to "
                                 f"{fix}")
            print(f"{k}={v} (was {merged[k]})", flush=True)
        merged[k] = v
    return recipe_cls(**merged)


def gradient_penalty(critic_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: mean over the batch of (‖∇ₓ D(x̂)‖₂ − 1)²."""
    (g,) = torch.autograd.grad(critic_out.sum(), x, create_graph=True)
    return ((g.float().flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def export_generator(run_dir: str | Path, dest: str | Path, fp16: bool = True, critic: bool = False) -> dict:
    """Write the run's generator (or with ``critic`` its critic, for later fine-tuning) as a safetensors
    state dict, fp16 by default; returns sha256/size/step."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..assets import sha256_file

    run = Path(run_dir)
    src = run / ("state.pt" if critic else "G.safetensors")
    if not src.is_file():
        raise InputError(f"{src} not found: pass the run directory of `pdbench train` (it holds {src.name})")
    if critic:
        st = torch.load(src, map_location="cpu", weights_only=True)
        state = st["D"]
        meta = {"step": str(st["step"]), "recipe": json.dumps(st["recipe"]), "part": "critic"}
        prog = run / "progress.json"
        if prog.is_file():
            meta["method"] = json.loads(prog.read_text()).get("method", "")
    else:
        state = load_file(str(src))
        with safe_open(str(src), "pt") as f:
            meta = f.metadata() or {}
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_safetensors(state, dest, {**meta, "dtype": "float16" if fp16 else "float32"})
    dest = Path(dest)
    return {"path": str(dest), "sha256": sha256_file(dest), "size": dest.stat().st_size, "step": meta.get("step")}
