"""`pdbench train stargan`: a short CPU run trains, checkpoints and resumes."""

import json
import shutil

import pytest
import torch

from pdbench.cli import main
from pdbench.errors import InputError
from pdbench.generators.stargan import StarGAN


def test_train_smoke_and_resume(celeba_dir, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:40]:
        shutil.copy(p, imgs / p.name)
    attrs = str(celeba_dir / "list_attr_celeba_first20k.txt")
    out = tmp_path / "run"
    args = ["train", "stargan", "--data", str(imgs), "--attrs", attrs, "--out", str(out), "--resolution", "64",
            "--conv-dim", "8", "--holdout", "8", "--batch-size", "4", "--save-every", "3", "--sample-every", "3"]
    assert main(args + ["--iters", "6"]) == 0
    assert json.loads((out / "progress.json").read_text())["step"] == 6
    assert (out / "samples" / "latest.png").exists()
    first = torch.load(out / "state.pt", weights_only=True)["G"]
    assert main(args + ["--iters", "11"]) == 2  # refuses to overwrite a run without --resume
    assert main(args + ["--iters", "11", "--resume"]) == 0
    st = torch.load(out / "state.pt", weights_only=True)
    assert st["step"] == 11 and not torch.equal(st["G"]["main.0.weight"], first["main.0.weight"])
    # --resume continues with the saved recipe: the width need not be repeated, a different one is refused
    base = ["train", "stargan", "--data", str(imgs), "--attrs", attrs, "--out", str(out), "--resume",
            "--save-every", "3", "--sample-every", "3"]
    assert main(base + ["--iters", "12"]) == 0
    prog = json.loads((out / "progress.json").read_text())
    assert prog["step"] == 12 and prog["recipe"]["g_conv_dim"] == 8 and prog["recipe"]["batch_size"] == 4
    capsys.readouterr()
    assert main(base + ["--conv-dim", "16", "--iters", "13"]) == 2
    assert "g_conv_dim=8" in capsys.readouterr().err
    assert main(["train", "attgan"] + base[2:] + ["--iters", "13"]) == 2
    assert "holds a stargan run" in capsys.readouterr().err
    st = torch.load(out / "state.pt", weights_only=True)
    assert st["step"] == 12
    assert main(["export", str(out), "-o", str(tmp_path / "g.safetensors")]) == 0
    g = StarGAN.from_assets(checkpoint=str(tmp_path / "g.safetensors"), resolution=64)  # strict load
    assert g.net.main[0].out_channels == 8
    assert torch.allclose(g.net.main[0].weight, st["G"]["main.0.weight"].half().float())


def test_train_init_fine_tunes_from_a_run_or_a_checkpoint(celeba_dir, tmp_path, capsys):
    """--init starts from trained weights: a run directory brings its generator, critic and architecture;
    a generator file brings the generator only and must fit the recipe the command gives."""
    from safetensors.torch import load_file

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:24]:
        shutil.copy(p, imgs / p.name)
    attrs = str(celeba_dir / "list_attr_celeba_first20k.txt")
    common = ["--data", str(imgs), "--attrs", attrs, "--holdout", "4", "--save-every", "50", "--sample-every", "50"]
    src = tmp_path / "src"
    assert main(["train", "stargan", "--out", str(src), "--resolution", "64", "--conv-dim", "8", "--batch-size", "4",
                 "--iters", "5"] + common) == 0
    base = torch.load(src / "state.pt", weights_only=True)

    # a run directory: same architecture without repeating it, weights copied exactly (0 iterations)
    assert main(["train", "stargan", "--out", str(tmp_path / "ft0"), "--init", str(src), "--iters", "0"] + common) == 0
    st = torch.load(tmp_path / "ft0" / "state.pt", weights_only=True)
    assert all(torch.equal(st["G"][k], base["G"][k]) for k in base["G"])
    assert all(torch.equal(st["D"][k], base["D"][k]) for k in base["D"])
    assert st["step"] == 0 and st["init"].startswith(f"run {src}")
    assert st["recipe"]["g_conv_dim"] == 8 and st["recipe"]["batch_size"] == 4
    # ... and training from there moves them
    assert main(["train", "stargan", "--out", str(tmp_path / "ft"), "--init", str(src), "--iters", "5", "--lr", "5e-5"]
                + common) == 0
    st = torch.load(tmp_path / "ft" / "state.pt", weights_only=True)
    assert st["recipe"]["g_lr"] == 5e-5 and not torch.equal(st["G"]["main.0.weight"], base["G"]["main.0.weight"])
    capsys.readouterr()
    assert main(["train", "stargan", "--out", str(tmp_path / "x"), "--init", str(src), "--conv-dim", "16"] + common) == 2
    assert "g_conv_dim=8" in capsys.readouterr().err

    # a generator file: the critic starts fresh; the recipe must match the file
    assert main(["export", str(src), "-o", str(tmp_path / "g.safetensors")]) == 0
    assert main(["export", str(src), "-o", str(tmp_path / "d.safetensors"), "--critic"]) == 0
    d = load_file(str(tmp_path / "d.safetensors"))
    assert torch.equal(d["conv1.weight"], base["D"]["conv1.weight"].half())
    assert main(["train", "stargan", "--out", str(tmp_path / "fg"), "--init", str(tmp_path / "g.safetensors"),
                 "--resolution", "64", "--conv-dim", "8", "--batch-size", "4", "--iters", "0"] + common) == 0
    st = torch.load(tmp_path / "fg" / "state.pt", weights_only=True)
    assert torch.equal(st["G"]["main.0.weight"], base["G"]["main.0.weight"].half().float())
    assert "critic starts fresh" in st["init"]
    capsys.readouterr()
    assert main(["train", "stargan", "--out", str(tmp_path / "fh"), "--init", str(tmp_path / "g.safetensors"),
                 "--resolution", "64", "--iters", "0"] + common) == 2
    err = capsys.readouterr().err
    assert "does not fit this recipe" in err and err.count("\n") == 1
    assert main(["train", "stargan", "--out", str(tmp_path / "fi"), "--init", "no-such-thing", "--iters", "0"] + common) == 2


