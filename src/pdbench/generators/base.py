"""The generator contract (v2) and the defense target (one generator or an ensemble, with conditions).

Images follow the pdbench convention (:mod:`pdbench.tensors`): float32 NCHW in [-1, 1].

``Generator.generate(x, cond, seed=None, chunk=None)`` is the one entry point:

* ``cond`` is a :class:`Condition`: attribute edits (``attrs``), a reference image with the ``role`` the
  protected photo plays (face swap), a text or latent ``direction``, and a ``seed``. Every tensor field
  is ``(N, ...)`` for one edit per image or ``(K, N, ...)`` for K edits per image; the output has the same
  leading axes, ``(N, 3, H, W)`` or ``(K, N, 3, H, W)``. A bare tensor ``c`` is ``Condition(attrs=c)``.
* ``seed``: a stochastic generator (``stochastic = True``) gets per-row seeds that depend only on
  (seed, edit), so G(x) and G(x_adv) see the same noise, whatever the chunk or the batch.
* ``chunk`` (default ``chunk_size``): at most that many of the K × N rows per forward, so that K edits ×
  N images × sampling steps fit in memory; the rows are the same whatever the chunk.

An architecture implements ``edit(x, attrs, **inputs)``: one forward of B rows (``inputs`` holds
``reference``/``role``/``direction``/``seeds`` when the condition has them). It declares which condition
fields it reads (``inputs``) and may implement the hooks ``encode``/``decode``/``features``
(:attr:`Generator.capabilities` lists what it has; a missing hook raises :class:`Unsupported`).

Each set of weights carries a :class:`Preprocessing` record (crop, alignment, size, range, interpolation)
in :data:`PREPROCESSING`, keyed by the weights' name, as timm's pretrained configs are; an architecture's
own name keys its default (for a user's checkpoint). ``G.preprocessing`` is what the runner and the
publish stage read; ``G.crop`` is kept as its alias.

Edits: ``get_generator(name, edits=[...])`` (:meth:`Generator.select_edits`) keeps only those official edits,
in the official order, for ``conditions``/``condition``/``condition_names`` and in the fingerprint; a class's
``judged_edits`` are those of its shipped weights judged real, and choosing only them clears ``experimental``.

Contract v1 still works: ``G(x, c)``, ``G.generate(x, c)``, ``G.generate_many(x, cs)`` with tensors,
and a subclass written for v1 (it overrides ``generate(x, c)`` as its forward) is adapted on definition:
that method becomes its ``edit``.

Speed path: an architecture may keep a faster copy of its network for inference (AttGAN: BatchNorm
folded into its convolutions, channels-last, on the CPU), built from the weights on first use and
rebuilt when they change; ``state_dict()``, strict loading, :meth:`Generator.fingerprint` and training
see only the original weights. It is on by default; ``PDBENCH_FAST=0`` in the environment, or
``G.fast = False`` on one instance, turns it off (:attr:`Generator.fast_path`).
"""

from __future__ import annotations

import inspect
import numbers
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..registry import Registry
from ..tensors import check_images

ROLES = ("source", "target")  # what the protected photo x is in a swap (see Condition.role)
ALIGNMENTS = ("celeba", "ffhq", "none")
INTERPOLATIONS = ("bilinear",)  # what pdbench.data.preprocess does (Pillow's antialiased bilinear)
FIELDS = ("attrs", "reference", "direction")
FAST_ENV = "PDBENCH_FAST"  # 0 turns every generator's inference speed path off (default: on)


class Unsupported(InputError, NotImplementedError):
    """A generator lacks a hook or a condition field; one line naming which and what to use instead."""


def fast_default() -> bool:
    """Whether generators use their speed path unless told otherwise: ``PDBENCH_FAST`` (default 1)."""
    v = os.environ.get(FAST_ENV, "1").strip().lower()
    if v in ("0", "false", "no", "off"):
        return False
    if v in ("", "1", "true", "yes", "on"):
        return True
    raise InputError(f"{FAST_ENV}={v!r}: set it to 0 (the plain forward) or 1 (the speed path, the default)")


# -- the condition object -----------------------------------------------------------------------------


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def _index(items: tuple, key) -> tuple | str:
    """``items[key]`` for a tuple and an int, slice, sequence or tensor of indices (an int gives one item)."""
    if isinstance(key, numbers.Integral):
        return items[int(key)]
    if isinstance(key, slice):
        return tuple(items[key])
    idx = key.tolist() if isinstance(key, torch.Tensor) else list(key)
    if idx and isinstance(idx[0], bool):  # a boolean mask
        return tuple(s for s, keep in zip(items, idx) if keep)
    return tuple(items[int(i)] for i in idx)


