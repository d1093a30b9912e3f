"""`pdbench protect` never loses, damages or misreports a user's photo.

Guards (no write over an input, also through links; output folders that are files or not writable;
bad devices), the settings manifest that makes folder resume honest, stale `.part` files, warnings
for photos where protection means little, live progress, and a property test that throws generated
malformed and unusual photos at photo and folder mode.
"""

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from photo_cases import INVERSE, MODES, encode, face_like, image_in_mode, png_header, stamp

from pdbench.cli import main
from pdbench.data.folder import load_photo
from pdbench.defenses import get_defense
from pdbench.errors import InputError, PdbenchError
from pdbench.protect import MANIFEST, protect_folder, protect_photo


@pytest.fixture(scope="module")
def tiny():
    """A narrow StarGAN at 32 px with one PGD step: the I/O under test does not depend on the weights."""
    from pdbench.generators.stargan import StarGAN

    torch.manual_seed(0)
    return StarGAN(resolution=32, conv_dim=8, repeat_num=2).requires_grad_(False), get_defense("pgd", steps=1)


def _photo(path, w=89, h=109, seed=0, **kw):
    Image.fromarray(face_like(w, h, seed)).save(path, **kw)
    return path


def _max_change(report: str) -> int:
    return int(re.search(r"max (\d+) grey levels", report).group(1))


def _measured(src: Path, out: Path) -> int:
    with Image.open(out) as o:
        written = np.asarray(o.convert("RGB"), dtype=np.int16)
    return int(np.abs(written - np.asarray(load_photo(src).rgb, dtype=np.int16)).max())


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pdbench: error: "), err
    return err


# ---------------------------------------------------------------- never write over an input

def test_single_photo_never_overwrites_its_input(tmp_path, capsys):
    src = _photo(tmp_path / "me.png")
    before = stamp(src)
    os.symlink(src, tmp_path / "link.png")
    os.link(src, tmp_path / "hard.png")
    (tmp_path / "sub").mkdir()
    for out in (src, tmp_path / "sub" / ".." / "me.png", tmp_path / "link.png", tmp_path / "hard.png"):
        assert main(["protect", str(src), "-o", str(out), "--steps", "1", "--no-progress"]) == 2
        assert "is the input photo itself" in _one_line(capsys)
        assert stamp(src) == before
    assert main(["protect", str(tmp_path / "link.png"), "-o", str(src), "--no-progress"]) == 2  # input by link
    assert "through a link" in _one_line(capsys)
    assert main(["protect", str(src), "-o", str(tmp_path / "sub"), "--no-progress"]) == 2
    assert "is a folder" in _one_line(capsys)
    assert stamp(src) == before and not list(tmp_path.glob(".*.part"))


