"""Probe sets by name: PDB's robustness probes with PDB's parameters, per-image seeded noise, expansion."""

import math

import pytest
import torch
import torch.nn.functional as F

from pdbench.errors import InputError, UnknownNameError
from pdbench.transforms import expand_settings, parse_setting
from pdbench.transforms.probe_sets import PROBE_SETS, Probe, split_label


@pytest.fixture(scope="module")
def faces(celeba_dir):
    from pdbench.data import FaceFolder

    ds = FaceFolder(celeba_dir / "images", 128, check_files=False)
    return ds.load(ds.select(4, seed=0))


def _inner(set_name):
    return {t.probe: t.inner for t in expand_settings([set_name]) if isinstance(t, Probe)}


def test_pdb_code_probes_have_pdbs_parameters():
    # robustness_evaluation.py PREPROCESSING_TYPES, in its order; parameters as batch_robustness_test.py's
    # apply_preprocessing parses the names: blurK -> GaussianBlur(kernel_size=K, sigma=1.0), jpegQ -> quality Q,
    # noiseNNN -> std NNN/1000, salt_pepperNNN -> prob NNN/1000
    probes = _inner("pdb-code")
    assert list(probes) == ["blur1", "blur3", "jpeg70", "jpeg90", "noise001", "noise003",
                            "salt_pepper001", "salt_pepper003"]
    assert {k: (t.name, t.params) for k, t in probes.items()} == {
        "blur1": ("blur_kernel", {"kernel": 1, "sigma": 1.0}),
        "blur3": ("blur_kernel", {"kernel": 3, "sigma": 1.0}),
        "jpeg70": ("jpeg", {"quality": 70}),
        "jpeg90": ("jpeg", {"quality": 90}),
        "noise001": ("gaussian_noise", {"std": 0.001}),
        "noise003": ("gaussian_noise", {"std": 0.003}),
        "salt_pepper001": ("salt_pepper", {"prob": 0.001}),
        "salt_pepper003": ("salt_pepper", {"prob": 0.003}),
    }
    assert PROBE_SETS["pdb-code"].kind == "rob"


def test_pdb_paper_and_sweeps_are_the_documented_settings():
    assert {k: (t.name, t.params) for k, t in _inner("pdb-paper").items()} == {
        "jpeg_q75": ("jpeg", {"quality": 75}), "blur_s1.0": ("blur", {"sigma": 1.0}),
        "noise_s0.04": ("gaussian_noise", {"std": 0.04}), "resize_x0.5": ("resize", {"factor": 0.5})}
    sweeps = {n: [(p, PROBE_SETS[n].severity(p), t.params) for p, t in _inner(n).items()]
              for n in ("sweep-jpeg", "sweep-blur", "sweep-noise", "sweep-scale")}
    assert [s for _, s, _ in sweeps["sweep-jpeg"]] == [100, 90, 80, 70, 60, 50]
    assert all(prm == {"quality": s} for _, s, prm in sweeps["sweep-jpeg"])
    assert [s for _, s, _ in sweeps["sweep-blur"]] == [0.5, 1.0, 1.5, 2.0, 3.0]
    assert [s for _, s, _ in sweeps["sweep-noise"]] == [0.01, 0.02, 0.04, 0.08]
    assert [s for _, s, _ in sweeps["sweep-scale"]] == [0.75, 0.5, 0.375, 0.25]
    assert all(PROBE_SETS[n].kind == "sweep" for n in sweeps)


def test_expansion_labels_baseline_and_errors():
    ts = expand_settings(["pdb-code"])
    assert [t.label() for t in ts][:3] == ["none", "pdb-code/blur1", "pdb-code/blur3"]  # the baseline comes along
    assert len(ts) == 9 and split_label("pdb-code/jpeg70")[1] == "jpeg70" and split_label("jpeg(quality=70)") is None
    labels = [t.label() for t in expand_settings(["jpeg", {"name": "none"}, {"name": "jpeg", "quality": 75}, "pdb-paper"])]
    assert labels == ["jpeg(quality=75)", "none", "pdb-paper/jpeg_q75", "pdb-paper/blur_s1.0",
                      "pdb-paper/noise_s0.04", "pdb-paper/resize_x0.5"]  # duplicates once, no second none
    assert [t.label() for t in expand_settings(["none", "jpeg:quality=90"])] == ["none", "jpeg(quality=90)"]
    with pytest.raises(UnknownNameError, match="Did you mean 'pdb-code'") as e:
        expand_settings(["pdb-cod"])
    assert "\n" not in str(e.value) and "probe sets: pdb-code" in str(e.value)
    with pytest.raises(InputError, match="takes no parameters"):
        expand_settings([{"name": "pdb-code", "quality": 3}])
    with pytest.raises(InputError, match="odd positive"):
        parse_setting({"name": "blur_kernel", "kernel": 4})
    with pytest.raises(InputError, match=r"prob must be in \[0, 1\]"):
        parse_setting({"name": "salt_pepper", "prob": 1.5})


def test_blur1_is_the_identity_and_blur3_is_torchvisions_kernel(faces):
    probes = _inner("pdb-code")
    assert torch.equal(probes["blur1"](faces), faces)
    y = probes["blur3"](faces)
    # torchvision: linspace(-1, 1, 3), exp(-t²/2), normalised -> 0.2741, 0.4519, 0.2741; reflect padding
    k1 = torch.tensor([math.exp(-0.5), 1.0, math.exp(-0.5)])
    k1 = k1 / k1.sum()
    assert k1[0].item() == pytest.approx(0.2741, abs=1e-4)
    k2 = (k1[:, None] * k1[None, :]).expand(3, 1, 3, 3)
    ref = F.conv2d(F.pad(faces, (1, 1, 1, 1), mode="reflect"), k2, groups=3)
    assert torch.allclose(y, ref, atol=1e-6)
    assert (y - faces).abs().mean() > 0.01  # it does blur


def test_salt_pepper_hits_the_expected_fraction(faces):
    p = 0.003
    y = _inner("pdb-code")["salt_pepper003"](faces)
    n = faces.numel()
    salt, pepper = (y == 1) & (faces != 1), (y == -1) & (faces != -1)
    assert torch.equal((y != faces), salt | pepper)  # nothing else changes
    tol = 5 * math.sqrt(p / n)  # 5 binomial standard deviations
    assert (y != faces).float().mean().item() == pytest.approx(1 - (1 - p / 2) ** 2, abs=tol)
    assert pepper.float().mean().item() == pytest.approx(p / 2, abs=tol)
    assert salt.float().mean().item() == pytest.approx(p / 2 * (1 - p / 2), abs=tol)


def test_noise_probes_are_deterministic_per_image(faces):
    for t in (parse_setting("gaussian_noise:std=0.02"), parse_setting("salt_pepper:prob=0.05")):
        whole = t(faces)
        assert torch.equal(whole, t(faces))
        assert torch.equal(t(faces[2:3]), whole[2:3])  # same image, alone: same noise
        assert torch.equal(t(faces.flip(0)), whole.flip(0))  # order does not matter
        d = whole - faces
        assert not torch.equal(d[0], d[1])  # different images: different draws
        other = parse_setting({"name": t.name, **t.params, "seed": 1})
        assert not torch.equal(other(faces), whole)
    y = parse_setting("gaussian_noise:std=0.02")(faces)
    inside = (faces.abs() < 0.9)
    assert (y - faces)[inside].std().item() == pytest.approx(0.02, rel=0.02)
    assert y.min() >= -1 and y.max() <= 1
