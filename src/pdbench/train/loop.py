"""The training loop every recipe shares (``pdbench train <method>``): generators and defenses.

A recipe is a dataclass of the official hyper-parameters; a trainer subclass builds its networks,
implements one ``train_step`` (the official update rule) and a ``sample_grid``. :class:`GANTrainer`
trains a generator with its critic (StarGAN, AttGAN); :class:`PerturbationTrainer` trains a
model-based defense's perturbation generator against a frozen deepfake generator (Retentive). This
module does the rest the same way for every method: the CelebA split and the in-memory uint8 image
store, random batches with horizontal flip, atomic checkpoints (``state.pt`` holds everything needed
to resume, ``G.safetensors`` / ``PG.safetensors`` the trained network alone), sample grids, a progress
bar with the losses, a time limit, and bf16 autocast (default on CUDA, ``amp="bf16"`` asks for it on
the CPU too).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data import FaceFolder
from ..errors import InputError
from ..io import save_png, save_safetensors, torch_save, write_text
from ..tensors import resolve_device


class Trainer:
    """The resumable loop every recipe shares; subclasses say which networks it trains.

    A subclass provides ``build_parts()`` (called once, after the data are loaded: it creates the
    networks and optimisers), :meth:`parts` / :meth:`optims` (the named networks and optimisers that a
    checkpoint holds), :meth:`lr_bases`, ``train_step`` and ``sample_grid``. ``product`` names the
    network the run exists for: it is written as ``<product>.safetensors`` beside ``state.pt`` and is
    what ``pdbench export`` exports.
    """

    name = "?"  # set by TRAINERS.register
    Recipe: type = object  # the recipe dataclass (official defaults)
    attributes: tuple[str, ...] = ()
    crop: float = 1.0  # fraction of the short side centre-cropped before resizing (method's official preprocessing)
    product: str = "G"
    # ``widen_generator(state, noise) -> (wider state, what was done)``: defined by a trainer whose generator
    # ``init_from(..., widen=True)`` can widen (StarGAN's); None for every other. The one record of who can.
    widen_generator: Callable[[dict, float], tuple[dict, str]] | None = None

    def __init__(self, data: str, attrs: str | None, out: str, recipe, device: str | None = None, amp: str | None = None):
        self.recipe = recipe
        self.out = Path(out)
        self.device = resolve_device(device)
        if amp not in (None, "bf16", "none"):
            raise InputError(f"unknown --amp {amp!r}; use bf16 or none")
        if self.attributes and attrs is None:
            raise InputError(f"{self.name} trains on attribute labels ({', '.join(self.attributes)}): pass --attrs "
                             f"(the CelebA list_attr_celeba.txt)")
        self.out.mkdir(parents=True, exist_ok=True)
        self.amp = amp == "bf16" or (amp is None and self.device.type == "cuda")
        torch.manual_seed(recipe.seed)
        ds = FaceFolder(data, recipe.resolution, attr_file=attrs, crop=self.crop)
        train_idx, test_idx = self.split(ds)
        if len(train_idx) < recipe.batch_size:
            raise InputError(f"{data}: {len(train_idx)} training image(s) for a batch of {recipe.batch_size}; "
                             f"add photos or pass a smaller --batch-size")
        self.dataset = ds
        t0 = time.time()
        self.images = torch.from_numpy(ds.load_uint8(train_idx)).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.labels = ds.labels(self.attributes, train_idx).to(self.device) if self.attributes else None
        fixed = (test_idx or train_idx)[:8]
        self.fixed_x = ds.load(fixed).to(self.device)
        self.fixed_c = ds.labels(self.attributes, fixed) if self.attributes else None
        print(f"loaded {len(train_idx)} training images ({time.time() - t0:.1f}s), device {self.device}"
              f"{', bf16 autocast' if self.amp else ''}", flush=True)
        self.step = 0
        self.wall = 0.0
        self.init: str | None = None  # what the weights were initialised from (fine-tuning), for the record
        self.gen = torch.Generator(device=self.device).manual_seed(recipe.seed)
        self._perm = torch.empty(0, dtype=torch.long, device=self.device)
        self._pos = 0
        self.build_parts()

    # -- what a recipe provides ----------------------------------------------------------------
    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        """Recipe fields implied by the CLI's generic --dim / --fc-dim / --layers / --iters."""
        return {}

    def split(self, ds: FaceFolder) -> tuple[list[int], list[int]]:
        """(train, held-out) indices of the folder: the last ``recipe.holdout`` files (sorted) are held
        out; a recipe that trains on part of a folder (aeswap: two identities) overrides this."""
        h = self.recipe.holdout
        return ds.split(h) if h else (list(range(len(ds))), [])

    def build_parts(self) -> None:
        raise NotImplementedError

    def parts(self) -> dict[str, torch.nn.Module]:
        """The trained networks a checkpoint holds, by name (``product`` among them)."""
        raise NotImplementedError

    def optims(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def lr_bases(self) -> list[tuple[torch.optim.Optimizer, float]]:
        """Each optimiser with its base learning rate (scaled by :meth:`lr_factor`)."""
        raise NotImplementedError

    def lr_factor(self) -> float:
        return 1.0

    def train_step(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample_grid(self) -> np.ndarray:
        raise NotImplementedError

    def extra_progress(self) -> dict:
        """More facts for ``progress.json`` (e.g. the frozen target a perturbation generator was trained against)."""
        return {}

    # -- shared helpers ------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def set_lr(self) -> None:
        f = self.lr_factor()
        for opt, base in self.lr_bases():
            for grp in opt.param_groups:
                grp["lr"] = base * f

    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A random batch (epoch-wise permutation), float [-1, 1], each image flipped with p = 0.5,
        with its labels (None for a recipe without attributes)."""
        b = self.recipe.batch_size
        if self._pos + b > self._perm.numel():
            self._perm = torch.randperm(self.images.shape[0], device=self.device, generator=self.gen)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + b]
        self._pos += b
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        flip = torch.rand(b, device=self.device, generator=self.gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x, (self.labels[idx] if self.labels is not None else None)

    # -- state ---------------------------------------------------------------------------------
    def state_path(self) -> Path:
        return self.out / "state.pt"

    def save(self) -> None:
        nets = {k: m.state_dict() for k, m in self.parts().items()}
        opts = {k: o.state_dict() for k, o in self.optims().items()}
        torch_save({**nets, **opts, "step": self.step, "wall": self.wall, "recipe": asdict(self.recipe),
                    "gen": self.gen.get_state(), "init": self.init, "product": self.product}, self.state_path())
        save_safetensors(nets[self.product], self.out / f"{self.product}.safetensors",
                         {"step": str(self.step), "method": self.name, "recipe": json.dumps(asdict(self.recipe))})
        write_text(self.out / "progress.json", json.dumps({"method": self.name, "step": self.step,
                                                           "wall_s": round(self.wall, 1), "device": str(self.device),
                                                           "recipe": asdict(self.recipe), "init": self.init,
                                                           "product": f"{self.product}.safetensors",
                                                           **self.extra_progress()}))

    def resume(self) -> bool:
        p = self.state_path()
        if not p.exists():
            return False
        st = torch.load(p, map_location=self.device, weights_only=True)
        for k, m in self.parts().items():
            m.load_state_dict(st[k])
        for k, o in self.optims().items():
            o.load_state_dict(st[k])
        self.step, self.wall = int(st["step"]), float(st["wall"])
        self.init = st.get("init")
        self.gen.set_state(st["gen"].cpu())
        print(f"resumed from step {self.step}", flush=True)
        return True

    def init_from(self, source: str) -> str:
        raise InputError(f"--init applies to generator recipes (stargan, attgan); {self.name} starts from random weights")

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


class GANTrainer(Trainer):
    """A generator G and its critic D, each with its own Adam (``g_lr`` / ``d_lr``, β = (beta1, beta2))."""

    def build_parts(self) -> None:
        self.G, self.D = self.build()
        self.G.to(self.device)
        self.D.to(self.device)
        self.opt_g, self.opt_d = self.optimizers()

    def build(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        r = self.recipe
        return (torch.optim.Adam(self.G.parameters(), r.g_lr, (r.beta1, r.beta2)),
                torch.optim.Adam(self.D.parameters(), r.d_lr, (r.beta1, r.beta2)))

    def parts(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D}

    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def lr_bases(self) -> list[tuple[torch.optim.Optimizer, float]]:
        return [(self.opt_g, self.recipe.g_lr), (self.opt_d, self.recipe.d_lr)]

    def init_from(self, source: str, widen: bool = False, widen_noise: float = 0.0) -> str:
        """Start from trained weights instead of random ones (fine-tuning; e.g. an attacker who retrains
        a generator on protected photos). ``source`` is a run directory of ``pdbench train`` (its
        generator and critic), or a generator checkpoint: a registered asset name (with the critic the
        asset names in its ``critic`` metadata, if any) or a file. Without a critic, the critic starts
        fresh. Optimisers and the step count start anew. With ``widen``, the generator is a narrower one
        widened to the recipe's width (:meth:`widen_generator`; ``widen_noise`` breaks the copies'
        symmetry); the critic must fit the recipe as it is. Returns a description for messages (and the
        run's record, ``init`` in ``progress.json``)."""
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
        if widen:
            if self.widen_generator is None:
                raise InputError(widen_refusal(self.name))
            g_state, how = self.widen_generator(g_state, widen_noise)
            what += f"; generator {how}"
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


SCHEDULE_FIELDS = ("iters", "decay_iters", "lr_drop_at")  # may change when a run is resumed; nothing else may
# a run started from another one's weights (--init) must keep its architecture; schedule and data may differ
INIT_FIELDS = SCHEDULE_FIELDS + ("batch_size", "holdout", "seed", "g_lr", "d_lr")


def widening_trainers() -> list[str]:
    """The registered trainers whose generator ``--widen`` can widen (those that define ``widen_generator``)."""
    from . import TRAINERS

    return [n for n in TRAINERS.names() if TRAINERS.get(n).widen_generator is not None]


def widen_refusal(method: str) -> str:
    """The one-line refusal of ``--widen`` for trainer ``method``, naming those that support it."""
    able = widening_trainers()
    return (f"--widen applies to {', '.join(able) or 'no trainer'} (a generator that widens function-preservingly), "
            f"not {method}; drop --widen, or train {able[0] if able else 'one of those'} instead")


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
    """Write the run's trained network (a generator, or a defense's perturbation generator; with ``critic``
    a GAN's critic, for later fine-tuning) as a safetensors state dict, fp16 by default; returns
    sha256/size/step."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..assets import sha256_file

    run = Path(run_dir)
    prog = run / "progress.json"
    product = json.loads(prog.read_text()).get("product", "G.safetensors") if prog.is_file() else "G.safetensors"
    if critic and product != "G.safetensors":
        raise InputError(f"--critic: {run} trains {product.removesuffix('.safetensors')} without a critic; export it without --critic")
    src = run / ("state.pt" if critic else product)
    if not src.is_file():
        raise InputError(f"{src} not found: pass the run directory of `pdbench train` (it holds {src.name})")
    if critic:
        st = torch.load(src, map_location="cpu", weights_only=True)
        state = st["D"]
        meta = {"step": str(st["step"]), "recipe": json.dumps(st["recipe"]), "part": "critic"}
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


class PerturbationTrainer(Trainer):
    """A model-based defense's perturbation generator PG against a frozen deepfake generator (no critic).

    The recipe names the target generator (``target``: a registered generator with its shipped weights,
    at the recipe's resolution), ``eps`` and the PG's optimiser (``lr``, ``beta1``, ``beta2``).
    Batches bring the target's attribute labels and its official edits (:meth:`edits`); the subclass
    builds PG (:meth:`build`) and its loss (:meth:`train_step`). x_adv = clamp(x + ε·PG(x)): PG ends in
    tanh, so ‖δ‖∞ ≤ ε holds by construction, as in the defense that loads the weights.
    """

    product = "PG"

    def _target_cls(self):
        from ..generators import GENERATORS

        return GENERATORS.get(self.recipe.target)

    @property
    def attributes(self) -> tuple[str, ...]:  # the target's labels (StarGAN: its five CelebA attributes)
        return tuple(getattr(self._target_cls(), "attributes", ()))

    @property
    def crop(self) -> float:  # the target's official preprocessing
        from ..generators.base import PREPROCESSING

        return float(PREPROCESSING.get(self.recipe.target).crop)  # the architecture's default record

    def build_parts(self) -> None:
        from ..generators import get_generator

        r = self.recipe
        self.target = get_generator(r.target).to(self.device).eval().requires_grad_(False)
        if self.target.resolution != r.resolution:
            raise InputError(f"{r.target}'s shipped weights are for {self.target.resolution} px, the recipe asks for "
                             f"{r.resolution}: pass --resolution {self.target.resolution}")
        self.PG = self.build().to(self.device)
        self.opt = torch.optim.Adam(self.PG.parameters(), r.lr, (r.beta1, r.beta2))

    def build(self) -> torch.nn.Module:
        raise NotImplementedError

    def parts(self) -> dict[str, torch.nn.Module]:
        return {"PG": self.PG}

    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def lr_bases(self) -> list[tuple[torch.optim.Optimizer, float]]:
        return [(self.opt, self.recipe.lr)]

    def extra_progress(self) -> dict:
        return {"target": self.recipe.target, "target_fingerprint": self.target.fingerprint()}

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """x_adv = clamp(x + ε·PG(x), −1, 1) (differentiable in PG's weights)."""
        return (x + self.recipe.eps * self.PG(x).float()).clamp(-1.0, 1.0)

    def edits(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The target's official edit conditions (K, N, C); with ``edits_per_step`` = k < K, k of them
        drawn at random per image (an unbiased estimate of the mean over all K at a k/K of the cost)."""
        cs = self.target.conditions(None if labels is None else labels.cpu(), n).to(self.device)
        k = getattr(self.recipe, "edits_per_step", 0)
        if not k or k >= cs.shape[0]:
            return cs
        pick = torch.rand(cs.shape[0], n, device=self.device, generator=self.gen).argsort(dim=0)[:k]  # (k, N)
        return cs.gather(0, pick[:, :, None].expand(-1, -1, cs.shape[2]))

    def sample_grid(self) -> np.ndarray:
        """Rows: x, x_adv, then each edit of x and of x_adv (what a nullified generator shows: no edit)."""
        from ..tensors import to_uint8

        self.PG.eval()
        with torch.inference_mode():
            x = self.fixed_x
            x_adv = self.perturb(x)
            cs = self.target.conditions(self.fixed_c, x.shape[0]).to(self.device)
            outs = [x, x_adv] + [self.target.generate(x, c) for c in cs] + [self.target.generate(x_adv, c) for c in cs]
        self.PG.train()
        img = to_uint8(torch.cat(outs, dim=3).clamp(-1, 1))
        return np.concatenate(list(img), axis=0)