@dataclass(frozen=True, eq=False)
class Condition:
    """What a generator is asked to do with each image x.

    ``attrs``: attribute edits, (N, C) or (K, N, C), in the generator's own encoding (``conditions()``).
    ``reference``: an image per edit and image, (N, 3, H, W) or (K, N, 3, H, W), in [-1, 1], with ``role``
    saying what the protected photo x is: ``"source"`` (x gives the identity, pasted onto the reference
    face) or ``"target"`` (x is the face or scene the reference identity is pasted onto).
    ``direction``: a text prompt (one ``str``, or K of them) or a latent direction (N, D) or (K, N, D).
    ``seed``: the noise of a stochastic generator (``generate(..., seed=)`` overrides it; default 0).
    ``names``: optional names of the K edits.

    Tensor fields without a K axis are shared by every edit; the fields must agree on K and N. Index it
    as a tensor of the same leading axes: ``cond[k]`` is edit k, ``cond[:, idx]`` the images idx.
    """

    attrs: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    role: str | None = None
    direction: torch.Tensor | str | tuple[str, ...] | None = None
    seed: int | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if self.attrs is None and self.reference is None and self.direction is None:
            raise InputError("condition: empty; give attrs (attribute edits), reference (an image, with role) "
                             "or direction (text or latent)")
        edits: dict[str, int] = {}
        images: dict[str, int] = {}
        a = self.attrs
        if a is not None:
            if not isinstance(a, torch.Tensor) or a.dim() not in (2, 3) or 0 in a.shape:
                raise InputError(f"condition: attrs must be a tensor of shape (N, C) or (K, N, C), got {_shape(a)}")
            if not a.is_floating_point():
                a = a.float()
                put("attrs", a)
            if not bool(torch.isfinite(a.detach()).all()):
                raise InputError("condition: attrs contain NaN or Inf values; check what produced them")
            images["attrs"] = a.shape[-2]
            if a.dim() == 3:
                edits["attrs"] = a.shape[0]
        r = self.reference
        if r is not None:
            if not isinstance(r, torch.Tensor) or r.dim() not in (4, 5):
                raise InputError(f"condition: reference must be images (N, 3, H, W) or (K, N, 3, H, W), got {_shape(r)}")
            check_images(r.reshape(-1, *r.shape[-3:]), "condition: reference")
            images["reference"] = r.shape[-4]
            if r.dim() == 5:
                edits["reference"] = r.shape[0]
            if self.role not in ROLES:
                raise InputError(f"condition: role must be 'source' (the protected photo gives the identity) or "
                                 f"'target' (the protected photo is the face the reference identity goes onto), got {self.role!r}")
        elif self.role is not None:
            raise InputError(f"condition: role {self.role!r} given without a reference image; pass reference=...")
        d = self.direction
        if isinstance(d, str):
            if not d.strip():
                raise InputError("condition: direction is an empty text; give a prompt or leave it out")
        elif isinstance(d, (list, tuple)):
            if not d or not all(isinstance(s, str) and s.strip() for s in d):
                raise InputError("condition: direction must be one text, a non-empty list of texts (one per edit) or a tensor")
            put("direction", tuple(d))
            edits["direction"] = len(d)
        elif isinstance(d, torch.Tensor):
            if d.dim() not in (2, 3) or 0 in d.shape:
                raise InputError(f"condition: a latent direction must be (N, D) or (K, N, D), got {_shape(d)}")
            if not d.is_floating_point() or not bool(torch.isfinite(d.detach()).all()):
                raise InputError(f"condition: a latent direction must be finite floats, got {d.dtype}")
            images["direction"] = d.shape[-2]
            if d.dim() == 3:
                edits["direction"] = d.shape[0]
        elif d is not None:
            raise InputError(f"condition: direction must be a text, texts or a tensor, got {type(d).__name__}")
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
                raise InputError(f"condition: seed must be a non-negative integer, got {self.seed!r}")
            put("seed", int(self.seed))
        for what, found in (("edits", edits), ("images", images)):
            if len(set(found.values())) > 1:
                said = ", ".join(f"{k} {v}" for k, v in found.items())
                raise InputError(f"condition: the fields disagree on the number of {what} ({said}); "
                                 f"give every field the same, or leave the K axis out of a field all edits share")
        put("names", tuple(self.names))
        if self.names and len(self.names) != self.edits:
            raise InputError(f"condition: {len(self.names)} names for {self.edits} edits")

    # -- shape ---------------------------------------------------------------------------------------
    @property
    def stacked(self) -> bool:
        """Whether the condition has a K axis (the output then is (K, N, 3, H, W))."""
        return ((self.attrs is not None and self.attrs.dim() == 3) or (self.reference is not None and self.reference.dim() == 5)
                or isinstance(self.direction, tuple) or (isinstance(self.direction, torch.Tensor) and self.direction.dim() == 3))

    @property
    def edits(self) -> int:
        """K, the number of edits per image (1 without a K axis)."""
        for t in (self.attrs, self.reference, self.direction):
            if isinstance(t, tuple):
                return len(t)
            if isinstance(t, torch.Tensor) and t.dim() in (3, 5):
                return t.shape[0]
        return 1

    @property
    def images(self) -> int | None:
        """N, the number of images the condition is for (None when it holds text only)."""
        if self.attrs is not None:
            return self.attrs.shape[-2]
        if self.reference is not None:
            return self.reference.shape[-4]
        if isinstance(self.direction, torch.Tensor):
            return self.direction.shape[-2]
        return None

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in FIELDS if isinstance(getattr(self, k), torch.Tensor)}

    def _full(self, name: str) -> torch.Tensor:
        """A tensor field as (K, N, ...), an unstacked one expanded over the K edits (no copy)."""
        t = getattr(self, name)
        stacked_dim = 5 if name == "reference" else 3
        return t if t.dim() == stacked_dim else t.unsqueeze(0).expand(self.edits, *t.shape)

    def rows(self, n: int) -> dict:
        """Every field flattened to the K × N rows of one batched forward (row k·N + i is edit k of
        image i): tensors (K·N, ...), texts a tuple of K·N strings; a field already of N rows (K = 1) is
        returned as it is."""
        k = self.edits
        out: dict = {}
        for name, t in self._tensors().items():
            tail = t.shape[-3:] if name == "reference" else t.shape[-1:]
            out[name] = t if (k == 1 and not self.stacked) else self._full(name).reshape(k * n, *tail)
        if isinstance(self.direction, str):
            out["direction"] = (self.direction,) * (k * n)
        elif isinstance(self.direction, tuple):
            out["direction"] = tuple(s for s in self.direction for _ in range(n))
        if self.reference is not None:
            out["role"] = self.role
        return out

    # -- tensor-like use -------------------------------------------------------------------------------
    def __getitem__(self, key) -> "Condition":
        if not self.stacked:  # the first axis is the images
            t = {k: v[key] for k, v in self._tensors().items()}
            for k, v in t.items():
                if v.dim() < (4 if k == "reference" else 2):
                    raise InputError("condition: index images with a slice or a list (cond[i:i+1]) to keep the image axis")
            return replace(self, **t)
        kk, nn_ = (key if isinstance(key, tuple) else (key, slice(None)))
        one = isinstance(kk, numbers.Integral)
        t = {}
        for k in self._tensors():
            v = self._full(k)[kk]
            t[k] = v[nn_] if one else v[:, nn_]
        if isinstance(self.direction, tuple):
            t["direction"] = _index(self.direction, kk)
        names = self.names and _index(self.names, kk)
        return replace(self, **t, names=() if one or not names else names)

    def __iter__(self):
        if not self.stacked:
            raise TypeError("iterate over the edits of a stacked condition (K, N, ...) only")
        return (self[k] for k in range(self.edits))

    def __len__(self) -> int:
        return self.edits if self.stacked else (self.images or 1)

    def to(self, device) -> "Condition":
        return replace(self, **{k: v.to(device) for k, v in self._tensors().items()})