def test_folder_never_overwrites_an_input_through_a_hard_link(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    out.mkdir()
    src = _photo(photos / "a.png")
    os.link(src, out / "a.png")  # the output a.png would be the input itself
    before = stamp(src)
    assert main(["protect", str(photos), "-o", str(out), "--steps", "1", "--no-progress"]) == 2
    assert "is the input photo" in _one_line(capsys) and stamp(src) == before


def test_output_folder_that_is_a_file_or_unwritable_fails_before_any_work(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    (tmp_path / "taken").write_text("a file")
    assert main(["protect", str(photos), "-o", str(tmp_path / "taken"), "--no-progress"]) == 2
    assert "is a file, not a folder" in _one_line(capsys)
    assert main(["protect", str(photos), "-o", str(tmp_path / "taken" / "sub"), "--no-progress"]) == 2
    assert "is not writable" in _one_line(capsys)
    assert main(["protect", str(photos / "a.png"), "-o", str(tmp_path / "taken" / "p.png"), "--no-progress"]) == 2
    assert "output folder" in (err := _one_line(capsys)) and "taken is a file" in err
    assert (tmp_path / "taken").read_text() == "a file"


def test_bad_device_is_one_line(tmp_path, capsys):
    src = _photo(tmp_path / "a.png")
    for mode_args in ([str(src), "-o", str(tmp_path / "o.png")], [str(tmp_path), "-o", str(tmp_path.parent / "o_dir")]):
        assert main(["protect", *mode_args, "--device", "foo", "--no-progress"]) == 2
        assert "device 'foo' is not a device; use auto, cpu, cuda or cuda:N" in _one_line(capsys)
    assert not (tmp_path / "o.png").exists()


# ---------------------------------------------------------------- formats, orientation, honesty of the report

def test_16bit_photo_is_published_as_its_8bit_view_and_the_report_is_true(tmp_path, tiny, capsys):
    grey = (np.asarray(Image.fromarray(face_like(89, 109)).convert("L"), dtype=np.uint16) * 257 + 100)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    rep = protect_photo(str(tmp_path / "g16.png"), str(tmp_path / "out.png"), models=tiny, face_check=False)
    with Image.open(tmp_path / "out.png") as o:
        out = np.asarray(o.convert("RGB"), dtype=np.int16)
    view = np.floor(grey / 257 + 0.5).astype(np.int16)
    assert abs(out.mean() - view.mean()) < 1  # not "almost white" (Pillow's own conversion: all 255)
    assert _max_change(rep) == int(np.abs(out - view[..., None]).max()) <= 6
    assert "16-bit greyscale: protected its 8-bit view" in rep


@pytest.mark.parametrize("orientation", range(1, 9))
def test_phone_photo_is_protected_and_saved_upright(tmp_path, tiny, orientation):
    upright = Image.fromarray(face_like(64, 48))
    stored = upright if orientation == 1 else upright.transpose(INVERSE[orientation])
    (tmp_path / "phone.png").write_bytes(encode(stored, "PNG", orientation))
    rep = protect_photo(str(tmp_path / "phone.png"), str(tmp_path / "out.png"), models=tiny, face_check=False)
    with Image.open(tmp_path / "out.png") as o:
        assert o.size == (64, 48) and o.getexif().get(0x0112) in (None, 1)
        diff = np.abs(np.asarray(o.convert("RGB"), dtype=np.int16) - np.asarray(upright, dtype=np.int16))
    assert diff.max() == _max_change(rep) <= 6  # upright: only the perturbation differs


def test_alpha_is_kept_and_reported(tmp_path, tiny):
    im = image_in_mode("RGBA", 60, 50)
    im.save(tmp_path / "a.png")
    rep = protect_photo(str(tmp_path / "a.png"), str(tmp_path / "out.png"), models=tiny, face_check=False)
    with Image.open(tmp_path / "out.png") as o:
        assert o.mode == "RGBA" and np.array_equal(np.asarray(o)[..., 3], np.asarray(im)[..., 3])
    assert "alpha channel kept unchanged" in rep
    rep = protect_photo(str(tmp_path / "a.png"), str(tmp_path / "out.bmp"), models=tiny, face_check=False)
    assert "alpha channel dropped" in rep


def test_full_resolution_figures_are_measured_on_the_written_file(tmp_path, capsys):
    """PSNR and SSIM printed by `protect` equal an independent computation on the file read back."""
    from skimage.metrics import structural_similarity

    src = _photo(tmp_path / "a.png", 200, 160)
    assert main(["protect", str(src), "-o", str(tmp_path / "o.png"), "--steps", "2", "--no-progress"]) == 0
    rep = capsys.readouterr().out
    a = np.asarray(Image.open(src).convert("RGB"), dtype=np.float64)
    b = np.asarray(Image.open(tmp_path / "o.png").convert("RGB"), dtype=np.float64)
    psnr = 10 * np.log10(255**2 / ((a - b) ** 2).mean())
    ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=-1)
    assert f"max {int(np.abs(a - b).max())} grey levels" in rep
    assert f"PSNR {psnr:.1f} dB" in rep and f"SSIM {ssim:.4f}" in rep, rep
    assert "optimised on the 160x160 square the generator sees, through its resize to 64x64 (native mode)" in rep


# ---------------------------------------------------------------- warnings where protection means little

def test_warnings_for_steps0_tiny_and_faceless_photos(tmp_path, capsys):
    flat = tmp_path / "wall.png"
    Image.new("RGB", (96, 96), (120, 130, 140)).save(flat)
    assert main(["protect", str(flat), "-o", str(tmp_path / "o.png"), "--steps", "0", "--no-progress"]) == 0
    rep = capsys.readouterr().out
    assert "warning: --steps 0" in rep and "warning: no face found (RetinaFace)" in rep
    small = _photo(tmp_path / "small.png", 40, 40)
    assert main(["protect", str(small), "-o", str(tmp_path / "s.png"), "--steps", "1", "--no-progress"]) == 0
    assert "the square the generator sees is 40 px, smaller than the generator's 64 px input" in capsys.readouterr().out
    from conftest import require_asset

    face = sorted(require_asset("codeformer-cropped").iterdir())[0]
    assert main(["protect", str(face), "-o", str(tmp_path / "f.png"), "--steps", "1", "--no-progress"]) == 0
    assert "\nwarning:" not in capsys.readouterr().out  # a real face, large enough: no warning


def test_face_check_is_skipped_with_a_note_without_weights(tmp_path, tiny, monkeypatch):
    from pdbench.faces.detectors import shared_detector

    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path / "empty"))
    shared_detector.cache_clear()
    try:
        rep = protect_photo(str(_photo(tmp_path / "a.png")), str(tmp_path / "o.png"), models=tiny)
    finally:
        shared_detector.cache_clear()
    assert "face check skipped: the RetinaFace weights are not installed" in rep


