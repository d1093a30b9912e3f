"""Fixed-Point GAN: the official architecture (StarGAN's, residual output), strict loading of an
official-format checkpoint, its training recipe's losses, StarGAN initialisation and `pdbench train fpgan`."""

import json
import shutil

import pytest
import torch

from pdbench.errors import AssetCorruptError, InputError
from pdbench.generators import get_generator
from pdbench.generators.fpgan import FPGAN, FPGANNet
from pdbench.generators.stargan import StarGANNet



def test_official_parameter_names_and_residual_output():
    sd, ref = FPGANNet().state_dict(), StarGANNet().state_dict()  # official defaults: 64, 5, 6
    assert list(sd) == list(ref) and all(sd[k].shape == ref[k].shape for k in sd)
    net = FPGANNet()
    assert len(net.main) == 22 and isinstance(net.main[21], torch.nn.Conv2d)  # no Tanh: G returns δ


def test_official_checkpoint_loads_strictly_and_matches(tmp_path):
    torch.manual_seed(0)
    ref = FPGANNet(conv_dim=16, repeat_num=3)
    path = tmp_path / "200000-G.ckpt"
    torch.save(ref.state_dict(), path)  # what the official solver writes
    g = FPGAN.from_assets(checkpoint=str(path), resolution=32)
    assert g.experimental is None  # the flag is about pdbench's weights
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    with torch.no_grad():
        cc = c.view(2, 5, 1, 1).repeat(1, 1, 32, 32)
        delta = ref.main(torch.cat([x, cc], dim=1))  # the official Generator.forward
        y = torch.tanh(x + delta)  # as every call in the official solver
        assert torch.allclose(g.generate(x, c), y, atol=1e-5)
        assert torch.allclose(g.decode(g.encode(x, c), c, x=x), y, atol=1e-5)
        # a zero residual is the (tanh-squashed) input
        ref.main[-1].weight.zero_()
        assert torch.allclose(ref(x, c), torch.tanh(x))
    with pytest.raises(InputError, match="needs the input image"):
        g.decode(g.encode(x, c), c)
    sd = FPGANNet(conv_dim=16, repeat_num=3).state_dict()
    sd.pop("main.4.running_var")
    torch.save(sd, tmp_path / "bad.ckpt")
    with pytest.raises(AssetCorruptError) as e:
        get_generator("fpgan", checkpoint=str(tmp_path / "bad.ckpt"), resolution=32)
    assert "\n" not in str(e.value) and "1 missing (main.4.running_var)" in str(e.value)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(AssetCorruptError, match="not a Fixed-Point GAN generator"):
        FPGAN.from_assets(checkpoint=str(tmp_path / "other.ckpt"))
    with pytest.raises(InputError, match="fpgan: expects 32x32"):
        g.generate(torch.zeros(1, 3, 64, 64), c[:1])


def _trainer(celeba_dir, tmp_path, n=8):
    from pdbench.train.fpgan import FPGANRecipe, FPGANTrainer

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:n]:
        shutil.copy(p, imgs / p.name)
    recipe = FPGANRecipe(resolution=64, g_conv_dim=16, d_conv_dim=16, iters=0, decay_iters=0, holdout=0, batch_size=8)
    return FPGANTrainer(str(imgs), str(celeba_dir / "list_attr_celeba_first20k.txt"), str(tmp_path / "ft"), recipe)


def test_init_from_the_shipped_stargan_scales_its_output(celeba_dir, tmp_path):
    from safetensors.torch import load_file

    from pdbench.assets import resolve
    from pdbench.train.fpgan import STARGAN_OUT_SCALE, trained_as_stargan

    tr = _trainer(celeba_dir, tmp_path)
    what = tr.init_from("stargan-celeba-64-pdbench")
    assert "fresh" not in what and "scaled" in what
    g = load_file(str(resolve("stargan-celeba-64-pdbench")))
    sd = tr.G.state_dict()
    assert all(torch.equal(sd[k], v.float()) for k, v in g.items() if k != "main.21.weight")
    assert torch.allclose(sd["main.21.weight"], STARGAN_OUT_SCALE * g["main.21.weight"].float())
    assert trained_as_stargan("stargan-celeba-64-pdbench") and not trained_as_stargan("fpgan-celeba-64-pdbench")
    # the scaled residual keeps the same-domain output close to the photo, and the edits are there
    x, labels = tr.batch()
    with torch.no_grad():
        same = tr.G(x, labels)
        assert float((same - x).abs().mean()) < 0.08
        edit = tr.G(x, 1 - labels)
        assert float((edit - same).abs().mean()) > 0.01


