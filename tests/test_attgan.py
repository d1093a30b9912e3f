"""AttGAN: the official architecture and checkpoint layout, the official test edits, and training."""

import json
import shutil

import pytest
import torch

from pdbench.cli import main
from pdbench.errors import AssetMissingError
from pdbench.generators.attgan import ATTRS, AttGAN, AttGANDiscriminator, AttGANNet, infer_config


def test_official_layout_128_shortcut1_inject1():
    sd = AttGANNet().state_dict()  # 128 px, 5+5 layers, dims 64, 13 attributes, shortcut 1, inject 1
    assert sd["enc_layers.0.layers.0.weight"].shape == (64, 3, 4, 4) and "enc_layers.0.layers.0.bias" not in sd
    assert sd["enc_layers.4.layers.0.weight"].shape == (1024, 512, 4, 4)
    assert "enc_layers.4.layers.1.running_var" in sd  # BatchNorm
    assert sd["dec_layers.0.layers.0.weight"].shape == (1024 + 13, 1024, 4, 4)
    # after layer 0: 1024 out + 512 shortcut (encoder layer 3) + 13 injected attributes
    assert sd["dec_layers.1.layers.0.weight"].shape == (1024 + 512 + 13, 512, 4, 4)
    assert sd["dec_layers.2.layers.0.weight"].shape == (512, 256, 4, 4)
    assert sd["dec_layers.4.layers.0.weight"].shape == (128, 3, 4, 4) and "dec_layers.4.layers.0.bias" in sd
    d = AttGANDiscriminator().state_dict()
    assert d["fc_adv.0.layers.0.weight"].shape == (1024, 1024 * 4 * 4) and d["fc_cls.1.layers.0.weight"].shape == (13, 1024)
    assert d["conv.0.layers.1.weight"].shape == (64,)  # InstanceNorm, affine
    assert infer_config(sd) == {"enc_dim": 64, "enc_layers": 5, "dec_dim": 64, "dec_layers": 5, "n_attrs": 13,
                                "shortcut_layers": 1, "inject_layers": 1}


@pytest.mark.parametrize("arch", [dict(shortcut_layers=1, inject_layers=0), dict(enc_dim=32, dec_dim=32, enc_layers=4,
                                                                                 dec_layers=4, shortcut_layers=2, inject_layers=1)])
def test_official_format_checkpoint_loads_strictly(tmp_path, arch):
    torch.manual_seed(0)
    res = 128 if arch.get("enc_layers", 5) == 5 else 64
    ref = AttGANNet(img_size=res, **arch)
    ref.train()
    for _ in range(2):  # give BatchNorm real running statistics
        ref(torch.rand(4, 3, res, res) * 2 - 1, torch.rand(4, 13) - 0.5)
    ref.eval()
    path = tmp_path / "weights.199.pth"
    torch.save({"G": ref.state_dict()}, path)  # what the official saveG writes
    g = AttGAN.from_assets(checkpoint=str(path), resolution=res)
    g.train()  # the wrapper stays on running statistics, as the official test
    assert not g.net.training
    x = torch.rand(2, 3, res, res) * 2 - 1
    c = g.conditions(torch.zeros(2, 13), 2)[7]
    with torch.no_grad():
        assert torch.allclose(g.generate(x, c), ref(x, c), atol=1e-5)
    with pytest.raises(AssetMissingError) as e:
        AttGAN.from_assets(asset="attgan-celeba-128-official")
    assert "weights.199.pth" in str(e.value) and "goo.gl" in str(e.value)


def test_official_test_edits_and_conflicts():
    lab = torch.zeros(1, 13)
    lab[0, ATTRS.index("Black_Hair")] = 1
    lab[0, ATTRS.index("No_Beard")] = 1
    lab[0, ATTRS.index("Bald")] = 1
    c = AttGAN(64, enc_layers=4, dec_layers=4).conditions(lab, 1)[:, 0]  # (13 edits, 13 attributes)
    assert c.shape == (13, 13)
    blond = c[ATTRS.index("Blond_Hair")]
    assert blond[ATTRS.index("Blond_Hair")] == 1.0 and blond[ATTRS.index("Black_Hair")] == -0.5  # one hair colour
    mustache = c[ATTRS.index("Mustache")]
    assert mustache[ATTRS.index("Mustache")] == 1.0 and mustache[ATTRS.index("No_Beard")] == -0.5
    bangs = c[ATTRS.index("Bangs")]
    assert bangs[ATTRS.index("Bangs")] == 1.0 and bangs[ATTRS.index("Bald")] == -0.5
    black_off = c[ATTRS.index("Black_Hair")]  # turning an attribute off changes nothing else
    assert black_off[ATTRS.index("Black_Hair")] == -1.0 and black_off[ATTRS.index("No_Beard")] == 0.5
    others = torch.ones(13, 13, dtype=torch.bool)
    others[torch.arange(13), torch.arange(13)] = False
    assert set(c[others].abs().unique().tolist()) == {0.5}  # thres_int 0.5 everywhere but the edit (test_int 1)


def test_train_attgan_smoke_resume_bf16(celeba_dir, tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:24]:
        shutil.copy(p, imgs / p.name)
    out = tmp_path / "run"
    args = ["train", "attgan", "--data", str(imgs), "--attrs", str(celeba_dir / "list_attr_celeba_first20k.txt"),
            "--out", str(out), "--resolution", "64", "--dim", "8", "--layers", "3", "--fc-dim", "16", "--holdout", "4",
            "--batch-size", "4", "--save-every", "4", "--sample-every", "4"]
    assert main(args + ["--iters", "7"]) == 0  # 6 critic steps and 1 generator step
    st = torch.load(out / "state.pt", weights_only=True)
    assert st["step"] == 7 and st["recipe"]["lambda_1"] == 100.0 and st["recipe"]["n_d"] == 5
    assert json.loads((out / "progress.json").read_text())["method"] == "attgan"
    assert main(args + ["--iters", "9", "--resume", "--amp", "bf16"]) == 0  # CPU bf16 autocast: the GPU code path
    st2 = torch.load(out / "state.pt", weights_only=True)
    assert st2["step"] == 9 and not torch.equal(st2["D"]["conv.0.layers.0.weight"], st["D"]["conv.0.layers.0.weight"])
    assert (out / "samples" / "latest.png").exists()
    assert main(["export", str(out), "-o", str(tmp_path / "g.safetensors")]) == 0
    g = AttGAN.from_assets(checkpoint=str(tmp_path / "g.safetensors"), resolution=64)
    assert g.net.enc_layers[0].layers[0].out_channels == 8 and len(g.net.enc_layers) == 3
    assert main(args + ["--decay-iters", "3", "--out", str(tmp_path / "x")]) == 2  # stargan-only option: clear error
