"""Face-swap metrics: whose identity the swapped face has, and whether the target's pose and background stay.

A face swap takes the identity of a *source* face and puts it onto a *target* face, whose pose,
expression and background it should keep. For N swaps given as three paired image batches in [-1, 1]
(any size each, one row per swap): ``out`` (the swapped faces), ``source`` (a photo of the identity
wanted) and ``target`` (the photo the output was made from):

* :func:`swap_identity`: per judge (identity model), the cosine similarity of the output's embedding to
  the source's and to the target's, and the **closer-to-source rate**, the fraction of swaps with
  cos(out, source) > cos(out, target). Judges: ``"mobilefacenet"`` (:mod:`pdbench.faces.identity`,
  faces aligned by RetinaFace's five landmarks, ``box="detect"``; where it finds none, the whole image)
  and ``"dlib"`` (dlib's ResNet descriptor, :mod:`pdbench.faces.dlib_resnet`, its own HOG detector; it
  is the independent judge: no defense in pdbench optimises against it). A swap whose *source or
  target* photo has no face for a judge is undefined (NaN, left out of that judge's rate); a swap whose
  *output* has no face counts as not closer to the source (a failed swap is not left out).
* :func:`swap_keep`: how much of the target the swap kept. ``landmark_nme``: the mean distance between
  the five RetinaFace landmarks (eyes, nose tip, mouth corners) of the output and of the target,
  divided by the target's inter-ocular distance (the normalised mean error of landmark benchmarks;
  0 = the same pose and expression, ~0.1 is a visibly different pose); NaN where either has no face.
  ``background_l1``: the mean absolute difference of output and target on the [-1, 1] scale (per pixel
  and channel, so 0–2) *outside* the target's face, the convex hull of dlib's 68 landmarks including the
  jaw line (:func:`pdbench.faces.landmarks.face_mask` with ``WHOLE``): what a swap should leave alone.
  Output and target must have the same size.
* :func:`swap_report`: both, summarised (means and rates) as plain numbers for a JSON result.

These compare three images per row, not G(x) with G(x_adv), so they are functions here and not members
of the per-image :data:`pdbench.metrics.METRICS` registry (whose inputs hold no source image), as FID is
(:mod:`pdbench.metrics.fid`). The disruption metrics of that registry apply to swaps unchanged
(G(x) vs G(x_adv) of the same swap). Under a defense, pass ``out`` = G on the protected photo and the
*clean* source and target: a protected target photo fails when the output stops looking like the
source (rate down), a protected source photo when it does too.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, UnknownNameError
from ..tensors import check_images

JUDGES = ("mobilefacenet", "dlib")
DETECT_MIN = 128  # short side small images are upsampled to for RetinaFace (as the identity embedder does)
CHUNK = 32


def _check(name: str, x: torch.Tensor, n: int | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise InputError(f"swap metrics: {name} must be images (N, 3, H, W) in [-1, 1], got "
                         f"{tuple(getattr(x, 'shape', ()))}; one row per swap")
    check_images(x, f"swap metrics: {name}")
    if n is not None and x.shape[0] != n:
        raise InputError(f"swap metrics: {name} has {x.shape[0]} image(s), out has {n}; give one source and one "
                         "target per swapped face (repeat a photo to reuse it)")


def _mobilefacenet(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 256) embeddings and (N,) bool face found (RetinaFace alignment, whole-image fall-back)."""
    from ..faces import get_embedder

    emb = get_embedder("detect", x.device)
    fs, found = [], []
    with torch.inference_mode():
        for i in range(0, x.shape[0], CHUNK):
            fs.append(emb(x[i:i + CHUNK]).float().cpu())
            found.append(emb.found.cpu())
    return torch.cat(fs), torch.cat(found)


