"""pdbench's shipped AttGAN is a real attribute editor: measured on held-out CelebA faces."""

import torch

from pdbench.assets import ASSETS, verify
from pdbench.train.evaluate import edit_report


def test_shipped_weights_verify_and_load():
    from pdbench.generators import get_generator

    verify(ASSETS.get("attgan-celeba-64-pdbench"))  # sha256 of the file in the package
    g = get_generator("attgan")
    assert g.resolution == 64 and len(g.net.enc_layers) == 4 and g.net.shortcut_layers == 1 and g.net.inject_layers == 1
    assert not g.net.training


def test_edits_act_where_the_attribute_lives(celeba_dir):
    from pdbench.data import FaceFolder
    from pdbench.generators import get_generator

    g = get_generator("attgan")
    ds = FaceFolder(celeba_dir / "images", g.resolution, attr_file=celeba_dir / "list_attr_celeba_first20k.txt",
                    crop=g.crop)
    _, test = ds.split(1000)  # never trained on
    idx = ds.select(32, seed=0, pool=test)
    with torch.inference_mode():
        rep = edit_report(g, ds.load(idx), ds.labels(g.attributes, idx))
    e = rep["edits"]
    print(rep)
    assert e["flip_Eyeglasses"]["eyes"] > 2.0 * e["flip_Eyeglasses"]["mouth"] and e["flip_Eyeglasses"]["eyes"] > 0.08
    assert e["flip_Bushy_Eyebrows"]["eyes"] > 1.5 * e["flip_Bushy_Eyebrows"]["mouth"]
    for edit in ("flip_Mustache", "flip_Mouth_Slightly_Open", "flip_No_Beard"):
        assert e[edit]["mouth"] > 1.4 * e[edit]["eyes"], (edit, e[edit])
    for edit in ("flip_Eyeglasses", "flip_Mustache", "flip_Male", "flip_Young"):
        assert e[edit]["face"] > 2.0 * e[edit]["hair"], (edit, e[edit])
    assert rep["self_l1"] < 0.1 and rep["cycle_l1"] < 0.15  # AttGAN reconstructs (λ_rec 100)
