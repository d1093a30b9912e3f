"""CMUA-Watermark (Huang et al., AAAI 2022): one universal δ for all images and all target models.

Training (:func:`train_universal`, after VDIGPKU/CMUA-Watermark ``attacks.py``/``universal_attack.py``):
for each batch of training faces, for each target model and each of its edit conditions, ``k`` PGD
steps on MSE(G(x_adv, c), G(x, c)) starting from x + δ (the official code's HiSD path; its StarGAN and
AttGAN paths restart from x + U(-ε, ε), ``restart="random"``, which forgets every model but the last);
after every step the batch-mean
η = mean_batch(clamp(factor·(x_adv − x), ±ε)) is fused into the universal δ with momentum
(δ ← 0.5·δ + 0.5·η; the first η is δ) and the next step starts from clamp(x + δ, -1, 1). The official
defaults (``setting.json``): ε 0.05, α 0.01, k 10, momentum 0.5, batch 64, 128 training images, every
model's step factor 1 (pdbench takes a member's ensemble weight as its factor). The official AttGAN
loop also attacks the unedited attributes; pdbench attacks each generator's official test edits.

Applying: x_adv = Π_ε(x + δ) for any image (``cmua`` is a :class:`ModelDefense` whose weights are δ, so
its fingerprint covers δ). Where δ comes from:

* ``delta="path.safetensors"``: a δ file written by :func:`save_delta` (or
  ``python -m pdbench.defenses.cmua --out delta.safetensors --generators stargan attgan``);
* otherwise it is trained once per process on ``train_n`` training faces (default 128: CelebA's
  training split of the ``celeba-10k-89px`` asset, i.e. never the held-out faces) against the run's
  target generators (or ``surrogates``), and saved to ``save_to`` when given; a later process (a resumed
  run) reads ``save_to`` back instead of training again when the file records the same training (trainer,
  generators and their weights, faces, settings), and refuses a file trained otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from ..errors import AssetCorruptError, AssetMissingError, InputError
from ..generators import Target, TargetMember
from ..tensors import check_images
from . import DEFENSES
from .base import ALPHA, EPS, ModelDefense, Record, config_hash, tensor_hash
from .ensemble import check_resolution, parse_members

RECORD = Record(
    paper="CMUA-Watermark: A Cross-Model Universal Adversarial Watermark for Combating Deepfakes",
    venue="AAAI", year=2022, url="https://arxiv.org/abs/2105.10872",
    code="https://github.com/VDIGPKU/CMUA-Watermark",
    official={"eps": 0.05, "alpha": 0.01, "k": 10, "momentum": 0.5, "batch_size": 64, "train_images": 128,
              "restart": "random (StarGAN/AttGAN/AttentionGAN paths), δ (HiSD path)",
              "factors": {"stargan": 1, "attentiongan": 1, "attgan": 1, "hisd": 1}, "random_start": True,
              "source": "setting.json (attacks.py's class defaults are star 0.3, attention 0.3, att 2, HiSD 1)"},
    notes="Success: masked L2 > 0.05 with mask Σ_c |G(x) − x| > 0.5 (pdbench's dsr_l2_mask).",
)
DEFAULT_FACES = "celeba-10k-89px"
HOLDOUT = 1000  # the asset's last 1,000 images are the held-out test split


def train_universal(x: torch.Tensor, target: Target, eps: float = EPS, alpha: float = ALPHA, steps: int = 10,
                    momentum: float = 0.5, batch_size: int = 64, seed: int = 0, restart: str = "delta",
                    progress=None) -> torch.Tensor:
    """The universal δ (3, H, W) for training images x (N, 3, H, W) and a target with their conditions.

    ``restart``: where each model/condition's k steps start. ``"delta"`` (default): from x + δ, as the
    official HiSD path does. ``"random"``: from x + U(-ε, ε), as the official StarGAN/AttGAN paths do; the
    first η is then ≈ α·mean(sign ∇) without δ in it, so the fusion halves δ at every condition and the
    model attacked last dominates (pdbench measured it: see the README)."""
    if restart not in ("delta", "random"):
        raise InputError(f"cmua: restart must be 'delta' or 'random', got {restart!r}")
    check_images(x, "cmua training images")
    check_resolution(target, x)
    gen = torch.Generator().manual_seed(seed)
    up = None
    batches = [slice(i, min(i + batch_size, len(x))) for i in range(0, len(x), batch_size)]
    total = len(batches) * sum(m.conditions.shape[0] for m in target.members) * steps
    done = 0
    for b in batches:
        xb = x[b].detach()
        tb = target.subset(b)
        for m in tb.members:
            g, factor = m.generator, m.weight
            for c in m.conditions.to(x.device):
                with torch.inference_mode():
                    y = g.generate(xb, c).clone()
                if up is None or restart == "random":
                    noise = torch.empty(xb.shape).uniform_(-eps, eps, generator=gen).to(x.device)
                    xa = (xb + noise).clamp(-1.0, 1.0)
                else:  # continue from the universal δ (the official HiSD path)
                    xa = (xb + up).clamp(-1.0, 1.0)
                for _ in range(steps):
                    xa = xa.detach().requires_grad_(True)
                    loss = (g.generate(xa, c) - y).pow(2).mean()
                    (grad,) = torch.autograd.grad(loss, xa)
                    eta = (factor * (xa.detach() + alpha * grad.sign() - xb)).clamp(-eps, eps).mean(dim=0)
                    up = eta if up is None else up * momentum + eta * (1 - momentum)
                    xa = (xb + up).clamp(-1.0, 1.0)
                    done += 1
                    if progress is not None:
                        progress(done, total)
    return up.detach()


def training_faces(resolution: int, n: int, crop: float = 1.0, faces: str | None = None, seed: int = 0):
    """n training faces (never the held-out split) and the folder they come from."""
    from ..assets import resolve
    from ..data import FaceFolder

    if faces is None:
        root = resolve(DEFAULT_FACES, check=False)
        folder = FaceFolder(root / "images", resolution, attr_file=root / "list_attr_celeba_first20k.txt", crop=crop)
        pool, _ = folder.split(HOLDOUT)
    else:
        folder = FaceFolder(faces, resolution, crop=crop)
        pool = None
    idx = folder.select(n, seed=seed, pool=pool)
    return folder, idx


def resolve_members(specs, device="cpu") -> list[tuple]:
    """(generator, weight) per configured member, each generator loaded once per process."""
    from .ensemble import load_member

    return [(load_member(name, kw, device), w) for name, kw, w in parse_members(specs)]


def faces_target(members: list[tuple], n: int = 128, faces: str | None = None, device="cpu"):
    """n training faces (never the held-out split) as (x, target) against (generator, weight) members, each
    member with its official edits of the faces' real attributes; also the chosen indices."""
    res = {g.resolution for g, _ in members}
    if len(res) != 1:
        raise InputError(f"universal δ: all target generators must share one resolution, got {sorted(res)}")
    folder, idx = training_faces(res.pop(), n, members[0][0].crop, faces)
    x = folder.load(idx).to(device)
    tms = []
    for g, w in members:
        labels = folder.labels(g.attributes, idx) if getattr(g, "attributes", None) else None
        tms.append(TargetMember(g, g.conditions(labels, len(idx)), w))
    return x, Target(tms), idx