# ---------------------------------------------------------------- folders: resume honestly, clean up, show progress

def test_folder_resume_refuses_other_settings_and_redoes_them_on_request(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for i in range(3):
        _photo(photos / f"{i}.png", seed=i)
    base = ["protect", str(photos), "-o", str(out), "--steps", "1", "--no-progress", "--no-face-check"]
    assert main(base) == 0
    manifest = (out / MANIFEST).read_text()
    assert '"eps": 0.05' in manifest and '"defense": "pgd"' in manifest and '"0.png"' in manifest
    first = stamp(out / "0.png")
    assert main(base) == 0
    assert "3 already protected with the same settings were kept" in capsys.readouterr().out
    assert stamp(out / "0.png") == first
    assert main(base + ["--eps", "0.03"]) == 2
    err = _one_line(capsys)
    assert "eps 0.05 there, 0.03 now" in err and "--overwrite-changed" in err and "another -o folder" in err
    assert main(base + ["--defense", "fgsm"]) == 2
    assert "defense 'pgd' there, 'fgsm' now" in _one_line(capsys)
    assert main(base + ["--format", "webp"]) == 2
    assert "format '.png' there, '.webp' now" in _one_line(capsys)
    assert stamp(out / "0.png") == first  # refused: nothing touched
    assert main(base + ["--eps", "0.03", "--overwrite-changed"]) == 0
    assert "protected 3 photo(s)" in capsys.readouterr().out
    assert '"eps": 0.03' in (out / MANIFEST).read_text()
    redone = np.abs(np.asarray(Image.open(out / "0.png"), dtype=np.int16) - np.asarray(Image.open(photos / "0.png"), dtype=np.int16))
    assert redone.max() <= 3  # eps 0.03 = 3 grey levels: really redone
    # outputs without a manifest (another tool, an older pdbench): refused, not silently kept
    (out / MANIFEST).unlink()
    assert main(base) == 2
    assert f"no {MANIFEST} says how they were made" in _one_line(capsys)


def test_killed_save_leaves_no_part_file_and_hidden_files_are_listed(tmp_path, tiny):
    photos, out = tmp_path / "photos", tmp_path / "out"
    (photos / ".cache").mkdir(parents=True)
    _photo(photos / "a.png")
    _photo(photos / ".hidden.png")
    _photo(photos / ".cache" / "b.png")
    out.mkdir()
    (out / ".a.png.k3x_9zqa.part").write_bytes(b"half a png")  # what a killed atomic save leaves
    (out / "notes.txt").write_text("mine")
    rep = protect_folder(str(photos), str(out), models=tiny, progress=False, face_check=False)
    assert "removed 1 unfinished file(s) left by an interrupted run" in rep
    assert "skipped 2 hidden file(s): .cache/b.png, .hidden.png" in rep
    assert not list(out.rglob("*.part")) and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "notes.txt", MANIFEST]


