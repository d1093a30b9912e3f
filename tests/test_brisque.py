"""BRISQUE against OpenCV's implementation (cv2.quality) with the same LIVE model, on real faces."""

import numpy as np
import pytest
import torch

from conftest import require_asset
from pdbench.data import FaceFolder
from pdbench.metrics.brisque import brisque, brisque_features, brisque_score

cv2 = pytest.importorskip("cv2", reason="opencv-contrib-python-headless is a test dependency")


def _faces():
    out = []
    for folder, res in (("celebahq-stargan-v2", 256), ("celebahq-stargan-v2", 64), ("codeformer-cropped", 128)):
        ds = FaceFolder(require_asset(folder), res)
        out += list(ds.load_uint8(list(range(6))))
    return out


def test_matches_opencv_quality_brisque():
    model = str(require_asset("brisque-live-model"))
    rng = str(require_asset("brisque-live-range"))
    ours, ref, feat_err = [], [], []
    for im in _faces():
        bgr = np.ascontiguousarray(im[..., ::-1])
        ours.append(brisque_score(im))
        ref.append(cv2.quality.QualityBRISQUE_compute(bgr, model, rng)[0])
        feat_err.append(np.abs(brisque_features(im) - cv2.quality.QualityBRISQUE_computeFeatures(bgr).ravel()).max())
    diff = np.abs(np.array(ours) - np.array(ref))
    print(f"BRISQUE vs OpenCV on {len(ours)} faces: mean |Δ| {diff.mean():.3f}, max |Δ| {diff.max():.3f}, "
          f"Pearson {np.corrcoef(ours, ref)[0, 1]:.5f}")
    assert diff.mean() < 0.2 and diff.max() < 1.5
    assert np.corrcoef(ours, ref)[0, 1] > 0.995
    assert max(feat_err) < 0.05  # γ grid steps of 0.001 accumulate differently in float


def test_distortion_raises_brisque():
    ds = FaceFolder(require_asset("celebahq-stargan-v2"), 128)
    x = ds.load(list(range(4)))
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    clean, bad = brisque(x), brisque(noisy)
    assert bool((bad > clean + 10).all()), (clean, bad)
