"""An independent attribute classifier of 64 px CelebA faces (``pdbench train classifier``): the judge of editors.

Why its own network: the "attribute accuracy" an editor's critic reports is not independent of the editor
(StarGAN's critic trained it; FPGAN, AttentionGAN and RelGAN were fine-tuned from StarGAN and its critic).
This classifier never sees a generator: it is trained from scratch on real CelebA training faces only (the
first 9,000 of ``celeba-10k-89px``, of which the last ``val`` are a validation split that picks the
checkpoint; the last 1,000 of the folder are never loaded), over AttGAN's 13 attributes (a superset of
StarGAN's, RelGAN's pdbench set and HiSD's tags).

Preprocessing: 64 px, [-1, 1]. The editors read different crops of CelebA's aligned images (``G.crop``:
StarGAN, FPGAN, AttentionGAN, RelGAN and HiSD the centre square, AttGAN 170 of 178 px); every training
image is drawn at one of those crops (:data:`EDITOR_CROPS`, each prepared exactly as the editors prepare
their inputs), flipped with p = 0.5 and shifted by up to ``shift`` px, so that one classifier reads every
editor's 64 px output as it comes.

Network (:class:`AttrClassifierNet`): VGG-style stages of conv3×3-BN-ReLU (widths ``dims``, ``convs`` a
stage, 2×2 max-pool after each), global average pooling, dropout, one linear layer to 13 logits.
Loss: multi-label BCE with ``pos_weight`` = negatives/positives per attribute of the training labels
(class-balanced), so that sigmoid > 0.5 is a balanced decision also for rare attributes (Bald, Mustache).
Adam, lr 1e-3 with a cosine decay to 0; the checkpoint with the best mean balanced accuracy on the
validation split is the product (``C.safetensors``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import FaceFolder
from ..errors import AssetCorruptError, InputError
from ..io import torch_save
from ..generators.attgan import ATTRS, CROP as ATTGAN_CROP
from . import TRAINERS
from .evaluate import HAIR_COLOURS
from .loop import Trainer

EDITOR_CROPS = (1.0, ATTGAN_CROP)  # the crops of the shipped 64 px editors' weights (Preprocessing.crop)
ASSET = "attr-classifier-celeba-64-pdbench"


class AttrClassifierNet(nn.Module):
    """Stages of ``convs[i]`` × conv3×3-BN-ReLU at width ``dims[i]``, each closed by a 2×2 max-pool; global
    average pooling, dropout, linear to one logit per attribute."""

    def __init__(self, n_attrs: int = len(ATTRS), dims: tuple[int, ...] = (32, 64, 128, 256),
                 convs: tuple[int, ...] | None = None, dropout: float = 0.3):
        super().__init__()
        convs = convs or (1,) * len(dims)
        if len(convs) != len(dims):
            raise InputError(f"classifier: {len(dims)} stage widths but {len(convs)} conv counts; give one count a stage")
        stages: list[nn.Module] = []
        c_in = 3
        for d, n in zip(dims, convs):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers += [nn.Conv2d(c_in, d, 3, padding=1, bias=False), nn.BatchNorm2d(d), nn.ReLU(inplace=True)]
                c_in = d
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        self.features = nn.Sequential(*stages)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, n_attrs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x).mean(dim=(2, 3))))


def shape_of(state: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(stage widths, convs per stage) of a saved :class:`AttrClassifierNet`, read from its conv weights."""
    stages: dict[int, list[int]] = {}
    for k, v in state.items():
        parts = k.split(".")
        if len(parts) == 4 and parts[0] == "features" and parts[3] == "weight" and v.dim() == 4:
            stages.setdefault(int(parts[1]), []).append(int(v.shape[0]))
    order = sorted(stages)
    return tuple(stages[i][-1] for i in order), tuple(len(stages[i]) for i in order)


