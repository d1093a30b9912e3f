"""AttentionGAN (v1 multi-domain): the official architecture and output head, strict loading of an
official-format checkpoint, StarGAN initialisation for training, and `pdbench train attentiongan`."""

import json
import shutil

import pytest
import torch

from pdbench.errors import AssetCorruptError, InputError
from pdbench.generators import get_generator
from pdbench.generators.attentiongan import AttentionGAN, AttentionGANNet
from pdbench.generators.stargan import StarGANNet



def official_forward(net: AttentionGANNet, x: torch.Tensor, c: torch.Tensor):
    """The official Generator.forward, written out: one Sequential, sigmoid attention on channel 0."""
    c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
    out = net.main(torch.cat([x, c], dim=1))
    att = torch.sigmoid(out[:, :1]).repeat(1, 3, 1, 1)
    return out[:, 1:] * att + x * (1 - att), att, out[:, 1:]


def test_official_parameter_names():
    sd, ref = AttentionGANNet().state_dict(), StarGANNet().state_dict()  # official defaults: 64, 5, 6
    assert list(sd) == list(ref)  # StarGAN's names: main.0 … main.21
    assert sd["main.21.weight"].shape == (4, 64, 7, 7) and "main.21.bias" not in sd  # 3 content + 1 attention
    assert not isinstance(AttentionGANNet().main[-1], torch.nn.Tanh)  # content is unbounded


def test_official_checkpoint_loads_strictly_and_matches(tmp_path):
    torch.manual_seed(0)
    ref = AttentionGANNet(conv_dim=16, repeat_num=3)
    path = tmp_path / "200000-G.ckpt"
    torch.save(ref.state_dict(), path)  # what the official solver writes
    g = AttentionGAN.from_assets(checkpoint=str(path), resolution=32)
    assert g.experimental is None  # the flag is about pdbench's weights
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    with torch.no_grad():
        y, att, content = official_forward(ref, x, c)
        assert torch.allclose(g.generate(x, c), y.clamp(-1, 1), atol=1e-5)  # the image the official test saves
        r, a, cont = g.attention(x, c)
        assert torch.allclose(r, y, atol=1e-5)
        assert torch.allclose(a, att, atol=1e-6) and torch.allclose(cont, content, atol=1e-5)
        assert ((a >= 0) & (a <= 1)).all()
        # where the attention is 0 the photo is copied through: the output is x exactly
        a0 = torch.zeros_like(a)
        assert torch.equal(cont * a0 + x * (1 - a0), x)
        # the bottleneck and the head give the same output
        assert torch.allclose(g.decode(g.encode(x, c), c, x=x), y.clamp(-1, 1), atol=1e-5)
    with pytest.raises(InputError, match="needs the input image"):
        g.decode(g.encode(x, c), c)
    # a StarGAN checkpoint is another architecture: one line naming the output convolution
    torch.save(StarGANNet(conv_dim=16, repeat_num=3).state_dict(), tmp_path / "stargan.ckpt")
    with pytest.raises(AssetCorruptError) as e:
        get_generator("attentiongan", checkpoint=str(tmp_path / "stargan.ckpt"), resolution=32)
    assert "\n" not in str(e.value) and "1 of another shape (main.18.weight [3, 16, 7, 7] vs [4, 16, 7, 7])" in str(e.value)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(AssetCorruptError, match="not a AttentionGAN generator|not an AttentionGAN generator"):
        AttentionGAN.from_assets(checkpoint=str(tmp_path / "other.ckpt"))
    with pytest.raises(InputError, match="attentiongan: expects 32x32"):
        g.generate(torch.zeros(1, 3, 64, 64), c[:1])


def test_official_edits_are_stargans():
    g = AttentionGAN(resolution=32, conv_dim=8, repeat_num=1)
    labels = torch.tensor([[0.0, 1, 0, 1, 0]])
    assert g.conditions(labels, 1)[:, 0].tolist() == [[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0],
                                                      [0, 1, 0, 0, 0], [0, 1, 0, 1, 1]]


