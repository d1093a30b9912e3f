"""Net2WiderNet widening of StarGAN's generator (pdbench.train.widen, `pdbench train stargan --init … --widen`)."""

import json
import shutil

import pytest
import torch

from pdbench.cli import main
from pdbench.errors import InputError
from pdbench.generators.stargan import StarGAN, StarGANNet
from pdbench.train.widen import ChannelMap, widen_stargan


def test_channel_map_copies_j_mod_old_and_counts_copies():
    m = ChannelMap.of(3, 7)
    assert m.index.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert m.count.tolist() == [3, 2, 2, 3, 2, 2, 3]
    assert ChannelMap.of(4, 4).index.tolist() == [0, 1, 2, 3] and ChannelMap.of(4, 4).count.tolist() == [1] * 4
    with pytest.raises(InputError, match="at least the old one"):
        ChannelMap.of(8, 4)


def test_widened_shipped_stargan_is_the_same_function_on_held_out_faces(stargan, celeba_test_batch, tmp_path):
    """Width 16 -> 32 (noise 0): the same edits on real held-out faces to ~1e-5, the parameter count of
    g_conv_dim 32, and an official-format state dict (strict load into a width-32 StarGAN)."""
    from pdbench.io import save_safetensors

    x, labels, _ = celeba_test_batch
    x, labels = x[:6], labels[:6]
    state = stargan.net.state_dict()
    wide, info = widen_stargan(state, 32)
    assert (info.old_dim, info.new_dim, info.noise) == (16, 32, 0.0) and "exactly the same function" in info.describe()
    ref = StarGANNet(32)
    assert set(wide) == set(ref.state_dict()) and all(wide[k].shape == v.shape for k, v in ref.state_dict().items())
    n_params = sum(v.numel() for k, v in wide.items() if "running" not in k and "num_batches" not in k)
    assert n_params == sum(p.numel() for p in ref.parameters()) == 2_118_112  # 4x the 0.53 M of width 16
    # the original channels are the old ones unchanged where nothing reads a duplicated input
    assert torch.equal(wide["main.0.weight"][:16], state["main.0.weight"].float())
    assert torch.equal(wide["main.0.weight"][16:], state["main.0.weight"].float())
    assert torch.allclose(wide["main.3.weight"][:32, :16] * 2, state["main.3.weight"].float())
    path = tmp_path / "wide.safetensors"
    save_safetensors(wide, path)
    g = StarGAN.from_assets(checkpoint=str(path), resolution=64)  # strict; width read from the weights
    assert g.net.main[0].out_channels == 32 and g.net.main[9].main[0].in_channels == 128
    with torch.inference_mode():
        for c in stargan.conditions(labels, len(x)):
            a, b = stargan.generate(x, c), g.generate(x, c)
            assert float((a - b).abs().max()) < 1e-5
            assert float((a - x).abs().mean()) > 0.05  # a real edit, not a trivially equal output


def test_widening_noise_breaks_the_symmetry_a_little_and_is_seeded(stargan, celeba_test_batch):
    x, labels, _ = celeba_test_batch
    x, c = x[:4], labels[:4]
    state = stargan.net.state_dict()
    wide, info = widen_stargan(state, 32, noise=0.01, seed=3)
    again, _ = widen_stargan(state, 32, noise=0.01, seed=3)
    other, _ = widen_stargan(state, 32, noise=0.01, seed=4)
    assert all(torch.equal(wide[k], again[k]) for k in wide) and not torch.equal(wide["main.0.weight"], other["main.0.weight"])
    assert "noise 0.01" in info.describe() and "seed 3" in info.describe()
    assert torch.equal(wide["main.0.weight"][:16], state["main.0.weight"].float())  # original channels untouched
    assert not torch.equal(wide["main.0.weight"][16:], wide["main.0.weight"][:16])  # the copies differ
    net = StarGANNet(32)
    net.load_state_dict(wide)
    with torch.inference_mode():
        diff = float((net(x, c) - stargan.net(x, c)).abs().mean())
    assert 1e-4 < diff < 0.02, diff  # measured 0.0036 on random inputs: small beside the self L1 of ~0.17


