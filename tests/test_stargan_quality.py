"""pdbench's shipped StarGAN is a real attribute editor: measured on held-out CelebA faces."""

import torch

from pdbench.train.evaluate import edit_report


def test_edits_act_where_the_attribute_lives(stargan, celeba_test_batch):
    x, labels, _ = celeba_test_batch
    with torch.inference_mode():
        rep = edit_report(stargan, x, labels)
    e = rep["edits"]
    print(rep)
    for hair in ("to_Black_Hair", "to_Blond_Hair", "to_Brown_Hair"):
        assert e[hair]["hair"] > 1.2 * e[hair]["face"], (hair, e[hair])  # hair colour changes the hair
    assert e["flip_Male"]["face"] > 1.1 * e["flip_Male"]["hair"], e["flip_Male"]  # gender changes the face
    for edit in ("flip_Male", "flip_Young"):
        assert e[edit]["face"] > 0.05, (edit, e[edit])
    # StarGAN's cycle consistency: G(G(x, c), c_org) comes back close to x
    assert rep["cycle_l1"] < 0.25 and rep["self_l1"] < 0.25