def test_truncated_and_bomb_files_in_a_folder(tmp_path, tiny):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    _photo(photos / "good.jpg", quality=95)
    data = (photos / "good.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(data[: len(data) // 2])
    (photos / "bomb.png").write_bytes(png_header(40_000, 40_000))
    with pytest.raises(InputError) as e:
        protect_folder(str(photos), str(out), models=tiny, progress=False, face_check=False)
    assert "cut.jpg: not a readable image" in str(e.value) and "bomb.png: 40000x40000" in str(e.value)
    assert not list(out.glob("*.png"))  # refused before any work
    rep = protect_folder(str(photos), str(out), models=tiny, progress=False, face_check=False, skip_bad=True)
    assert "protected 1 photo(s)" in rep and "left out 2 file(s)" in rep and "--max-pixels 1600000000" in rep


def test_progress_names_what_runs_on_stderr(tmp_path, tiny, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        _photo(photos / f"{i}.png", seed=i)
    protect_folder(str(photos), str(tmp_path / "a"), models=tiny, defense="pgd", generator="stargan",
                   batch_size=2, progress=True, face_check=False)
    err = capsys.readouterr().err
    assert "protecting 3 photo(s) with pgd (1 steps, eps 0.05 = 6 grey levels) against stargan (32 px) on cpu" in err
    assert "pgd vs stargan" in err and ("3/3" in err or "2/2" in err)  # per photo, or per step of each batch
    protect_folder(str(photos), str(tmp_path / "b"), models=tiny, progress=False, face_check=False)
    assert capsys.readouterr().err == ""


class _Stepping:
    """A defense with the optional per-step ``progress`` hook (as the defenses will have it)."""

    def __init__(self, d):
        self.d, self.eps, self.steps = d, d.eps, d.steps

    def config(self):
        return self.d.config()

    def protect(self, x, target, keys=None, progress=None):
        out = self.d.protect(x, target, keys=keys)
        for s in range(self.steps):
            progress(s + 1, self.steps)
        return out


def test_progress_per_defense_step_when_the_defense_offers_it(tmp_path, tiny, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        _photo(photos / f"{i}.png", seed=i)
    G, _ = tiny
    protect_folder(str(photos), str(tmp_path / "a"), models=(G, _Stepping(get_defense("pgd", steps=2))),
                   batch_size=2, progress=True, face_check=False)
    err = capsys.readouterr().err
    assert "batch 2/2" in err and "4/4" in err and "step" in err  # 2 batches x 2 steps


def test_help_gives_defaults_and_units():
    from pdbench.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    text = " ".join(sub["protect"].format_help().split())
    assert "[-1, 1] scale" in text and "grey levels" in text and "(default: 32)" in text and "(default: auto)" in text
    assert "--max-pixels" in text and "89478485" in text and "--overwrite-changed" in text
    assert "(default: results/quickstart)" in " ".join(sub["quickstart"].format_help().split())
    assert "(default: the config's)" in " ".join(sub["run"].format_help().split())


# ---------------------------------------------------------------- property test: generated malformed and unusual photos

FORMATS = ["PNG", "TIFF", "JPEG", "WEBP", "BMP", "GIF"]
SUFFIX = {"PNG": ".png", "TIFF": ".tif", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}

case = st.fixed_dictionaries({
    "kind": st.sampled_from(["image"] * 6 + ["truncated", "zero", "text", "huge_header", "big_header", "garbage"]),
    "mode": st.sampled_from(MODES),
    "fmt": st.sampled_from(FORMATS),
    "w": st.one_of(st.integers(1, 4), st.integers(5, 90)),
    "h": st.one_of(st.integers(1, 4), st.integers(5, 90)),
    "orientation": st.integers(1, 8),
    "cut": st.floats(0.05, 0.95),
    "seed": st.integers(0, 3),
})


def _write_case(c: dict, folder: Path, stem: str = "photo") -> Path:
    path = folder / (stem + SUFFIX[c["fmt"]])
    if c["kind"] == "zero":
        path.write_bytes(b"")
    elif c["kind"] == "text":
        path.write_text("this is not a picture\n" * 3)
    elif c["kind"] == "huge_header":
        path = path.with_suffix(".png")
        path.write_bytes(png_header(200_000, 150_000))
    elif c["kind"] == "big_header":  # within the limit, but no pixel data behind it
        path = path.with_suffix(".png")
        path.write_bytes(png_header(3000, 2000))
    elif c["kind"] == "garbage":
        path.write_bytes(np.random.default_rng(c["seed"]).integers(0, 256, 300, dtype=np.uint8).tobytes())
    else:
        data = encode(image_in_mode(c["mode"], c["w"], c["h"], c["seed"]), c["fmt"], c["orientation"])
        if c["kind"] == "truncated":
            data = data[: max(1, int(len(data) * c["cut"]))]
        path.write_bytes(data)
    return path


def _check_outcome(run, inputs: list[Path], outputs: Path):
    before = {p: stamp(p) for p in inputs}
    try:
        report = run()
    except PdbenchError as e:  # refused: one line, and nothing half-written
        assert "\n" not in str(e) and str(e), repr(e)
        report = None
    for p in inputs:
        assert stamp(p) == before[p], f"input {p.name} changed"
    assert not [p for p in outputs.rglob("*.part")], "a .part file was left behind"
    return report


@settings(max_examples=110, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(c=case, face_check=st.booleans())
def test_generated_photos_give_a_true_report_or_one_line(tiny, c, face_check):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = _write_case(c, tmp)
        out = tmp / "out" / "protected.png"
        report = _check_outcome(lambda: protect_photo(str(src), str(out), models=tiny, face_check=face_check,
                                                      max_pixels=10_000_000), [src], tmp)
        if report is None:
            assert not out.exists()
            return
        assert _max_change(report) == _measured(src, out) <= 6, report
        assert c["kind"] == "image" and min(c["w"], c["h"]) >= 16


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(cases=st.lists(case, min_size=1, max_size=5), skip_bad=st.booleans())
def test_generated_folders_give_a_true_report_or_one_line(tiny, cases, skip_bad):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos, out = tmp / "photos", tmp / "out"
        photos.mkdir()
        inputs = [_write_case(c, photos, f"p{i}") for i, c in enumerate(cases)]
        report = _check_outcome(lambda: protect_folder(str(photos), str(out), models=tiny, progress=False,
                                                       skip_bad=skip_bad, face_check=False, batch_size=2,
                                                       max_pixels=10_000_000), inputs, tmp)
        if report is None:
            assert not list(out.glob("*.png"))
            return
        written = sorted(out.glob("p*.png"))
        assert f"protected {len(written)} photo(s)" in report
        measured = [_measured(photos / next(p.name for p in inputs if p.stem == w.stem), w) for w in written]
        if written:
            assert _max_change(report) == max(measured) <= 6, report