def _dlib(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 128) L2-normalised dlib descriptors (NaN where dlib finds no face) and (N,) bool found."""
    from ..faces.dlib_resnet import dlib_descriptors

    d, found = dlib_descriptors(x.detach().float().cpu())
    d = torch.from_numpy(d).float()
    return F.normalize(d, dim=1), torch.from_numpy(found)


EMBED = {"mobilefacenet": _mobilefacenet, "dlib": _dlib}


def swap_identity(out: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                  embedders: tuple[str, ...] | list[str] = JUDGES) -> dict[str, dict]:
    """Identity of N swapped faces against their source and target, per judge.

    Returns ``{judge: {"to_source": (N,), "to_target": (N,), "closer": (N,), "rate": float,
    "pairs": int, "out_found": (N,)}}``: cosines (NaN where the source or target has no face; where only
    the output has none, both cosines are NaN and ``closer`` is 0), ``closer`` 1.0 / 0.0 / NaN per swap,
    ``rate`` its mean over the defined swaps (NaN when none is), ``pairs`` how many are defined."""
    _check("out", out)
    n = out.shape[0]
    _check("source", source, n)
    _check("target", target, n)
    unknown = [e for e in embedders if e not in EMBED]
    if unknown or not embedders:
        raise UnknownNameError(f"swap metrics: unknown identity judge(s) {unknown or '(none given)'}; known: {', '.join(EMBED)}")
    res = {}
    for judge in embedders:
        (fo, ok_o), (fs, ok_s), (ft, ok_t) = (EMBED[judge](t) for t in (out, source, target))
        cs, ct = (fo * fs).sum(1), (fo * ft).sum(1)
        defined = ok_s & ok_t
        closer = torch.where(ok_o, (cs > ct).float(), torch.zeros(n))
        closer = torch.where(defined, closer, torch.full((n,), float("nan")))
        nan = torch.full((n,), float("nan"))
        cs, ct = torch.where(defined & ok_o, cs, nan), torch.where(defined & ok_o, ct, nan)
        pairs = int(defined.sum())
        res[judge] = {"to_source": cs, "to_target": ct, "closer": closer, "out_found": ok_o,
                      "rate": float(closer[defined].mean()) if pairs else math.nan, "pairs": pairs}
    return res


def _landmarks5(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, 5, 2) RetinaFace landmarks in pixels of x (NaN where none) and (N,) bool found."""
    from ..faces.detectors import shared_detector

    det = shared_detector("retinaface", str(x.device))
    f = max(1.0, DETECT_MIN / min(x.shape[-2:]))
    xs = F.interpolate(x.detach().float(), scale_factor=f, mode="bilinear", align_corners=False) if f > 1 else x.detach()
    lm = np.full((x.shape[0], 5, 2), np.nan)
    found = np.zeros(x.shape[0], dtype=bool)
    for i in range(0, x.shape[0], CHUNK):
        for j, d in enumerate(det.detect(xs[i:i + CHUNK])):
            if d:
                best = max(d, key=lambda t: t.score)
                lm[i + j] = np.asarray(best.landmarks, dtype=np.float64) / f
                found[i + j] = True
    return lm, found


def swap_keep(out: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """How much of the target each swap kept: ``landmark_nme`` (N,) and ``background_l1`` (N,) (see the
    module docstring), with ``out_found`` / ``target_found`` (N,) bool for the landmark detector."""
    from ..faces.landmarks import WHOLE, face_mask

    _check("out", out)
    _check("target", target, out.shape[0])
    if out.shape[-2:] != target.shape[-2:]:
        raise InputError(f"swap_keep: out is {out.shape[-2]}x{out.shape[-1]} px, target {target.shape[-2]}x"
                         f"{target.shape[-1]}; compare them at one size (resize the target to the output's)")
    lo, ok_o = _landmarks5(out)
    lt, ok_t = _landmarks5(target)
    iod = np.linalg.norm(lt[:, 0] - lt[:, 1], axis=1)
    nme = np.linalg.norm(lo - lt, axis=2).mean(1) / np.where(iod > 0, iod, np.nan)
    nme = np.where(ok_o & ok_t, nme, np.nan)
    with torch.inference_mode():
        bg = 1.0 - face_mask(target.detach().float().cpu(), WHOLE)  # (N, 1, H, W)
        d = (out.detach().float().cpu() - target.detach().float().cpu()).abs().mean(1, keepdim=True)
        l1 = (d * bg).sum((1, 2, 3)) / bg.sum((1, 2, 3)).clamp_min(1.0)
        l1 = torch.where(bg.sum((1, 2, 3)) > 0, l1, torch.full_like(l1, float("nan")))
    return {"landmark_nme": torch.from_numpy(nme).float(), "background_l1": l1,
            "out_found": torch.from_numpy(ok_o), "target_found": torch.from_numpy(ok_t)}


def _mean(t: torch.Tensor) -> float:
    t = t[~torch.isnan(t)]
    return round(float(t.mean()), 4) if t.numel() else math.nan


def swap_report(out: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                embedders: tuple[str, ...] | list[str] = JUDGES) -> dict:
    """:func:`swap_identity` and :func:`swap_keep` as plain numbers: per judge the closer-to-source rate,
    the mean cosines and the number of defined pairs; the mean landmark NME and background L1."""
    ident = swap_identity(out, source, target, embedders)
    keep = swap_keep(out, target) if out.shape[-2:] == target.shape[-2:] else None
    rep: dict = {"n": int(out.shape[0]), "identity": {
        j: {"closer_to_source": round(r["rate"], 4), "cos_to_source": _mean(r["to_source"]),
            "cos_to_target": _mean(r["to_target"]), "pairs": r["pairs"],
            "out_face_found": round(float(r["out_found"].float().mean()), 4)} for j, r in ident.items()}}
    if keep is not None:
        rep["keep"] = {"landmark_nme": _mean(keep["landmark_nme"]), "background_l1": _mean(keep["background_l1"]),
                       "out_face_found": round(float(keep["out_found"].float().mean()), 4)}
    return rep
