"""`pdbench train stargan`: a short CPU run trains, checkpoints and resumes."""

import json
import shutil

import torch

from pdbench.cli import main
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
