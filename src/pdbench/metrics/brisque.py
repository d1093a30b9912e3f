"""BRISQUE (Mittal, Moorthy & Bovik 2012), the original algorithm with the LIVE SVR model.

Features: the image in grey levels (ITU-R 601 luma of the 8-bit image, scaled to [0, 1]) at two
scales (the second a bicubic halving); at each scale the MSCN coefficients (7×7 Gaussian, σ = 7/6,
replicated borders, +1/255 in the denominator), their AGGD fit (γ by the moment-ratio search over
0.2…10 in steps of 0.001) and the AGGD fits of the four neighbour products (H, V, D1, D2) — 36
features, min/max scaled to [-1, 1] with the LIVE ranges, fed to the LIVE ε-SVR (RBF kernel) and
clamped to [0, 100]. Model and ranges are OpenCV's ``brisque_model_live.yml`` and
``brisque_range_live.yml`` from the asset store; the result is cross-checked against OpenCV's
``cv2.quality.QualityBRISQUE`` in the tests.

Lower BRISQUE = more natural. The metric ``brisque`` reports the BRISQUE of G(x_adv) (PDB reads
higher as more disrupted); ``brisque_gain`` reports BRISQUE(G(x_adv)) − BRISQUE(G(x)).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import torch

from ..assets import resolve
from ..tensors import to_uint8
from . import METRICS
from .base import Metric, MetricInputs, per_edit

_GAMMAS = np.arange(0.2, 10, 0.001)
_R_GAM = np.array([math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g)) for g in _GAMMAS])


def _yml_numbers(text: str, key: str) -> np.ndarray:
    m = re.search(rf"{key}:\s*(?:!!opencv-matrix[^\[]*data:\s*)?\[([^\]]*)\]", text, re.S)
    return np.array([float(v) for v in m.group(1).replace("\n", " ").split(",") if v.strip()])


@lru_cache(maxsize=1)
def live_model() -> dict:
    """The LIVE ε-SVR: support vectors, coefficients, rho, γ, and the feature ranges."""
    text = resolve("brisque-live-model").read_text()
    sv_block = text.split("support_vectors:")[1].split("decision_functions:")[0]
    svs = np.array([[float(v) for v in row.split(",") if v.strip()]
                    for row in re.findall(r"-\s*\[([^\]]*)\]", sv_block, re.S)])
    alpha = _yml_numbers(text.split("decision_functions:")[1], "alpha")
    rho = float(re.search(r"rho:\s*([-+0-9.eE]+)", text).group(1))
    gamma = float(re.search(r"gamma:\s*([-+0-9.eE]+)", text).group(1))
    rng = _yml_numbers(resolve("brisque-live-range").read_text(), "range").reshape(2, -1)
    if svs.shape != (len(alpha), 36) or rng.shape != (2, 36):
        raise ValueError(f"unexpected BRISQUE model layout: {svs.shape} support vectors, {rng.shape} ranges")
    return {"sv": svs, "alpha": alpha, "rho": rho, "gamma": gamma, "min": rng[0], "max": rng[1]}


def _gray(img: np.ndarray) -> np.ndarray:
    """uint8 RGB -> grey in [0, 1] (OpenCV's rounded 8-bit luma)."""
    img = img.astype(np.int32)
    y = (img[..., 0] * 4899 + img[..., 1] * 9617 + img[..., 2] * 1868 + (1 << 13)) >> 14  # fixed point, as cvtColor
    return y.astype(np.float32) / 255.0


def _cubic(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    return np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1,
                    np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0))