def test_widen_refuses_a_mismatch_in_one_line():
    with pytest.raises(InputError, match="not a StarGAN generator"):
        widen_stargan({"conv.weight": torch.zeros(1)}, 32)
    with pytest.raises(InputError, match="at least the old one"):
        widen_stargan(StarGANNet(16, repeat_num=2).state_dict(), 8)


def test_train_init_widen_starts_from_the_widened_generator_and_the_shipped_critic(celeba_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    from pdbench.assets import resolve

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:12]:
        shutil.copy(p, imgs / p.name)
    base = ["--data", str(imgs), "--attrs", str(celeba_dir / "list_attr_celeba_first20k.txt"), "--holdout", "4",
            "--batch-size", "4", "--save-every", "50", "--sample-every", "50"]
    narrow = base + ["--resolution", "64", "--conv-dim", "16"]  # the shipped model's recipe
    common = narrow + ["--set", "g_conv_dim=32"]  # ... with a generator twice as wide
    out = tmp_path / "wide"
    assert main(["train", "stargan", "--out", str(out), "--init", "stargan-celeba-64-pdbench", "--widen",
                 "--widen-noise", "0", "--iters", "0"] + common) == 0
    st = torch.load(out / "state.pt", weights_only=True)
    prog = json.loads((out / "progress.json").read_text())
    assert prog["recipe"]["g_conv_dim"] == 32 and prog["recipe"]["d_conv_dim"] == 16
    assert "widened from conv_dim 16 to 32" in prog["init"] and "noise 0" in prog["init"] and "fresh" not in prog["init"]
    g = {k: v.float() for k, v in load_file(str(resolve("stargan-celeba-64-pdbench"))).items()}
    assert torch.equal(st["G"]["main.0.weight"], torch.cat([g["main.0.weight"]] * 2))
    d = load_file(str(resolve("stargan-celeba-64-pdbench-critic")))
    assert all(torch.equal(st["D"][k], v.float()) for k, v in d.items())  # the shipped critic, unchanged
    # a run directory widens too: its recipe (critic width 16 and all) with the wider generator asked for
    assert main(["train", "stargan", "--out", str(tmp_path / "w48"), "--init", str(out), "--widen", "--widen-noise", "0",
                 "--set", "g_conv_dim=48", "--iters", "0"] + base) == 0
    st48 = torch.load(tmp_path / "w48" / "state.pt", weights_only=True)
    assert st48["recipe"]["g_conv_dim"] == 48 and st48["recipe"]["d_conv_dim"] == 16
    assert torch.equal(st48["G"]["main.0.weight"][:32], st["G"]["main.0.weight"])
    assert all(torch.equal(st48["D"][k], v) for k, v in st["D"].items())
    # a short run from there trains and resumes with the saved (wide) recipe; the record survives
    assert main(["train", "stargan", "--out", str(tmp_path / "w2"), "--init", "stargan-celeba-64-pdbench", "--widen",
                 "--iters", "2"] + common) == 0
    assert "noise 0.01" in json.loads((tmp_path / "w2" / "progress.json").read_text())["init"]
    assert main(["train", "stargan", "--out", str(tmp_path / "w2"), "--resume", "--iters", "3"] + base) == 0
    prog = json.loads((tmp_path / "w2" / "progress.json").read_text())
    assert prog["step"] == 3 and prog["recipe"]["g_conv_dim"] == 32 and "widened from conv_dim 16" in prog["init"]
    # one-line refusals: no --init, not a StarGAN recipe, nothing to widen
    capsys.readouterr()
    assert main(["train", "stargan", "--out", str(tmp_path / "x"), "--widen", "--iters", "0"] + common) == 2
    assert "give --init" in capsys.readouterr().err
    assert main(["train", "attgan", "--out", str(tmp_path / "y"), "--init", "attgan-celeba-64-pdbench", "--widen",
                 "--iters", "0"] + base) == 2
    assert "applies to stargan" in capsys.readouterr().err
    assert main(["train", "stargan", "--out", str(tmp_path / "z"), "--init", "stargan-celeba-64-pdbench", "--widen",
                 "--iters", "0"] + narrow) == 2
    err = capsys.readouterr().err
    assert "already conv_dim 16" in err and err.count("\n") == 1