def train_on_faces(members: list[tuple], n: int = 128, faces: str | None = None, device="cpu", trainer=None,
                   method: str = "cmua", **kw):
    """Train δ on n training faces against (generator, weight) members; returns (δ, metadata).

    ``trainer(x, target, **kw) -> δ`` (default :func:`train_universal`, CMUA's); ``method`` is recorded in
    the metadata, so a δ file says which defense trained it."""
    x, target, idx = faces_target(members, n, faces, device)
    delta = (trainer or train_universal)(x, target, **kw)
    return delta, {**delta_meta(members, n, faces, method, kw), "n_train": len(idx)}


def delta_meta(members: list[tuple], n: int, faces: str | None, method: str, kw: dict) -> dict:
    """What a δ file records about its training (JSON values): the trainer, the generators with their
    weights' fingerprints and ensemble weights, the faces asked for (``train_n``) and the trainer's settings."""
    meta = {"method": method, "generators": [g.name for g, _ in members],
            "generator_weights": {g.name: g.fingerprint() for g, _ in members},
            "weights": [w for _, w in members], "train_n": int(n), "faces": faces or DEFAULT_FACES, "config": kw}
    return json.loads(json.dumps(meta, default=str))


def save_delta(path, delta: torch.Tensor, meta: dict) -> str:
    """Write δ (safetensors, atomically) with its metadata and fingerprint; returns the fingerprint."""
    from ..io import save_safetensors

    fp = tensor_hash({"delta": delta})
    save_safetensors({"delta": delta.detach().float().cpu()}, path,
                     metadata={"meta": json.dumps(meta, default=str), "fingerprint": fp})
    return fp