def test_init_from_the_shipped_stargan_brings_its_critic(celeba_dir, tmp_path):
    """`--init stargan-celeba-64-pdbench` fine-tunes the shipped model: its generator and the critic of
    the same training step (a registered companion asset), not a fresh critic."""
    from safetensors.torch import load_file

    from pdbench.assets import resolve
    from pdbench.train.stargan import StarGANRecipe, StarGANTrainer

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:8]:
        shutil.copy(p, imgs / p.name)
    recipe = StarGANRecipe(resolution=64, g_conv_dim=16, d_conv_dim=16, iters=0, decay_iters=0, holdout=0,
                           batch_size=16)
    with pytest.raises(InputError, match="smaller --batch-size"):
        StarGANTrainer(str(imgs), str(celeba_dir / "list_attr_celeba_first20k.txt"), str(tmp_path / "ft"), recipe)
    recipe.batch_size = 8
    tr = StarGANTrainer(str(imgs), str(celeba_dir / "list_attr_celeba_first20k.txt"), str(tmp_path / "ft"), recipe)
    what = tr.init_from("stargan-celeba-64-pdbench")
    assert "fresh" not in what
    g = load_file(str(resolve("stargan-celeba-64-pdbench")))
    d = load_file(str(resolve("stargan-celeba-64-pdbench-critic")))
    assert all(torch.equal(tr.G.state_dict()[k], v.float()) for k, v in g.items())
    assert all(torch.equal(tr.D.state_dict()[k], v.float()) for k, v in d.items())
    # the critic is the trained one: its attribute head reads the real faces' CelebA labels
    x, labels = tr.batch()
    with torch.no_grad():
        acc = float(((tr.D(x)[1] > 0).float() == labels).float().mean())
    assert acc >= 0.8, acc


def test_identity_term_is_opt_in_and_pulls_the_unedited_output_to_the_photo(celeba_dir, tmp_path):
    """`--set lambda_id=10` adds Fixed-Point GAN's same-domain identity L1 to StarGAN's generator step
    (architecture unchanged); the official recipe (and a run saved before the option existed) has it off."""
    from pdbench.train.loop import resume_recipe
    from pdbench.train.stargan import StarGANRecipe, StarGANTrainer

    assert StarGANRecipe().lambda_id == 0.0
    old = {k: v for k, v in StarGANRecipe(resolution=64).__dict__.items() if k != "lambda_id"}
    assert resume_recipe("stargan", StarGANRecipe, ("stargan", old), {}, tmp_path).lambda_id == 0.0

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:8]:
        shutil.copy(p, imgs / p.name)
    attrs = str(celeba_dir / "list_attr_celeba_first20k.txt")
    self_l1 = {}
    for lam in (0.0, 10.0):
        recipe = StarGANRecipe(resolution=64, g_conv_dim=16, d_conv_dim=16, iters=0, decay_iters=0, holdout=0,
                               batch_size=8, lambda_id=lam)
        tr = StarGANTrainer(str(imgs), attrs, str(tmp_path / f"ft{lam}"), recipe)
        tr.init_from("stargan-celeba-64-pdbench")
        x, labels = tr.batch()
        with torch.no_grad():
            before = float((tr.G(x, labels) - x).abs().mean())
        tr.step = recipe.n_critic - 1  # the next step updates the generator
        logs = tr.train_step()
        assert ("G/id" in logs) == bool(lam)
        if lam:
            assert abs(float(logs["G/id"]) - before) < 0.02  # the term is |x − G(x, c_org)|₁ of the batch
        with torch.no_grad():
            self_l1[lam] = float((tr.G(x, labels) - x).abs().mean())
    assert self_l1[10.0] < self_l1[0.0] - 0.005, self_l1  # one step: 0.150 vs 0.175 (0.164 before)
