"""The command line: protect a real photo, clear errors for bad input."""

import subprocess
import sys

import numpy as np
from PIL import Image

from pdbench.cli import main


def test_protect_real_photo_respects_eps_and_disrupts(tmp_path, capsys):
    from conftest import require_asset

    src = require_asset("celebahq-stargan-v2") / "src" / "female"
    photo = sorted(src.iterdir())[0]
    out = tmp_path / "protected.png"
    assert main(["protect", str(photo), "-o", str(out), "--steps", "10"]) == 0
    text = capsys.readouterr().out
    a = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape == (1024, 1024, 3)
    assert np.abs(a - b).max() <= 6  # ε 0.05 on [-1, 1] = 6.375 grey levels
    mse = float(text.split("on the saved file: mean ")[1].split()[0])
    assert mse > 0.05, text


def test_protect_to_webp_is_lossless(tmp_path):
    """WebP is lossy by default in Pillow; the perturbation written as .webp must come back exactly."""
    from conftest import require_asset

    photo = sorted((require_asset("codeformer-cropped")).iterdir())[0]
    assert main(["protect", str(photo), "-o", str(tmp_path / "p.png"), "--steps", "2"]) == 0
    assert main(["protect", str(photo), "-o", str(tmp_path / "p.webp"), "--steps", "2"]) == 0
    png = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    webp = np.asarray(Image.open(tmp_path / "p.webp").convert("RGB"))
    assert np.array_equal(png, webp)  # same seed, same perturbation, no compression loss


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    (tmp_path / "x.jpg").write_text("not an image")
    assert main(["protect", str(tmp_path / "x.jpg"), "-o", str(tmp_path / "o.png")]) == 2
    assert "x.jpg: not a readable image" in capsys.readouterr().err
    Image.new("RGB", (64, 64)).save(tmp_path / "y.png")
    assert main(["protect", str(tmp_path / "y.png"), "-o", str(tmp_path / "o.jpg")]) == 2
    assert "lossless" in capsys.readouterr().err
    assert main(["protect", str(tmp_path / "y.png"), "-o", str(tmp_path / "o.png"), "--defense", "pgx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown defense 'pgx'" in err


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "pdbench.cli", "list"], capture_output=True, text=True, check=True)
    assert "pgd" in r.stdout and "stargan" in r.stdout and "jpeg" in r.stdout
    # each generator on its own line: kind, whether its shipped weights are real, the edits judged real
    block = r.stdout.split("generators (", 1)[1].split("\nsettings:")[0].splitlines()[1:]
    gens = {line.split()[0]: line.split() for line in block}
    assert gens["stargan"][1:3] == ["attribute", "real"] and "to_Blond_Hair" in gens["stargan"]
    assert gens["fpgan"][1:3] == ["attribute", "experimental"] and gens["fpgan"][-1] == "to_Black_Hair"
    assert gens["simswap"][1:3] == ["swap", "experimental"] and "judged" not in gens["simswap"]


def test_protect_folder_batched_exact_eps_resumable(celeba_dir, tmp_path, capsys):
    """A folder is protected in batches; the result does not depend on the batch size, every published
    pixel stays within ε's grey levels (and outside the model's crop square nothing changes), the
    saved files disrupt the shipped StarGAN, and a rerun keeps what is done and redoes only the rest."""
    import os
    import shutil

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:6]:
        shutil.copy(p, photos / p.name)
    args = ["protect", str(photos), "--steps", "5", "--no-progress"]
    assert main(args + ["-o", str(tmp_path / "a"), "--batch-size", "4"]) == 0
    text = capsys.readouterr().out
    assert "protected 6 photo(s)" in text
    assert float(text.split("mean MSE(G(x), G(protected)): ")[1].split()[0]) > 0.05, text
    assert main(args + ["-o", str(tmp_path / "b"), "--batch-size", "1"]) == 0
    for p in sorted(photos.iterdir()):
        a = np.asarray(Image.open(tmp_path / "a" / (p.stem + ".png")), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "b" / (p.stem + ".png")), dtype=np.int16)
        x = np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)
        assert a.shape == x.shape == (109, 89, 3)
        assert np.array_equal(a, b)  # batch of 4 == one by one
        assert 0 < np.abs(a - x).max() <= 6  # ε 0.05 = 6 grey levels
        assert np.array_equal(a[:10], x[:10]) and np.array_equal(a[99:], x[99:])  # outside the 89 px square
    first = tmp_path / "a" / (sorted(photos.iterdir())[0].stem + ".png")
    keep = tmp_path / "a" / (sorted(photos.iterdir())[1].stem + ".png")
    stamp = os.stat(keep).st_mtime_ns
    first.unlink()
    capsys.readouterr()
    assert main(args + ["-o", str(tmp_path / "a"), "--batch-size", "4"]) == 0
    again = capsys.readouterr().out
    assert "protected 1 photo(s)" in again and "5 already protected" in again, again
    assert first.exists() and os.stat(keep).st_mtime_ns == stamp
    assert main(args + ["-o", str(photos / "out")]) == 2
    assert "inside" in capsys.readouterr().err
    (photos / "notes.jpg").write_text("not a photo")
    assert main(args + ["-o", str(tmp_path / "a")]) == 2
    assert "notes.jpg: not a readable image" in capsys.readouterr().err
    assert main(args + ["-o", str(tmp_path / "a"), "--skip-bad"]) == 0
    assert "left out 1 file(s): notes.jpg" in capsys.readouterr().out
    (photos / "notes.jpg").unlink()
    shutil.copy(sorted(photos.iterdir())[0], photos / (sorted(photos.iterdir())[0].stem + ".png"))
    assert main(args + ["-o", str(tmp_path / "a")]) == 2
    assert "would both be written to" in capsys.readouterr().err


def test_protect_device_option(tmp_path, capsys):
    """--device cpu runs; asking for CUDA where there is none is one clear line, before any work."""
    import torch

    from conftest import require_asset

    photo = sorted((require_asset("codeformer-cropped")).iterdir())[0]
    assert main(["protect", str(photo), "-o", str(tmp_path / "p.png"), "--steps", "1", "--device", "cpu"]) == 0
    if not torch.cuda.is_available():
        capsys.readouterr()
        assert main(["protect", str(photo), "-o", str(tmp_path / "q.png"), "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "no CUDA device" in err and err.count("\n") == 1
        assert not (tmp_path / "q.png").exists()