def test_init_from_the_shipped_stargan(celeba_dir, tmp_path):
    """StarGAN's layers become AttentionGAN's trunk and content; the attention starts at 0.5 everywhere."""
    from safetensors.torch import load_file

    from pdbench.assets import resolve
    from pdbench.train.attentiongan import AttentionGANRecipe, AttentionGANTrainer

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:8]:
        shutil.copy(p, imgs / p.name)
    recipe = AttentionGANRecipe(resolution=64, g_conv_dim=16, d_conv_dim=16, iters=0, decay_iters=0, holdout=0,
                                batch_size=8)
    tr = AttentionGANTrainer(str(imgs), str(celeba_dir / "list_attr_celeba_first20k.txt"), str(tmp_path / "ft"), recipe)
    what = tr.init_from("stargan-celeba-64-pdbench")
    assert "fresh" not in what  # the critic came too
    assert "content channels" in what and tr.init == what
    g = load_file(str(resolve("stargan-celeba-64-pdbench")))
    sd = tr.G.state_dict()
    assert all(torch.equal(sd[k], v.float()) for k, v in g.items() if k != "main.21.weight")
    assert torch.equal(sd["main.21.weight"][1:], g["main.21.weight"].float())
    assert not sd["main.21.weight"][0].any()
    x, labels = tr.batch()
    with torch.no_grad():
        y, a, content = tr.G.parts(x, labels)
        assert torch.allclose(a, torch.full_like(a, 0.5))
        s = StarGANNet(16, 5, 6)
        s.load_state_dict({k: v.float() for k, v in g.items()})
        pre_tanh = s.main[:-1](torch.cat([x, labels[:, :, None, None].expand(-1, -1, 64, 64)], 1))
        assert torch.allclose(content, pre_tanh, atol=1e-4)


def test_content_scale_start(celeba_dir, tmp_path):
    """--set content_scale=α: the converted content is exactly α × StarGAN's pre-Tanh output (the scaled
    weights, and the content up to float rounding), recorded in the run's init text; the mask still starts
    at 0.5; the default (1) is the shipped start; it refuses a start that is not StarGAN's, and a bad α."""
    from safetensors.torch import load_file

    from pdbench.assets import resolve
    from pdbench.train.attentiongan import AttentionGANRecipe, AttentionGANTrainer

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:8]:
        shutil.copy(p, imgs / p.name)
    attrs = str(celeba_dir / "list_attr_celeba_first20k.txt")

    def trainer(out, **kw):
        recipe = AttentionGANRecipe(resolution=64, g_conv_dim=16, d_conv_dim=16, iters=0, decay_iters=0, holdout=0,
                                    batch_size=8, **kw)
        return AttentionGANTrainer(str(imgs), attrs, str(tmp_path / out), recipe)

    assert AttentionGANRecipe().content_scale == 1.0  # the shipped run's start is the default ...
    from pdbench.train.loop import resume_recipe

    old = {k: v for k, v in AttentionGANRecipe(resolution=64).__dict__.items() if k != "content_scale"}
    assert resume_recipe("attentiongan", AttentionGANRecipe, ("attentiongan", old), {}, tmp_path).content_scale == 1.0
    # ... also for a run recorded before the field existed (the shipped run resumes unchanged)
    g = load_file(str(resolve("stargan-celeba-64-pdbench")))
    tr = trainer("a", content_scale=0.6)
    what = tr.init_from("stargan-celeba-64-pdbench")
    assert "content_scale 0.6" in what and tr.init == what
    w = tr.G.state_dict()["main.21.weight"]
    assert torch.equal(w[1:], g["main.21.weight"].float() * 0.6) and not w[0].any()
    s = StarGANNet(16, 5, 6)
    s.load_state_dict({k: v.float() for k, v in g.items()})
    x, labels = tr.batch()
    with torch.no_grad():
        _, a, content = tr.G.parts(x, labels)
        pre_tanh = s.main[:-1](torch.cat([x, labels[:, :, None, None].expand(-1, -1, 64, 64)], 1))
    assert torch.allclose(a, torch.full_like(a, 0.5))
    assert torch.allclose(content, 0.6 * pre_tanh, atol=1e-5, rtol=0)
    assert (content - x).abs().mean() < 0.8 * (pre_tanh - x).abs().mean()  # nearer the photo (0.19 vs 0.33 measured)
    tr.train(progress=False)  # iters 0: allowed, its init is a scaled StarGAN
    tr1 = trainer("b")
    assert "content_scale" not in tr1.init_from("stargan-celeba-64-pdbench")
    assert torch.equal(tr1.G.state_dict()["main.21.weight"][1:], g["main.21.weight"].float())
    tr.save()
    with pytest.raises(InputError, match="not one"):  # an AttentionGAN run is not scaled again
        trainer("c", content_scale=0.6).init_from(str(tmp_path / "a"))
    with pytest.raises(InputError, match="applies to a start from StarGAN"):  # from scratch
        trainer("d", content_scale=0.6).train(progress=False)
    with pytest.raises(InputError, match="positive"):
        trainer("e", content_scale=0.0).init_from("stargan-celeba-64-pdbench")