def test_one_generator_step_has_the_identity_terms(celeba_dir, tmp_path):
    tr = _trainer(celeba_dir, tmp_path)
    tr.init_from("stargan-celeba-64-pdbench")
    tr.step = tr.recipe.n_critic - 1  # the next step updates the generator too
    before = tr.G.main[0].weight.clone()
    logs = tr.train_step()
    assert {"G/id", "G/rec_id", "G/cls_id", "G/rec", "G/cls", "D/gp"} <= set(logs)
    assert 0 < float(logs["G/id"]) < 0.2 and not torch.equal(before, tr.G.main[0].weight)


def test_train_cli_runs_and_resumes(celeba_dir, tmp_path):
    from pdbench.cli import main

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:24]:
        shutil.copy(p, imgs / p.name)
    out = tmp_path / "run"
    args = ["train", "fpgan", "--data", str(imgs), "--attrs", str(celeba_dir / "list_attr_celeba_first20k.txt"),
            "--out", str(out), "--resolution", "64", "--conv-dim", "8", "--holdout", "4", "--batch-size", "4",
            "--save-every", "5", "--sample-every", "5"]
    assert main(args + ["--iters", "5"]) == 0
    assert main(args + ["--iters", "6", "--resume"]) == 0
    prog = json.loads((out / "progress.json").read_text())
    assert prog["step"] == 6 and prog["method"] == "fpgan" and prog["recipe"]["lambda_id"] == 10.0
    assert main(["export", str(out), "-o", str(tmp_path / "g.safetensors")]) == 0
    g = FPGAN.from_assets(checkpoint=str(tmp_path / "g.safetensors"), resolution=64)  # strict
    assert g.net.main[0].out_channels == 8


def test_shipped_weights_edits_as_the_card_says(celeba_test_batch):
    """pdbench's Fixed-Point GAN (3,000 iterations) on 32 held-out faces, with margins on what the model card
    measures: the same-domain translation returns the photo (the fixed point), hair edits act in the hair and
    gender and age edits in the face, but every edit is about a third of StarGAN's strength and brown hair is
    only 1.18x local (StarGAN's quality test asks 1.2x), so the weights are flagged experimental."""
    from pdbench.assets import ASSETS, verify
    from pdbench.train.evaluate import edit_report

    assert verify(ASSETS["fpgan-celeba-64-pdbench"])
    g = get_generator("fpgan")
    assert g.experimental and "model-cards/fpgan" in g.experimental
    x, labels, _ = celeba_test_batch
    with torch.inference_mode():
        rep = edit_report(g, x, labels)
    e = rep["edits"]
    print(rep)
    assert e["to_Black_Hair"]["hair"] > 1.3 * e["to_Black_Hair"]["face"]  # measured 1.42 x
    assert e["to_Blond_Hair"]["hair"] > 1.2 * e["to_Blond_Hair"]["face"]  # 1.31 x (329 iterations: 0.97 x)
    assert e["to_Brown_Hair"]["hair"] > 1.08 * e["to_Brown_Hair"]["face"]  # 1.18 x: short of StarGAN's 1.2 x
    for hair in ("to_Black_Hair", "to_Blond_Hair", "to_Brown_Hair"):  # 0.051, 0.075, 0.046 in the hair
        assert e[hair]["hair"] > 0.038, (hair, e[hair])
    for edit in ("flip_Male", "flip_Young"):  # measured face 2.1, 1.6 x hair; 0.058, 0.061 in the face
        assert e[edit]["face"] > 1.4 * e[edit]["hair"] and e[edit]["face"] > 0.045, (edit, e[edit])
    assert rep["self_l1"] < 0.075 and rep["cycle_l1"] < 0.095  # measured 0.061, 0.077 (StarGAN 0.18, 0.16)