def attr_classifier(checkpoint: str | None = None, device: str | torch.device = "cpu"):
    """The shipped classifier (asset ``attr-classifier-celeba-64-pdbench``, checksum-verified, loaded
    strictly) or ``checkpoint`` (a ``C.safetensors`` of ``pdbench train classifier``) as a function
    x (N, 3, 64, 64) in [-1, 1] -> logits (N, 13) over :data:`ATTRS`; ``.attributes`` names the columns."""
    from ..generators.base import checkpoint_state, load_frozen

    state, path, _ = checkpoint_state(checkpoint, ASSET)
    dims, convs = shape_of(state)
    if not dims or "head.weight" not in state:
        raise AssetCorruptError(f"{path} is not an attribute classifier state dict (no features.*/head.* tensors); pass the "
                                f"C.safetensors of `pdbench train classifier`")
    net = load_frozen(AttrClassifierNet(int(state["head.weight"].shape[0]), dims, convs), state, path).to(device)
    if net.head.out_features != len(ATTRS):
        raise AssetCorruptError(f"{path}: {net.head.out_features} outputs, the classifier reads {len(ATTRS)} attributes ({', '.join(ATTRS)})")

    def classify(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (3, 64, 64):
            raise InputError(f"the attribute classifier reads (N, 3, 64, 64) faces in [-1, 1], got {tuple(x.shape)}; "
                             f"resize the images to 64 px first")
        with torch.inference_mode():
            return torch.cat([net(c.to(device)) for c in x.clamp(-1, 1).split(100)]).float()

    classify.attributes = ATTRS
    classify.net = net
    return classify


def balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(accuracy, balanced accuracy) per column of boolean predictions vs {0, 1} labels; balanced accuracy
    is (TPR + TNR) / 2, NaN where a column has no positive or no negative."""
    pred, lab = pred.bool(), labels.bool()
    acc = (pred == lab).float().mean(0)
    pos, neg = lab.sum(0).float(), (~lab).sum(0).float()
    tpr = (pred & lab).sum(0) / pos
    tnr = (~pred & ~lab).sum(0) / neg
    bal = torch.where((pos > 0) & (neg > 0), (tpr + tnr) / 2, torch.full_like(tpr, float("nan")))
    return acc, bal


def accuracy_report(classify, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Per attribute (``classify.attributes``): positives, accuracy and balanced accuracy of sigmoid > 0.5 on
    real faces x with their labels; plus the means, and ``hair_argmax``: how often the most likely of the
    three hair colours is right on faces labelled with exactly one of them. The hair colours also get
    ``balanced_accuracy_argmax``: "this colour is the argmax of the three" against the label, the reading
    :func:`pdbench.train.evaluate.attribute_success` uses for hair edits."""
    logits = classify(x)
    acc, bal = balanced_accuracy(logits > 0, labels)
    names = list(classify.attributes)
    out = {"n": int(x.shape[0]), "attributes": {a: {"positives": int(labels[:, i].sum()), "accuracy": round(float(acc[i]), 4),
                                                    "balanced_accuracy": round(float(bal[i]), 4)}
                                                for i, a in enumerate(names)},
           "mean_accuracy": round(float(acc.mean()), 4), "mean_balanced_accuracy": round(float(bal.nanmean()), 4)}
    hk = [names.index(h) for h in HAIR_COLOURS]
    one = labels[:, hk].sum(1) == 1
    if bool(one.any()):
        got = logits[one][:, hk].argmax(1) == labels[one][:, hk].argmax(1)
        out["hair_argmax"] = {"accuracy": round(float(got.float().mean()), 4), "faces": int(one.sum())}
    arg = logits[:, hk].argmax(1)
    _, bal_arg = balanced_accuracy(torch.stack([arg == j for j in range(3)], 1), labels[:, hk])
    for j, h in enumerate(HAIR_COLOURS):
        out["attributes"][h]["balanced_accuracy_argmax"] = round(float(bal_arg[j]), 4)
    return out


@dataclass
class ClassifierRecipe:
    resolution: int = 64
    batch_size: int = 64
    iters: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dims: str = "32,64,128,256"
    convs: str = "1,1,1,1"  # conv-BN-ReLU layers a stage
    dropout: float = 0.3
    shift: int = 2  # random translation (px, replicate padding) on top of the crop choice and flip
    val: int = 500  # the last `val` training faces: the validation split that picks the checkpoint
    eval_every: int = 100
    holdout: int = 1000  # the folder's last 1,000: never loaded
    seed: int = 0

    def stages(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(widths, convs per stage) from ``dims`` and ``convs``."""
        out = []
        for key in ("dims", "convs"):
            raw = getattr(self, key)
            try:
                vals = tuple(int(d) for d in raw.split(","))
            except ValueError:
                vals = ()
            if not vals or min(vals) < 1:
                raise InputError(f"classifier {key} {raw!r}: give positive comma-separated integers, e.g. --set {key}="
                                 f"{'32,64,128,256' if key == 'dims' else '1,1,1,1'}")
            out.append(vals)
        return out[0], out[1]


@TRAINERS.register("classifier")
class ClassifierTrainer(Trainer):
    """Trains :class:`AttrClassifierNet` on real faces (the loop's data, checkpoints, resume and time limit)."""

    Recipe = ClassifierRecipe
    attributes = ATTRS
    crop = EDITOR_CROPS[0]
    product = "C"

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if dim is not None or fc_dim is not None or layers is not None:
            raise InputError("classifier: set its widths with --set dims=32,64,128,256 (no --dim/--fc-dim/--layers)")
        return {}

    def split(self, ds: FaceFolder) -> tuple[list[int], list[int]]:
        """(train, validation): the folder's last ``holdout`` files are left out altogether (never loaded); of
        the rest, the last ``val`` validate. The loop's "held-out" slot holds the validation split."""
        r = self.recipe
        train, _ = ds.split(r.holdout)
        if r.val >= len(train):
            raise InputError(f"val {r.val} leaves no training faces of the {len(train)} before the held-out {r.holdout}")
        return train[:len(train) - r.val], train[len(train) - r.val:]

    def build_parts(self) -> None:
        r = self.recipe
        if r.resolution != 64:
            raise InputError(f"the attribute classifier reads the 64 px editors' outputs; --resolution {r.resolution} is not supported")
        ds = self.dataset
        train_idx, val_idx = self.split(ds)
        # one uint8 store per editor crop (the loop loaded the first); each prepared as the editors prepare theirs
        stores = [self.images]
        for crop in EDITOR_CROPS[1:]:
            other = FaceFolder(ds.root, r.resolution, check_files=False, crop=crop)  # the same sorted files
            stores.append(torch.from_numpy(other.load_uint8(train_idx)).permute(0, 3, 1, 2).contiguous().to(self.device))
        self.stores = torch.stack(stores)  # (K, N, 3, H, W)
        self.val_x = torch.cat([FaceFolder(ds.root, r.resolution, check_files=False, crop=c).load(val_idx)
                                for c in EDITOR_CROPS]).to(self.device)
        self.val_y = ds.labels(ATTRS, val_idx).repeat(len(EDITOR_CROPS), 1).to(self.device)
        pos = self.labels.sum(0)
        self.pos_weight = ((self.labels.shape[0] - pos) / pos.clamp_min(1)).to(self.device)
        self.net = AttrClassifierNet(len(ATTRS), *r.stages(), dropout=r.dropout).to(self.device)
        self.best = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.best_score = float("-inf")
        self.best_step = 0
        self.opt = torch.optim.Adam(self.net.parameters(), r.lr, weight_decay=r.weight_decay)

    def parts(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net, "C": self.best}

    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def lr_bases(self) -> list[tuple[torch.optim.Optimizer, float]]:
        return [(self.opt, self.recipe.lr)]

    def lr_factor(self) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(self.step, self.recipe.iters) / self.recipe.iters))  # a float: state.pt loads weights_only

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The loop's batch, each image drawn from a random editor crop, flipped, shifted by ≤ ``shift`` px."""
        b, r = self.recipe.batch_size, self.recipe
        if self._pos + b > self._perm.numel():
            self._perm = torch.randperm(self.stores.shape[1], device=self.device, generator=self.gen)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + b]
        self._pos += b
        k = torch.randint(self.stores.shape[0], (b,), device=self.device, generator=self.gen)
        x = self.stores[k, idx].float().div_(127.5).sub_(1.0)
        flip = torch.rand(b, device=self.device, generator=self.gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if r.shift:
            s = r.shift
            h, w = x.shape[-2:]
            pad = F.pad(x, (s, s, s, s), mode="replicate")
            dy, dx = torch.randint(2 * s + 1, (2,), generator=self.gen, device=self.device).tolist()
            x = pad[:, :, dy:dy + h, dx:dx + w]
        return x, self.labels[idx]

    def train_step(self) -> dict[str, torch.Tensor]:
        x, y = self.batch()
        self.net.train()
        with self.autocast():
            logits = self.net(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y, pos_weight=self.pos_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        logs = {"bce": loss.detach()}
        if (self.step + 1) % self.recipe.eval_every == 0 or self.step + 1 == self.recipe.iters:
            logs["val_bal"] = torch.tensor(self.validate())
        return logs

    @torch.no_grad()
    def validate(self) -> float:
        """Mean balanced accuracy on the validation split (every editor crop); keeps the best network."""
        self.net.eval()
        logits = torch.cat([self.net(c) for c in self.val_x.split(250)])
        score = float(balanced_accuracy(logits > 0, self.val_y)[1].nanmean())
        if score > self.best_score:
            self.best_score, self.best_step = score, self.step + 1
            self.best.load_state_dict(self.net.state_dict())
        print(f"step {self.step + 1}: validation mean balanced accuracy {score:.4f} (best {self.best_score:.4f} at "
              f"{self.best_step})", flush=True)
        return score

    def extra_progress(self) -> dict:
        return {"best_step": self.best_step, "best_val_balanced_accuracy": round(self.best_score, 4),
                "val_faces": self.recipe.val, "crops": list(EDITOR_CROPS)}

    def save(self) -> None:
        super().save()
        torch_save({"best_score": self.best_score, "best_step": self.best_step}, self.out / "best.pt")

    def resume(self) -> bool:
        ok = super().resume()
        p = self.out / "best.pt"
        if ok and p.exists():
            st = torch.load(p, weights_only=True)
            self.best_score, self.best_step = float(st["best_score"]), int(st["best_step"])
        return ok

    def sample_grid(self) -> np.ndarray:
        """The first validation faces, one row per editor crop (what the classifier reads)."""
        from ..tensors import to_uint8

        n = self.recipe.val
        rows = [torch.cat(list(self.val_x[k * n:k * n + 8]), dim=2) for k in range(len(EDITOR_CROPS))]
        return np.concatenate([to_uint8(r[None])[0] for r in rows], axis=0)
