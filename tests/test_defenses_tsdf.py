"""TSDF: the intensity-separation mask, stage-2 poisoning inside it, and the claim that TSDF lowers RetinaFace's
F1 at IoU 0.7 far more than random noise of the same ε, on real held-out faces."""

import pytest
import torch

from pdbench.defenses import get_defense
from pdbench.defenses.cmua import save_delta
from pdbench.defenses.tsdf import intensity_mask, poison
from pdbench.errors import InputError
from pdbench.faces.detectors import shared_detector
from pdbench.generators import Target
from pdbench.metrics.faces import f1_against


@pytest.fixture(scope="module")
def faces(celeba_dir):
    from pdbench.data import FaceFolder

    ds = FaceFolder(celeba_dir / "images", 64)
    _, test = ds.split(1000)
    return ds.load(ds.select(6, seed=1, pool=test))


def _w0():
    """A stage-1-like δ: half the pixels at ±ε, the rest 0."""
    g = torch.Generator().manual_seed(0)
    return 0.05 * torch.sign(torch.rand(3, 64, 64, generator=g) - 0.5) * (torch.rand(3, 64, 64, generator=g) < 0.5)


def _f1(x, x_adv, name="retinaface"):
    det = shared_detector(name)
    return sum(f1_against(t, f) for t, f in zip(det.detect(x), det.detect(x_adv))) / len(x)


def test_intensity_mask():
    w = torch.tensor([0.0, 0.01, 0.039, 0.04, 0.05, -0.02])
    m = intensity_mask(w, 0.04)
    assert torch.allclose(m, torch.tensor([1.0, torch.exp(torch.tensor(-0.05)), torch.exp(torch.tensor(-0.195)), 0.0, 0.0,
                                           torch.exp(torch.tensor(-0.1))]))
    assert bool((intensity_mask(w, 0.3) > 0).all())  # the paper's τ 0.3 > ε: poison may go everywhere


def test_poisoning_collapses_retinaface_f1_not_random_noise(faces, tmp_path):
    x, w0 = faces, _w0()
    g = torch.Generator().manual_seed(1)
    noise = (x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1)
    path = tmp_path / "w0.safetensors"
    save_delta(path, w0, {"method": "tsdf"})
    d = get_defense("tsdf-paper", delta=str(path))
    calls = []
    x_adv = d.protect(x, Target([]), progress=lambda s, t: calls.append((s, t)))
    assert calls[-1] == (20, 20) and float((x_adv - x).abs().max()) <= 0.05
    f_noise, f_tsdf, f_w0 = _f1(x, noise), _f1(x, x_adv), _f1(x, (x + w0).clamp(-1, 1))
    assert f_noise >= 0.9 and f_w0 >= 0.9, (f_noise, f_w0)  # random noise and the interruption δ alone: intact
    assert f_tsdf <= 0.5, f_tsdf
    # the code's τ 0.04: the poison stays where |W₀| < τ; pixels at ±ε keep x + W₀ exactly
    x_code = poison(x, w0, tau=0.04, steps=10)
    fixed = (w0.abs() >= 0.04).expand_as(x)
    assert torch.allclose(x_code[fixed], (x + w0).clamp(-1, 1)[fixed], atol=1e-6)
    assert float((x_code - x).abs().max()) <= 0.05 and not torch.equal(x_code, (x + w0).clamp(-1, 1))


def test_batched_equals_per_image(faces):
    x, w0 = faces[:2], _w0()
    xb = poison(x, w0, steps=5)
    xs = torch.cat([poison(x[i:i + 1], w0, steps=5) for i in range(2)])
    # the same steps; Adam rescales a float-noise gradient (summation order inside a batch) to a full step,
    # so a few pixels may differ by up to a step
    assert (xb - xs).abs().gt(1e-5).float().mean() < 0.01


def test_bad_settings_fail_in_one_line(tmp_path):
    with pytest.raises(InputError, match="yunet.*cannot be poisoned"):
        get_defense("tsdf", detectors=["yunet"])
    with pytest.raises(InputError, match="tau must be"):
        get_defense("tsdf", tau=-1)
    save_delta(tmp_path / "w.safetensors", torch.zeros(3, 8, 8), {"method": "tsdf"})
    with pytest.raises(InputError, match="δ is 8x8 but the images are 16x16"):
        get_defense("tsdf", delta=str(tmp_path / "w.safetensors")).protect(torch.zeros(1, 3, 16, 16), Target([]))