def load_delta(path, name: str = "cmua", method: str | None = None) -> tuple[torch.Tensor, dict]:
    """δ and its metadata from a file written by :func:`save_delta`, checked against its fingerprint.

    ``name``: the defense loading it (for messages and the ``python -m pdbench.defenses.<name>`` hint);
    ``method``: the trainer the file must come from (its recorded ``method``), when given."""
    from safetensors import safe_open

    p = Path(path).expanduser()
    module = (method or name).split("-")[0]
    if not p.is_file():
        raise AssetMissingError(f"{name}: no δ file at {p}; train one with `python -m pdbench.defenses.{module} "
                                f"--out {p.name}` or leave delta unset to train on the fly")
    try:
        with safe_open(str(p), framework="pt") as f:
            delta, md = f.get_tensor("delta"), f.metadata() or {}
    except Exception as e:  # not a safetensors file, or no "delta" in it
        raise AssetCorruptError(f"{name}: {p} is not a δ file written by pdbench ({type(e).__name__}); retrain it") from None
    if delta.dim() != 3 or delta.shape[0] != 3:
        raise AssetCorruptError(f"{name}: {p} holds a tensor of shape {tuple(delta.shape)}, not a δ of shape (3, H, W)")
    if md.get("fingerprint") and md["fingerprint"] != tensor_hash({"delta": delta}):
        raise AssetCorruptError(f"{name}: {p}'s δ does not match its recorded fingerprint (damaged file); retrain it")
    meta = json.loads(md.get("meta", "{}"))
    if method is not None and meta.get("method", method) != method:
        raise InputError(f"{name}: {p} holds a δ trained by {meta['method']}, not {method}; train one with "
                         f"`python -m pdbench.defenses.{module} --out {p.name}`")
    return delta, meta


