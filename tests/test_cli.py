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