def test_train_cli_runs_and_resumes(celeba_dir, tmp_path):
    from pdbench.cli import main

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:24]:
        shutil.copy(p, imgs / p.name)
    out = tmp_path / "run"
    args = ["train", "attentiongan", "--data", str(imgs), "--attrs", str(celeba_dir / "list_attr_celeba_first20k.txt"),
            "--out", str(out), "--resolution", "64", "--conv-dim", "8", "--holdout", "4", "--batch-size", "4",
            "--save-every", "5", "--sample-every", "5"]
    assert main(args + ["--iters", "5"]) == 0
    assert main(args + ["--iters", "6", "--resume"]) == 0
    assert main(["export", str(out), "-o", str(tmp_path / "g.safetensors")]) == 0
    assert json.loads((out / "progress.json").read_text())["step"] == 6 and (out / "samples" / "latest.png").exists()
    g = AttentionGAN.from_assets(checkpoint=str(tmp_path / "g.safetensors"), resolution=64)  # strict
    assert g.net.main[-1].out_channels == 4 and g.net.main[0].out_channels == 8


def test_shipped_weights_edits_as_the_card_says(celeba_test_batch):
    """pdbench's AttentionGAN (its full 2,600-iteration schedule) on 32 held-out faces, with margins on what
    the model card measures: the attention mask learnt one face-centred map for every edit, so gender and
    age edits act in the face but hair-colour edits act more in the face than in the hair; the weights are
    flagged experimental (not for reported numbers); a user's checkpoint is not flagged."""
    from pdbench.assets import ASSETS, verify
    from pdbench.train.evaluate import attention_report, edit_report

    assert verify(ASSETS["attentiongan-celeba-64-pdbench"])
    g = get_generator("attentiongan")
    assert g.experimental and "model-cards/attentiongan" in g.experimental
    x, labels, _ = celeba_test_batch
    with torch.inference_mode():
        rep = edit_report(g, x, labels)
        att = attention_report(g, x, labels)
    e = rep["edits"]
    print(rep)
    for hair in ("to_Black_Hair", "to_Blond_Hair", "to_Brown_Hair"):  # hair/face measured 0.80, 0.51, 0.56
        assert e[hair]["hair"] < 0.95 * e[hair]["face"], (hair, e[hair])  # not local: the card says so
        assert e[hair]["hair"] > 0.025, (hair, e[hair])  # 0.036, 0.045, 0.031: weak but present
    for edit in ("flip_Male", "flip_Young"):  # measured face 4.8, 4.4 x hair; 0.073, 0.077 in the face
        assert e[edit]["face"] > 3 * e[edit]["hair"] and e[edit]["face"] > 0.06, (edit, e[edit])
    assert rep["cycle_l1"] < 0.07 and rep["self_l1"] < 0.06  # measured 0.047, 0.040 (StarGAN 0.16, 0.18)
    print(att)
    a = att["edits"]
    means = [v["mean"] for v in a.values()]
    assert 0.06 < min(means) and max(means) < 0.16 and max(means) - min(means) < 0.03, means  # 0.10-0.11 for every edit
    for name, v in a.items():  # the mask sits on the face (0.19-0.22) and not on the hair (0.06-0.08) ...
        assert v["face"] > 2 * v["hair"], (name, v)
        assert v["vs_unedited"] < 0.04, (name, v)  # ... and barely moves with the edit: |A - A_org| 0.017-0.026
    # the content it hides is far from the photo everywhere (|C - x| 0.39 hair, 0.35 face unedited; StarGAN's
    # pre-tanh output, which the init made the content, is 0.35 / 0.24 off). Not the cause of the shut mask: a start
    # at 0.6x (0.22 / 0.17 off) drifts to the same content and mask (docs/results/attentiongan-fix.json)
    assert att["unedited"]["content_hair"] > 0.25 and att["unedited"]["content_face"] > 0.25, att["unedited"]


def test_attention_report_measures_the_mask():
    """attention_report on a net with known masks: a zero attention channel gives A = 0.5 everywhere, and a
    first convolution blind to the condition gives every edit the unedited mask (|ΔA| = 0); with the
    condition seen, the mask moves."""
    from pdbench.train.evaluate import attention_report, region_masks

    torch.manual_seed(0)
    g = AttentionGAN(resolution=32, conv_dim=8, repeat_num=1)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    with torch.no_grad():
        moved = attention_report(g, x, labels)
        assert min(v["vs_unedited"] for v in moved["edits"].values()) > 0
        g.net.main[0].weight[:, 3:] = 0  # the condition channels of the input
        blind = attention_report(g, x, labels)
        assert set(blind["edits"]) == set(g.condition_names)
        assert all(v["vs_unedited"] == 0 for v in blind["edits"].values())
        g.net.main[-1].weight[0] = 0  # the attention channel
        half = attention_report(g, x, labels)
    for v in [half["unedited"], *half["edits"].values()]:
        assert v["mean"] == v["hair"] == v["face"] == 0.5
    hair = region_masks(32, 32)["hair"]
    with torch.no_grad():
        _, _, content = g.attention(x, g.unedited(labels, 4))
    err = (content - x).abs().mean(1)
    assert half["unedited"]["content_hair"] == pytest.approx(float(err[:, hair].mean()), rel=1e-5)
