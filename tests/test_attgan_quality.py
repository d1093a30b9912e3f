"""pdbench's shipped AttGAN is a real attribute editor: measured on held-out CelebA faces."""

import pytest
import torch
from conftest import held_out_fid

from pdbench.assets import ASSETS, verify
from pdbench.train.evaluate import edit_report, identity_report


@pytest.fixture(scope="module")
def attgan_test_batch(celeba_dir):
    """The shipped AttGAN and 32 held-out CelebA faces (never trained on) with its 13 attributes."""
    from pdbench.data import FaceFolder
    from pdbench.generators import get_generator

    g = get_generator("attgan")
    ds = FaceFolder(celeba_dir / "images", g.resolution, attr_file=celeba_dir / "list_attr_celeba_first20k.txt",
                    crop=g.crop)
    _, test = ds.split(1000)
    idx = ds.select(32, seed=0, pool=test)
    return g, ds.load(idx), ds.labels(g.attributes, idx)


def test_shipped_weights_verify_and_load():
    from pdbench.generators import get_generator

    verify(ASSETS.get("attgan-celeba-64-pdbench"))  # sha256 of the file in the package
    g = get_generator("attgan")
    assert g.resolution == 64 and len(g.net.enc_layers) == 4 and g.net.shortcut_layers == 1 and g.net.inject_layers == 1
    assert not g.net.training


def test_edits_act_where_the_attribute_lives(attgan_test_batch):
    g, x, labels = attgan_test_batch
    with torch.inference_mode():
        rep = edit_report(g, x, labels)
    e = rep["edits"]
    print(rep)
    assert e["flip_Eyeglasses"]["eyes"] > 2.0 * e["flip_Eyeglasses"]["mouth"] and e["flip_Eyeglasses"]["eyes"] > 0.08
    assert e["flip_Bushy_Eyebrows"]["eyes"] > 1.5 * e["flip_Bushy_Eyebrows"]["mouth"]
    for edit in ("flip_Mustache", "flip_Mouth_Slightly_Open", "flip_No_Beard"):
        assert e[edit]["mouth"] > 1.4 * e[edit]["eyes"], (edit, e[edit])
    for edit in ("flip_Eyeglasses", "flip_Mustache", "flip_Male", "flip_Young"):
        assert e[edit]["face"] > 2.0 * e[edit]["hair"], (edit, e[edit])
    assert rep["self_l1"] < 0.1 and rep["cycle_l1"] < 0.15  # AttGAN reconstructs (λ_rec 100)


def test_its_deepfakes_keep_the_person(attgan_test_batch):
    """Identity preservation (MobileFaceNet cosine of photo and deepfake, the card's table): every AttGAN
    edit keeps far more of the person than a stranger's face shares."""
    g, x, labels = attgan_test_batch
    rep = identity_report(g, x, labels)
    print(rep)
    assert rep["other_face"] < 0.1
    for edit, cos in rep["edits"].items():
        assert cos > 0.3, (edit, rep)  # 0.38–0.51 on these 32 (stranger 0.00)
    assert rep["reconstruction"] > 0.4, rep  # 0.54


def test_fid_of_its_outputs(attgan_test_batch, celeba_dir):
    """FID of its edits and reconstructions against real held-out faces (the card's protocol, at n = 32):
    above the real-vs-real floor of the same n, far below the shipped StarGAN's."""
    rep = held_out_fid(attgan_test_batch[0], celeba_dir)
    print(rep)
    floor = rep["real_vs_real"]  # 119.7; reconstruction 192.4, edits 200.6 (StarGAN's 360.1 and 363.0)
    assert floor + 30 < rep["reconstruction"] and floor + 30 < rep["edited"] < 2.0 * floor, rep
