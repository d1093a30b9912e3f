"""Face-swap metrics (pdbench.metrics.swap) on real LFW photos: same person vs stranger, pose and background."""

import math

import pytest
import torch

from conftest import require_asset
from pdbench.data import FaceFolder
from pdbench.errors import InputError, UnknownNameError
from pdbench.metrics.swap import swap_identity, swap_keep, swap_report

N = 6


@pytest.fixture(scope="module")
def lfw_pairs():
    """Photos 64 px (centre crop 0.5 of LFW's 250 px): 2N of George W. Bush, N of Colin Powell."""
    ds = FaceFolder(require_asset("lfw-gray-250") / "images", 64, crop=0.5, check_files=False)
    who = [p.stem.rsplit("_", 1)[0] for p in ds.files]
    bush = [i for i, w in enumerate(who) if w == "George_W_Bush"][:2 * N]
    powell = [i for i, w in enumerate(who) if w == "Colin_Powell"][:N]
    x = ds.load(bush + powell)
    return x[:N], x[N:2 * N], x[2 * N:]  # Bush A, Bush B (other photos), Powell


def test_same_person_is_closer_to_source_than_a_stranger(lfw_pairs):
    bush_a, bush_b, powell = lfw_pairs
    # a perfect swap's output is the source person: another photo of him, never seen as the source
    good = swap_identity(bush_b, source=bush_a, target=powell)
    # a swap that changed nothing returns the target
    none = swap_identity(powell.clone(), source=bush_a, target=powell)
    for judge in ("mobilefacenet", "dlib"):
        g, z = good[judge], none[judge]
        print(judge, "same person", g["rate"], g["to_source"].mean().item(), g["to_target"].mean().item())
        assert g["pairs"] == N and g["rate"] == 1.0
        assert float(g["to_source"].mean()) > float(g["to_target"].mean()) + 0.05
        assert z["rate"] == 0.0
        assert torch.allclose(z["to_target"], torch.ones(N), atol=1e-3)


def test_keep_measures_pose_and_background(lfw_pairs):
    _, _, powell = lfw_pairs
    same = swap_keep(powell.clone(), powell)
    assert torch.allclose(same["landmark_nme"], torch.zeros(N), atol=1e-6)
    assert float(same["background_l1"].abs().max()) == 0.0
    moved = swap_keep(torch.roll(powell, shifts=(5, 5), dims=(2, 3)), powell)  # the face moved by 5 px
    nme = moved["landmark_nme"]
    print("shifted by 5 px: NME", nme.tolist(), "background L1", moved["background_l1"].tolist())
    assert bool(moved["target_found"].all()) and float(nme.min()) > 0.1  # 7 px of ~25 px inter-ocular
    assert float(moved["background_l1"].min()) > 0.02


def test_report_is_plain_numbers_and_inputs_are_checked(lfw_pairs):
    bush_a, bush_b, powell = lfw_pairs
    rep = swap_report(bush_b[:2], bush_a[:2], powell[:2], embedders=("mobilefacenet",))
    assert rep["n"] == 2 and rep["identity"]["mobilefacenet"]["closer_to_source"] == 1.0
    assert not math.isnan(rep["keep"]["landmark_nme"])
    with pytest.raises(InputError, match="one source and one target"):
        swap_identity(bush_b, bush_a[:2], powell)
    with pytest.raises(UnknownNameError, match="known: mobilefacenet, dlib"):
        swap_identity(bush_b, bush_a, powell, embedders=("arcface",))
    with pytest.raises(InputError, match="one size"):
        swap_keep(bush_b, torch.nn.functional.interpolate(powell, size=32))