class UniversalDelta(nn.Module):
    """The 'network' of a universal perturbation: returns δ for every image."""

    def __init__(self, delta: torch.Tensor, name: str = "cmua"):
        super().__init__()
        self.name = name
        self.register_buffer("delta", delta.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(self.delta.shape) != tuple(x.shape[1:]):
            raise InputError(f"{self.name}: δ is {self.delta.shape[-2]}x{self.delta.shape[-1]} but the images are "
                             f"{x.shape[-2]}x{x.shape[-1]}; train δ at the generator's resolution")
        return self.delta.to(x.dtype).expand_as(x)


_TRAINED: dict = {}


class UniversalDefense(ModelDefense):
    """A universal δ for every image: read from a δ file (``delta=``) or trained once per process on
    ``train_n`` training faces against the run's generators (or ``surrogates``), then saved to ``save_to``.

    Subclasses implement :meth:`train_delta` (the trainer) and may add their settings to :meth:`config`
    and :meth:`train_kwargs`; ``delta_method`` is the ``method`` their δ files record."""

    access = "white-box (universal, cross-model)"
    methodology = "universal"
    scale_output = False
    delta_method: str = "?"

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = 10, seed: int = 0, delta: str | None = None,
                 surrogates: list | None = None, train_n: int = 128, batch_size: int = 64, faces: str | None = None,
                 save_to: str | None = None):
        super().__init__(None, eps=eps, alpha=alpha, steps=steps, seed=seed)
        if surrogates is not None:
            parse_members(surrogates)
        if train_n < 1 or batch_size < 1:
            raise InputError(f"{self.name}: train_n and batch_size must be positive, got {train_n} and {batch_size}")
        self.delta_path, self.surrogates, self.train_n = delta, surrogates, int(train_n)
        self.batch_size, self.faces, self.save_to = int(batch_size), faces, save_to
        self.meta: dict = {}
        if delta is not None:
            d, self.meta = load_delta(delta, self.name, self.delta_method)
            self.network = UniversalDelta(d, self.name)

    def config(self) -> dict:
        c = super().config()
        if self.delta_path is None:  # trained on the fly: how
            c.update(surrogates=self.surrogates, train_n=self.train_n, batch_size=self.batch_size, faces=self.faces)
        return c

    def train_kwargs(self) -> dict:
        """The trainer's keyword arguments."""
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "batch_size": self.batch_size,
                "seed": self.seed}

    def train_delta(self, x: torch.Tensor, target: Target, **kw) -> torch.Tensor:
        raise NotImplementedError

    def load_network(self, x, target):
        if self.network is not None:
            return self.network
        if self.surrogates is not None:
            members = resolve_members(self.surrogates, x.device)
        else:  # the run's own generators, as they are loaded
            members = [(m.generator, m.weight) for m in target.members]
        for g, _ in members:
            if hasattr(g, "inner"):  # publish.PhotoGenerator: the whole photo at its own size
                raise InputError(f"{self.name}: a universal δ lives at the generator's {g.inner.resolution} px input, "
                                 "not on each photo's pixels; protect with --mode model-input")
        key = config_hash([self.name, [(g.name, g.fingerprint(), w) for g, w in members], self.config(), str(x.device)])
        if key not in _TRAINED and self.save_to and Path(self.save_to).expanduser().is_file():
            _TRAINED[key] = self._saved(members)  # a δ this configuration already trained (a resumed run)
        if key not in _TRAINED:
            delta, meta = train_on_faces(members, self.train_n, self.faces, device=x.device, trainer=self.train_delta,
                                         method=self.delta_method, **self.train_kwargs())
            _TRAINED[key] = (delta, meta)
            if self.save_to:
                save_delta(self.save_to, delta, meta)
        delta, self.meta = _TRAINED[key]
        self.network = UniversalDelta(delta, self.name)
        return self.network

    def _saved(self, members: list[tuple]) -> tuple[torch.Tensor, dict]:
        """δ and metadata from ``save_to`` when that file was trained exactly as this defense would train
        (same trainer, generators and weights, faces and settings); a file trained otherwise is refused in
        one line and left as it is."""
        delta, meta = load_delta(self.save_to, self.name, self.delta_method)
        want = delta_meta(members, self.train_n, self.faces, self.delta_method, self.train_kwargs())
        differ = [k for k in want if meta.get(k) != want[k]]
        if differ:
            raise InputError(f"{self.name}: {self.save_to} holds a δ trained otherwise ({', '.join(differ)} differ); "
                             "delete it or choose another save_to")
        return delta, meta


@DEFENSES.register("cmua")
class CMUA(UniversalDefense):
    record = RECORD
    delta_method = "cmua"

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = 10, seed: int = 0, delta: str | None = None,
                 surrogates: list | None = None, train_n: int = 128, batch_size: int = 64, momentum: float = 0.5,
                 faces: str | None = None, save_to: str | None = None, restart: str = "delta"):
        if restart not in ("delta", "random"):
            raise InputError(f"cmua: restart must be 'delta' or 'random', got {restart!r}")
        self.restart, self.momentum = restart, float(momentum)
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed, delta=delta, surrogates=surrogates,
                         train_n=train_n, batch_size=batch_size, faces=faces, save_to=save_to)

    def config(self) -> dict:
        return {**super().config(), "momentum": self.momentum, "restart": self.restart}

    def train_kwargs(self) -> dict:
        return {**super().train_kwargs(), "momentum": self.momentum, "restart": self.restart}

    def train_delta(self, x, target, **kw):
        return train_universal(x, target, **kw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pdbench.defenses.cmua",
                                description="Train a CMUA-Watermark universal δ on training faces and save it.")
    p.add_argument("--out", required=True, help="δ file to write (.safetensors)")
    p.add_argument("--generators", nargs="+", default=["stargan", "attgan"])
    p.add_argument("--n", type=int, default=128, help="training faces (official: 128)")
    p.add_argument("--faces", default=None, help="a folder of faces (default: the CelebA asset's training split)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--restart", choices=["delta", "random"], default="delta")
    a = p.parse_args(argv)
    delta, meta = train_on_faces(resolve_members(a.generators, a.device), a.n, a.faces, device=a.device, steps=a.steps, batch_size=a.batch_size,
                                 restart=a.restart)
    fp = save_delta(a.out, delta, meta)
    print(f"wrote {a.out}: universal δ {tuple(delta.shape)} trained on {meta['n_train']} faces against "
          f"{', '.join(meta['generators'])} (fingerprint {fp})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
