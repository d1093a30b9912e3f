"""Metrics against their reference implementations (scikit-image) and hand computations."""

import os

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pdbench.errors import AssetMissingError, InputError
from pdbench.metrics import METRICS, MetricInputs, get_metric
from pdbench.metrics.functional import psnr, ssim
from pdbench.tensors import from_uint8, to_uint8


def _faces(n=4, res=64):
    """Real face crops when the asset directory has them, else structured synthetic images."""
    from pdbench.assets import ASSETS

    loc = ASSETS["celebahq-stargan-v2"].location()
    if loc.exists():
        from pdbench.data import FaceFolder

        ds = FaceFolder(loc, res)
        return ds.load(list(range(n)))
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g) * 2 - 1, size=res, mode="bilinear")


def _pairs():
    x = _faces()
    g = torch.Generator().manual_seed(1)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    z = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    return x, y, z


@pytest.mark.parametrize("which", ["noise", "blur"])
def test_ssim_matches_scikit_image(which):
    x, y, z = _pairs()
    other = y if which == "noise" else z
    ours = ssim(x, other)
    for i in range(x.shape[0]):
        a = x[i].permute(1, 2, 0).double().numpy()
        b = other[i].permute(1, 2, 0).double().numpy()
        # the standard SSIM: of the images on [0, 1] (SSIM is not shift-invariant; [-1, 1] with range 2 differs)
        ref = structural_similarity((a + 1) / 2, (b + 1) / 2, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)
        assert abs(float(ours[i]) - ref) < 1e-5, (i, float(ours[i]), ref)
        shifted = structural_similarity(a, b, data_range=2.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
        assert abs(shifted - ref) > 1e-4  # the [-1, 1] reading is a different number: this test tells them apart
    u8 = ssim(from_uint8(to_uint8(x)), from_uint8(to_uint8(other)))
    for i in range(x.shape[0]):
        ref = structural_similarity(to_uint8(x)[i], to_uint8(other)[i], data_range=255, channel_axis=-1,
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert abs(float(u8[i]) - ref) < 1e-5


def test_psnr_matches_scikit_image_on_uint8():
    x, y, _ = _pairs()
    ours = psnr(x, y)
    a, b = to_uint8(x), to_uint8(y)
    ours_u8 = psnr(from_uint8(a), from_uint8(b))
    for i in range(x.shape[0]):
        ref = peak_signal_noise_ratio(a[i], b[i], data_range=255)
        assert abs(float(ours_u8[i]) - ref) < 1e-3
        ref_f = peak_signal_noise_ratio(x[i].double().numpy(), y[i].double().numpy(), data_range=2.0)
        assert abs(float(ours[i]) - ref_f) < 1e-3
    assert float(psnr(x, x)[0]) == 100.0


def _inputs():
    x = torch.zeros(2, 3, 16, 16)
    clean = torch.zeros(1, 2, 3, 16, 16)
    clean[0, :, :, :8, :] = 0.4  # the edit changes the top half: Σ_c |G(x) − x| = 1.2 > 0.5 there
    adv = clean.clone()
    adv[0, 0] += 0.5  # image 0: +0.5 everywhere (clamped later only at ±1)
    return MetricInputs(x, x.clone(), clean, adv)


def test_mse_mask_and_success_by_hand():
    inp = _inputs()
    mse = get_metric("mse")(inp)
    assert torch.allclose(mse, torch.tensor([0.25, 0.0]))
    l2m = get_metric("l2_mask")(inp)
    assert torch.allclose(l2m, torch.tensor([0.125, 0.0]))  # half the pixels are in the mask
    assert get_metric("dsr_mse")(inp).tolist() == [1.0, 0.0]
    assert get_metric("dsr_l2_mask")(inp).tolist() == [1.0, 0.0]
    l2 = get_metric("l2_norm")(inp)
    assert torch.allclose(l2, torch.tensor([0.5 * (768 ** 0.5), 0.0]))


def test_every_metric_has_direction_range_and_shape():
    inp = _inputs()
    up = [torch.nn.functional.interpolate(t.flatten(0, -4), scale_factor=2).view(*t.shape[:-2], 32, 32)
          for t in (inp.x, inp.x_adv, inp.out_clean, inp.out_adv)]
    big = MetricInputs(*up)  # LPIPS-alex needs at least 31 px
    for name in METRICS.names():
        try:
            m = get_metric(name)
        except AssetMissingError as e:  # refused when its weights are absent, saying which file and how to fetch it
            assert "pdbench assets fetch" in str(e)
            if os.environ.get("PDBENCH_REQUIRE_ASSETS") == "1":
                pytest.fail(f"{e}; PDBENCH_REQUIRE_ASSETS=1 makes this a failure")
            continue
        assert m.direction in {"higher=more disrupted", "lower=more disrupted", "lower=less visible", "higher=less visible"}
        if name == "lpips":
            with pytest.raises(InputError, match="at least 31 px"):
                m(inp)
        v = m(big if name.startswith("lpips") else inp)
        assert v.shape == (2,), name
        lo, hi = m.range
        if m.undefined_when:  # NaN allowed (random images hold no face), nothing else outside the range
            v = v[~torch.isnan(v)]
        assert bool(((v >= lo - 1e-6) & (v <= hi + 1e-6)).all()), (name, v)