def _resize_axis(img: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    n_in = img.shape[axis]
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(src).astype(int)
    frac = src - base
    out = 0
    for k in range(-1, 3):
        idx = np.clip(base + k, 0, n_in - 1)  # replicated border
        w = _cubic(frac - k).astype(np.float32)
        shape = [1, 1]
        shape[axis] = n_out
        out = out + np.take(img, idx, axis=axis) * w.reshape(shape)
    return out.astype(np.float32)


def _blur(img: np.ndarray) -> np.ndarray:
    t = np.arange(7) - 3
    k = np.exp(-(t**2) / (2 * (7 / 6) ** 2))
    k = (k / k.sum()).astype(np.float32)
    p = np.pad(img, 3, mode="edge")
    h = sum(k[i] * p[:, i:i + img.shape[1]] for i in range(7))
    return sum(k[i] * h[i:i + img.shape[0], :] for i in range(7)).astype(np.float32)


def _aggd(x: np.ndarray) -> tuple[float, float, float]:
    x = x.astype(np.float64)
    pos, neg = x[x > 0], x[x < 0]
    lsig = math.sqrt((neg**2).sum() / max(1, neg.size))
    rsig = math.sqrt((pos**2).sum() / max(1, pos.size))
    gh = lsig / rsig
    n = x.size
    rhat = (np.abs(x).sum() / n) ** 2 / ((x**2).sum() / n)
    rnorm = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    diff = np.abs(_R_GAM - rnorm)
    # first local minimum of |r(γ) − r̂| scanning upwards, as the reference implementation stops there
    rising = np.nonzero(diff[1:] > diff[:-1])[0]
    i = int(rising[0]) if rising.size else len(diff) - 1
    return float(_GAMMAS[i]), lsig, rsig


def brisque_features(img: np.ndarray) -> np.ndarray:
    """36 BRISQUE features of one uint8 RGB image."""
    gray = _gray(img)
    feats = []
    for scale in range(2):
        if scale:
            h, w = gray.shape
            gray = _resize_axis(_resize_axis(gray, w // 2, 1), h // 2, 0)
        mu = _blur(gray)
        sigma = np.sqrt(np.maximum(_blur(gray * gray) - mu * mu, 0)) + 1.0 / 255
        mscn = (gray - mu) / sigma
        g, ls, rs = _aggd(mscn)
        feats += [g, (ls**2 + rs**2) / 2]
        for dy, dx in ((0, 1), (1, 0), (1, 1), (-1, 1)):
            shifted = np.zeros_like(mscn)
            h, w = mscn.shape
            ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
            shifted[yd, 0:w - dx] = mscn[ys, dx:w]
            g, ls, rs = _aggd(mscn * shifted)
            mean = (rs - ls) * (math.gamma(2 / g) / math.gamma(1 / g)) * math.sqrt(math.gamma(1 / g) / math.gamma(3 / g))
            feats += [g, mean, ls**2, rs**2]
    return np.array(feats, dtype=np.float32)


def brisque_score(img: np.ndarray) -> float:
    m = live_model()
    f = brisque_features(img).astype(np.float64)
    f = -1 + 2 * (f - m["min"]) / (m["max"] - m["min"])
    k = np.exp(-m["gamma"] * ((m["sv"] - f) ** 2).sum(1))
    return float(np.clip(k @ m["alpha"] - m["rho"], 0, 100))


def brisque(x: torch.Tensor) -> torch.Tensor:
    """Per-image BRISQUE of images in the pdbench convention (quantised to 8 bits first)."""
    return torch.tensor([brisque_score(im) for im in to_uint8(x)])


@METRICS.register("brisque")
class BRISQUE(Metric):
    description = "BRISQUE (LIVE SVR, 0–100, lower = more natural) of G(x_adv); PDB reads higher as more disrupted"
    range = (0.0, 100.0)
    compares = "G(x_adv) alone"

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        return inp.memo("brisque_adv", lambda: per_edit(brisque, inp.out_adv)).mean(0)


@METRICS.register("brisque_gain")
class BRISQUEGain(Metric):
    description = "BRISQUE(G(x_adv)) − BRISQUE(G(x)): quality lost to the defense, net of the generator's own"
    range = (-100.0, 100.0)

    def __call__(self, inp: MetricInputs) -> torch.Tensor:
        adv = inp.memo("brisque_adv", lambda: per_edit(brisque, inp.out_adv))
        return (adv - per_edit(brisque, inp.out_clean)).mean(0)