def test_a_wide_checkpoint_is_selected_in_a_config_and_evaluated_at_its_own_width(stargan, celeba_test_batch, tmp_path):
    """A width-32 StarGAN checkpoint of `pdbench train` (exported) is chosen in a benchmark config by its
    path alone: width and depth come from its tensors, the resolution from the recipe it records."""
    from pdbench.bench.config import load_config
    from pdbench.bench.runner import _generator
    from pdbench.generators.base import trained_resolution
    from pdbench.io import save_safetensors

    wide, _ = widen_stargan(stargan.net.state_dict(), 32)
    ckpt = tmp_path / "stargan-wide.safetensors"
    save_safetensors({k: v.half() if v.is_floating_point() else v for k, v in wide.items()}, ckpt,
                     {"step": "0", "method": "stargan", "recipe": json.dumps({"resolution": 64, "g_conv_dim": 32})})
    assert trained_resolution(ckpt) == 64
    plain = tmp_path / "plain.safetensors"  # no pdbench record (an official or converted file): the default
    save_safetensors(wide, plain)
    assert trained_resolution(plain) is None and StarGAN.from_assets(checkpoint=str(plain)).resolution == 128
    cfg_path = tmp_path / "wide.yaml"
    cfg_path.write_text(f"name: wide\ndataset: {{asset: celeba-10k-89px, images: images, attrs: list_attr_celeba_first20k.txt,"
                        f" holdout: 1000, split: test, n: 2}}\ngenerators:\n  - {{name: stargan, checkpoint: {ckpt}}}\n"
                        f"defenses: [none]\nmetrics: [mse]\nout: {tmp_path / 'out'}\n")
    cfg = load_config(cfg_path)
    G = _generator(cfg.generators[0], "cpu")
    assert G.resolution == 64 and G.net.main[0].out_channels == 32
    x, labels, _ = celeba_test_batch
    with torch.inference_mode():
        c = stargan.conditions(labels[:4], 4)[0]
        assert float((G.generate(x[:4], c) - stargan.generate(x[:4], c)).abs().max()) < 1e-5  # fp16 halves are exact


def test_widen_is_offered_by_the_trainers_that_implement_it_and_refused_by_the_others_up_front(tmp_path, capsys):
    """One record of who widens (a trainer's ``widen_generator``): StarGAN's; Fixed-Point GAN and AttentionGAN,
    StarGAN's family, do not inherit it, and `pdbench train fpgan --widen` is refused in one line naming
    the trainers that do, before any data are read or the run folder is made."""
    from pdbench.train import TRAINERS
    from pdbench.train.loop import widening_trainers

    assert widening_trainers() == ["stargan"]
    assert TRAINERS.get("stargan").widen_generator is not None
    assert TRAINERS.get("fpgan").widen_generator is None and TRAINERS.get("attentiongan").widen_generator is None
    capsys.readouterr()
    for method in ("fpgan", "attentiongan"):
        out = tmp_path / method
        assert main(["train", method, "--out", str(out), "--init", "stargan-celeba-64-pdbench", "--widen",
                     "--data", str(tmp_path / "no-such-folder"), "--iters", "0"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no-such-folder" not in err
        assert (f"--widen applies to stargan (a generator that widens function-preservingly), not {method}; drop "
                "--widen, or train stargan instead") in err
        assert not out.exists()