def as_condition(cond) -> Condition:
    """``cond`` as a :class:`Condition`: a tensor is the attribute edits (contract v1)."""
    if isinstance(cond, Condition):
        return cond
    if isinstance(cond, torch.Tensor):
        return Condition(attrs=cond)
    raise InputError(f"a generator's condition must be a pdbench Condition or an attribute tensor, got {type(cond).__name__}")


def row_seeds(seed: int, k: int, n: int) -> torch.Tensor:
    """(K·N,) int64 seeds of the rows k·N + i, from (seed, k) only: every image of edit k draws the same
    noise, so G(x) and G(x_adv) see the same noise and a photo's output depends neither on the chunk it
    runs in nor on the batch it is in."""
    base = (int(seed) * 1_000_003) % (2**61 - 1)
    return torch.tensor([base + kk * 7_919 + 1 for kk in range(k)], dtype=torch.int64).repeat_interleave(n)


# -- preprocessing records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes this generator's input (per set of weights, as timm's ``pretrained_cfg``).

    ``size``: the square input side in px (0: the generator's resolution); ``crop``: the centre square
    of ``crop`` × the short side is taken before resizing (AttGAN: 170 of CelebA's 178 px);
    ``alignment``: how the faces it was trained on are aligned (``celeba``: CelebA's aligned crops,
    ``ffhq``: FFHQ / CelebA-HQ, ``none``: any photo); ``range``: the value range the network computes in
    (pdbench tensors are [-1, 1]; ``generate`` converts when this differs); ``interpolation``: the resize
    (Pillow's antialiased bilinear); ``source``: where the record comes from (the official code).
    """

    size: int = 0
    crop: float = 1.0
    alignment: str = "celeba"
    range: tuple[float, float] = (-1.0, 1.0)
    interpolation: str = "bilinear"
    source: str = ""

    def __post_init__(self):
        if not 0.0 < float(self.crop) <= 1.0:
            raise InputError(f"preprocessing: crop must be a fraction of the short side in (0, 1], got {self.crop}")
        if int(self.size) < 0:
            raise InputError(f"preprocessing: size must be a positive number of pixels (0: the generator's), got {self.size}")
        if self.alignment not in ALIGNMENTS:
            raise InputError(f"preprocessing: alignment must be one of {', '.join(ALIGNMENTS)}, got {self.alignment!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise InputError(f"preprocessing: interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        lo, hi = (float(v) for v in self.range)
        if not lo < hi:
            raise InputError(f"preprocessing: range must be (low, high) with low < high, got {self.range}")
        object.__setattr__(self, "range", (lo, hi))
        object.__setattr__(self, "crop", float(self.crop))
        object.__setattr__(self, "size", int(self.size))

    def apply(self, img) -> np.ndarray:
        """A PIL photo -> this model's input, uint8 (size, size, 3): centre crop, then resize."""
        from ..data.folder import preprocess

        if self.size <= 0:
            raise InputError("preprocessing: this record has no size; read it from a generator (G.preprocessing)")
        return preprocess(img, self.size, self.crop)

    def as_dict(self) -> dict:
        return {"size": self.size, "crop": self.crop, "alignment": self.alignment, "range": list(self.range),
                "interpolation": self.interpolation, "source": self.source}


PREPROCESSING: Registry = Registry("preprocessing record", "pdbench.generators")


def register_preprocessing(record: Preprocessing, *names: str) -> Preprocessing:
    """Register ``record`` under each weights name (or an architecture's name, its default)."""
    for n in names:
        PREPROCESSING.register(n)(record)
    return record


def preprocessing_record(name: str) -> Preprocessing:
    """The registered record of weights ``name`` (one line naming the known ones when there is none)."""
    return PREPROCESSING.get(name)


# -- the generator base class ----------------------------------------------------------------------------


class Generator(nn.Module):
    """Base class of every generator (contract v2, see the module docstring): an architecture implements
    :meth:`edit` (and :meth:`conditions`), the base provides :meth:`generate`."""

    name: str = "?"
    resolution: int = 0
    condition_names: tuple[str, ...] = ()
    kind: str = "attribute"  # "attribute" editor, "swap", "reference" or "text"
    inputs: tuple[str, ...] = ("attrs",)  # the Condition fields it reads
    stochastic: bool = False  # draws noise: edit() receives per-row seeds
    chunk_size: int | None = None  # at most this many rows per forward (None: all K × N at once)
    conditional_encoder: bool = True  # whether encode() needs the condition (StarGAN) or not (AttGAN)
    weights: str | None = None  # the registered weights (asset) or checkpoint path this instance holds
    experimental: str | None = None  # why these weights are not fit for reported numbers (None: they are)
    fast: bool | None = None  # this instance's speed-path switch (None: PDBENCH_FAST, default on)
    # The official edits of its *shipped* weights (``judged_asset``, default ``default_asset``) that are
    # judged real: an independent classifier reads them as their target (pdbench.train.evaluate.real_editor)
    # and they act where they should. Choosing only these (``edits=``, :meth:`select_edits`) clears
    # ``experimental`` for that instance. Not inherited: each class states its own (default ()).
    judged_edits: tuple[str, ...] = ()
    judged_asset: str | None = None
    experimental_cleared: str | None = None  # the weights' flag that a choice of judged edits cleared (select_edits)

    def __init_subclass__(cls, **kwargs):
        """Every subclass: its own ``judged_edits`` (default ()), and its ``conditions`` returning only the
        chosen edits (:meth:`select_edits`). Contract v1 adapter: a subclass that overrides ``generate(x, c)``
        as its forward (and has no ``edit``) gets that method as its ``edit``, and ``generate`` is the
        contract's again."""
        super().__init_subclass__(**kwargs)
        if "judged_edits" not in cls.__dict__:
            cls.judged_edits = ()
        if "judged_asset" not in cls.__dict__:
            cls.judged_asset = None
        official = cls.__dict__.get("conditions")
        if official is not None and not getattr(official, "_selects_edits", False):
            cls.conditions = _selecting(official)
        own = cls.__dict__.get("generate")
        if own is None or "edit" in cls.__dict__ or "seed" in inspect.signature(own).parameters:
            return

        def edit(self, x, attrs, _v1=own, _cls=cls, **inputs):
            stack = self.__dict__.setdefault("_v1_calls", [])
            stack.append(_cls)
            try:
                return _v1(self, x, attrs)
            finally:
                stack.pop()

        edit.__doc__ = own.__doc__
        cls.edit = edit
        delattr(cls, "generate")

    # -- what an architecture implements -----------------------------------------------------------
    def edit(self, x: torch.Tensor, attrs: torch.Tensor | None, **inputs) -> torch.Tensor:
        """One forward of B rows: x (B, 3, H, W) in the record's range, attrs (B, C) or None; ``inputs``
        has ``reference`` (B, 3, H, W) and ``role``, ``direction`` (B texts or (B, D)) and ``seeds`` (B,)
        when the condition or the generator has them. Returns (B, 3, H, W)."""
        raise Unsupported(f"{self.name}: no edit() forward; a generator implements edit(x, attrs, **inputs)")

    def conditions(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        raise NotImplementedError

    def unedited(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The condition (N, C) that asks for no change (the image's own attributes): reconstruction."""
        raise NotImplementedError

    # -- choosing official edits ---------------------------------------------------------------------
    @property
    def official_edits(self) -> tuple[str, ...]:
        """The names of every official edit, in the official order (whatever :meth:`select_edits` chose)."""
        return self.__dict__.get("_official_edits", tuple(self.condition_names))

    @property
    def edit_selection(self) -> tuple[str, ...] | None:
        """The chosen subset of the official edits (:meth:`select_edits`), None when it runs them all."""
        idx = self.__dict__.get("_edit_index")
        return None if idx is None else tuple(self.official_edits[i] for i in idx)

    @classmethod
    def check_edits(cls, edits, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """``edits`` (a list of official edit names of this generator, ``names`` or its ``condition_names``)
        in the official order; one line naming the available edits for anything else."""
        names = tuple(cls.condition_names if names is None else names)
        if getattr(cls, "kind", "attribute") == "swap":
            raise InputError(f"{cls.name}: edits chooses among an attribute editor's official edits; {cls.name} is a "
                             "face swapper (its swap is set by the swap block): leave edits out")
        if not names:
            raise InputError(f"{cls.name}: has no named official edits to choose from; leave edits out")
        avail = ", ".join(names)
        if isinstance(edits, str):
            edits = [edits]
        if not isinstance(edits, (list, tuple)) or not edits or not all(isinstance(e, str) for e in edits):
            raise InputError(f"{cls.name}: edits must be a non-empty list of its official edit names ({avail}), "
                             f"got {edits!r}; list the ones to run, or leave edits out for all")
        unknown = [e for e in edits if e not in names]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InputError(f"{cls.name}: unknown edit {unknown[0]!r}; its official edits are {avail}.{hint}")
        dup = sorted({e for e in edits if list(edits).count(e) > 1})
        if dup:
            raise InputError(f"{cls.name}: edits lists {dup[0]!r} twice; name each edit once (of {avail})")
        return tuple(n for n in names if n in edits)

    def select_edits(self, edits) -> "Generator":
        """Keep only the official edits named in ``edits`` (in the official order): :meth:`conditions`,
        :meth:`condition` and ``condition_names`` then hold those alone, so every caller (the runner's
        images × edits batches, ensembles, the measuring functions) sees fewer edits, and
        :meth:`fingerprint` includes them (results of other edits never share a key). Choosing only
        edits of :attr:`judged_edits` on the shipped weights they describe clears ``experimental`` for this
        instance (the reason is kept in ``experimental_cleared``). Returns self."""
        official = self.official_edits
        chosen = self.check_edits(edits, official)
        if "_experimental_flag" in self.__dict__:  # an earlier choice cleared the flag: judge this one afresh
            self.experimental = self.__dict__.pop("_experimental_flag")
            self.experimental_cleared = None
        self.__dict__["_official_edits"] = official
        self.__dict__["_edit_index"] = None if chosen == official else tuple(official.index(e) for e in chosen)
        self.condition_names = chosen
        shipped = type(self).judged_asset or getattr(type(self), "default_asset", None)
        if self.experimental and self.judged_edits and set(chosen) <= set(self.judged_edits) and self.weights == shipped:
            self.experimental_cleared = self.experimental  # the weights' flag, which these edits escape
            self.__dict__["_experimental_flag"] = self.experimental
            self.experimental = None
        self.__dict__.pop("_pdbench_fingerprint", None)  # the runner's memo of fingerprint()
        return self

    def _selected(self, cs):
        """The chosen rows (edits) of the official conditions ``cs`` ((K, N, C) tensor or stacked Condition)."""
        idx = self.__dict__.get("_edit_index")
        if idx is None:
            return cs
        k = cs.edits if isinstance(cs, Condition) else cs.shape[0]
        if k != len(self.official_edits):
            raise InputError(f"{self.name}: its conditions hold {k} edits but it names {len(self.official_edits)} "
                             f"({', '.join(self.official_edits)}); leave edits out for this generator")
        return cs[list(idx)]

    def condition(self, labels: torch.Tensor | None, n: int, seed: int | None = None) -> Condition:
        """The official test edits of :meth:`conditions` as a :class:`Condition` (K, N, C) with their names."""
        cs = self.conditions(labels, n)
        names = self.condition_names if len(self.condition_names) == cs.shape[0] else ()
        return Condition(attrs=cs, names=tuple(names), seed=seed)

    # -- hooks an architecture may have --------------------------------------------------------------
    def _missing(self, hook: str, use: str):
        return Unsupported(f"{self.name}: has no {hook}() hook (it has: {', '.join(sorted(self.capabilities))}); {use}")

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's latent (bottleneck feature map) of x under condition c: what latent-level
        defenses (LEAT) attack."""
        raise self._missing("encode", "use a defense that only needs its outputs")

    def decode(self, h, c: torch.Tensor | None = None) -> torch.Tensor:
        """Images from the latent(s) of :meth:`encode` (``decode(encode(x, c), c) == generate(x, c)``)."""
        raise self._missing("decode", "generate from images with generate()")

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Named intermediate feature maps of x (in forward order), for feature-level objectives."""
        raise self._missing("features", "use an output or latent objective")

    @property
    def capabilities(self) -> frozenset[str]:
        """The condition fields it reads, the hooks it implements, and ``stochastic``."""
        caps = set(self.inputs)
        caps.update(h for h in ("encode", "decode", "features") if getattr(type(self), h) is not getattr(Generator, h))
        if self.stochastic:
            caps.add("stochastic")
        return frozenset(caps)

    # -- the inference speed path ---------------------------------------------------------------------
    @property
    def fast_path(self) -> bool:
        """Whether the architecture may run its speed path: ``G.fast`` when set, else ``PDBENCH_FAST``."""
        return fast_default() if self.fast is None else bool(self.fast)

    def optimise_for_inference(self) -> "Generator":
        """Build the architecture's speed path now rather than on the first forward (a no-op for an
        architecture without one, or when :attr:`fast_path` is off). The weights, ``state_dict()``
        and the fingerprint are untouched. Returns self."""
        return self

    # -- preprocessing -------------------------------------------------------------------------------
    @property
    def preprocessing(self) -> Preprocessing:
        """The record of these weights (else of the architecture, else from a v1 ``crop`` class
        attribute), with ``size`` this instance's resolution."""
        rec = self.__dict__.get("_preprocessing")
        if rec is None and self.weights is not None and self.weights in PREPROCESSING:
            rec = PREPROCESSING.get(self.weights)
        if rec is None:
            for klass in type(self).__mro__:
                legacy = klass.__dict__.get("crop")
                if isinstance(legacy, (int, float)):
                    rec = Preprocessing(crop=float(legacy), source=f"{klass.__name__}.crop")
                    break
                named = klass.__dict__.get("name")
                if isinstance(named, str) and named in PREPROCESSING:
                    rec = PREPROCESSING.get(named)
                    break
        if rec is None:
            rec = Preprocessing(source="pdbench default")
        return rec if rec.size == self.resolution else replace(rec, size=int(self.resolution))

    @preprocessing.setter
    def preprocessing(self, rec: Preprocessing | str) -> None:
        self.__dict__["_preprocessing"] = rec if isinstance(rec, Preprocessing) else preprocessing_record(rec)

    @property
    def crop(self) -> float:
        """Alias of ``preprocessing.crop`` (contract v1)."""
        return self.preprocessing.crop

    @crop.setter
    def crop(self, value: float) -> None:
        self.preprocessing = replace(self.preprocessing, crop=float(value))

    def _use_weights(self, weights: str | None, preprocessing: str | Preprocessing | None = None) -> None:
        """Record which weights this instance holds and, optionally, whose preprocessing it follows."""
        self.weights = weights
        if preprocessing is not None:
            self.preprocessing = preprocessing

    def _loaded(self, state: dict, checkpoint, asset: str | None, preprocessing=None,
                device: str | torch.device = "cpu", eval: bool = True) -> "Generator":
        """The end of every ``from_assets``: ``state`` loaded strictly (float32) into ``self.net``, the weights
        recorded (the asset's name, or the checkpoint path, which clears ``experimental``: that flag describes
        pdbench's shipped weights), moved to ``device`` and frozen; in eval mode unless ``eval`` is False (an
        architecture whose official test runs its norms in training mode, as StarGAN's instance norms do)."""
        self.net.load_state_dict(float_state(state), strict=True)
        self._use_weights(asset if checkpoint is None else str(checkpoint), preprocessing)
        if checkpoint is not None:
            self.experimental = None
        model = self.to(device)
        return (model.eval() if eval else model).requires_grad_(False)

    # -- the contract's entry point ------------------------------------------------------------------
    def check_condition(self, cond: Condition, n: int) -> None:
        """One line for a condition this generator cannot take for n images."""
        for f in FIELDS:
            if getattr(cond, f) is not None and f not in self.inputs:
                raise Unsupported(f"{self.name}: takes no {f} (its condition is {', '.join(self.inputs)}); "
                                  f"leave {f} out of the condition")
        if cond.images is not None and cond.images != n:
            raise InputError(f"{self.name}: the condition is for {cond.images} image(s) but x has {n}; "
                             "give one condition row per image")
        want = len(getattr(self, "attributes", ()) or ())
        if cond.attrs is not None and want and cond.attrs.shape[-1] != want:
            raise InputError(f"{self.name}: attrs must have {want} values per image ({', '.join(self.attributes)}), "
                             f"got {cond.attrs.shape[-1]}; build them with conditions()/condition()")

    def generate(self, x: torch.Tensor, cond, seed: int | None = None, chunk: int | None = None) -> torch.Tensor:
        """x (N, 3, H, W) and a :class:`Condition` (or an attribute tensor) -> (N, 3, H, W) without a K
        axis, (K, N, 3, H, W) with one. ``seed`` (else ``cond.seed``, else 0) fixes a stochastic
        generator's noise; ``chunk`` (else ``chunk_size``) bounds the rows per forward."""
        stack = self.__dict__.get("_v1_calls")
        if stack and isinstance(cond, torch.Tensor):  # a v1 forward calling super().generate(x, c)
            return super(stack[-1], self).edit(x, cond)
        cond = as_condition(cond)
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            check_images(x, f"{self.name} input")
        n = x.shape[0]
        self.check_condition(cond, n)
        k = cond.edits
        rows = cond.rows(n)
        xs = x if (k == 1 and not cond.stacked) else x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
        pre = self.preprocessing
        convert = pre.range != (-1.0, 1.0)
        if convert:
            xs = self.to_model_range(xs)
            if "reference" in rows:
                rows["reference"] = self.to_model_range(rows["reference"])
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise InputError(f"{self.name}: seed must be a non-negative integer, got {seed!r}")
        if self.stochastic:
            rows["seeds"] = row_seeds(seed if seed is not None else (cond.seed or 0), k, n)
        total = k * n
        size = int(chunk or self.chunk_size or total)
        if size < 1:
            raise InputError(f"{self.name}: chunk must be a positive number of rows, got {chunk}")
        outs = []
        for a in range(0, total, size):
            b = min(a + size, total)
            whole = a == 0 and b == total
            part = {key: v if (whole or key == "role") else v[a:b] for key, v in rows.items()}
            attrs = part.pop("attrs", None)
            outs.append(self.edit(xs if whole else xs[a:b], attrs, **part))
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        if convert:
            out = self.from_model_range(out)
        return out.reshape(k, n, *out.shape[1:]) if cond.stacked else out

    def generate_many(self, x: torch.Tensor, cs, seed: int | None = None, chunk: int | None = None) -> torch.Tensor:
        """x (N,3,H,W), cs (K,N,C) (or a stacked Condition) -> (K,N,3,H,W) (one batched forward unless chunked)."""
        cond = as_condition(cs)
        if not cond.stacked:
            raise InputError(f"{self.name}: generate_many takes K edits per image, (K, N, C); use generate for (N, C)")
        return self.generate(x, cond, seed=seed, chunk=chunk)

    def to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> the record's ``range``."""
        lo, hi = self.preprocessing.range
        return (x + 1) * ((hi - lo) / 2) + lo

    def from_model_range(self, y: torch.Tensor) -> torch.Tensor:
        """The record's ``range`` -> [-1, 1]."""
        lo, hi = self.preprocessing.range
        return (y - lo) * (2 / (hi - lo)) - 1

    @staticmethod
    def noise(seeds: torch.Tensor, shape: tuple[int, ...], device=None, dtype=torch.float32) -> torch.Tensor:
        """(B, *shape) standard normal noise, row b drawn from ``seeds[b]`` alone (on the CPU, so that
        every device draws the same)."""
        rows = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s)), dtype=dtype) for s in seeds.tolist()]
        return torch.stack(rows).to(device)

    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of every parameter and buffer, and of the chosen edits when
        :meth:`select_edits` kept a subset: which weights (and edits) produced a result."""
        import hashlib

        h = hashlib.sha256()
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        if self.edit_selection is not None:  # a subset of the official edits: other results (all edits: unchanged)
            h.update(("edits:" + ",".join(self.edit_selection)).encode())
        return h.hexdigest()[:16]

    def forward(self, x: torch.Tensor, c, seed: int | None = None) -> torch.Tensor:  # nn.Module protocol: G(x, c)
        return self.generate(x, c, seed=seed)


def _selecting(official):
    """An architecture's ``conditions`` wrapped to return only the instance's chosen edits
    (:meth:`Generator.select_edits`); a subclass's ``conditions`` calling ``super().conditions`` gets the
    official ones (only the outermost call selects)."""
    import functools

    @functools.wraps(official)
    def conditions(self, labels, n):
        if self.__dict__.get("_in_conditions"):
            return official(self, labels, n)
        self.__dict__["_in_conditions"] = True
        try:
            cs = official(self, labels, n)
        finally:
            del self.__dict__["_in_conditions"]
        return self._selected(cs)

    conditions._selects_edits = True
    return conditions


def checkpoint_state(checkpoint: str | None, asset: str) -> tuple[dict, str, dict]:
    """The state dict of an explicit checkpoint path, else of the registered asset (checksum-verified),
    with where it came from (for messages) and the asset's metadata; for a path, the resolution that
    ``pdbench train`` recorded in it (:func:`trained_resolution`), else ``{}``."""
    from ..assets import ASSETS, load_state_dict, resolve

    if checkpoint is not None:
        state = load_state_dict(checkpoint)
        res = trained_resolution(checkpoint)
        return state, str(checkpoint), ({"resolution": res} if res else {})
    spec = ASSETS.get(asset)
    path = resolve(asset)
    return load_state_dict(path, asset=spec), str(path), spec.meta


def trained_resolution(path: str | os.PathLike) -> int | None:
    """The resolution a ``pdbench train`` checkpoint (its ``G.safetensors``, or ``pdbench export`` of it)
    was trained at, from the recipe in its metadata; None for any other file (an official checkpoint)."""
    import json

    if Path(path).suffix != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            recipe = json.loads((f.metadata() or {}).get("recipe", "{}"))
        return int(recipe["resolution"]) if isinstance(recipe, dict) and "resolution" in recipe else None
    except (OSError, ValueError, TypeError):  # unreadable metadata: the caller's default applies
        return None


def strict_load_error(err: RuntimeError, source: str, few: int = 3):
    """One line from a strict ``load_state_dict`` failure: which keys are missing, unexpected or of
    another shape (a few names each), i.e. a checkpoint of another architecture."""
    import re

    from ..errors import AssetCorruptError

    text = str(err)
    if "state_dict" not in text:
        return err
    parts = []
    for what, pat in (("missing", r'Missing key\(s\) in state_dict: ([^\n]*)'),
                      ("unexpected", r'Unexpected key\(s\) in state_dict: ([^\n]*)')):
        m = re.search(pat, text)
        if m:
            keys = re.findall(r'"([^"]+)"', m.group(1))
            parts.append(f"{len(keys)} {what} ({', '.join(keys[:few])}{', ...' if len(keys) > few else ''})")
    shapes = re.findall(r"size mismatch for ([^:]+): copying a param with shape torch.Size\(\[([^\]]*)\]\) from "
                        r"checkpoint, the shape in current model is torch.Size\(\[([^\]]*)\]\)", text)
    if shapes:
        shown = ", ".join(f"{k} [{a}] vs [{b}]" for k, a, b in shapes[:few])
        parts.append(f"{len(shapes)} of another shape ({shown}{', ...' if len(shapes) > few else ''})")
    return AssetCorruptError(f"checkpoint {source} does not fit this architecture: {'; '.join(parts) or text.splitlines()[0]}; "
                             "pass a checkpoint of this generator (or the generator it was trained for)")


def float_state(state: dict) -> dict:
    """Floating-point tensors in float32 (shipped weights are float16), the rest unchanged."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_frozen(net: nn.Module, state: dict, source: str) -> nn.Module:
    """``net`` with ``state`` loaded strictly in float32 (a mismatch is :func:`strict_load_error`'s one
    line naming ``source``), in eval mode, without gradients: how a trained network is used, not trained."""
    try:
        net.load_state_dict(float_state(state), strict=True)
    except RuntimeError as e:
        raise strict_load_error(e, source) from None
    return net.eval().requires_grad_(False)


@dataclass
class TargetMember:
    generator: Generator
    conditions: torch.Tensor | Condition  # (K, N, C) attribute edits, or a stacked Condition
    weight: float = 1.0


@dataclass
class Target:
    """What a defense attacks: one or several generators, each with the conditions per image."""

    members: list[TargetMember] = field(default_factory=list)

    @classmethod
    def of(cls, generator: Generator, labels: torch.Tensor | None, n: int) -> "Target":
        return cls([TargetMember(generator, generator.conditions(labels, n))])

    def outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [m.generator.generate_many(x, m.conditions.to(x.device)) for m in self.members]

    def subset(self, idx: torch.Tensor | slice) -> "Target":
        return Target([TargetMember(m.generator, m.conditions[:, idx], m.weight) for m in self.members])
