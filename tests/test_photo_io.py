"""Photo loading: every Pillow mode to a correct 8-bit RGB view (or one-line refusal), EXIF orientation,
alpha and colour profile carried to the output, truncated and bomb-sized files, the folder pre-scan."""

import numpy as np
import pytest
from PIL import Image, ImageCms
from photo_cases import INVERSE, MODES, encode, face_like, image_in_mode, png_header

from pdbench.data.folder import MAX_PIXELS, FaceFolder, image_size, load_photo, to_photo
from pdbench.errors import InputError
from pdbench.protect import full_res_change, save_photo


def _grey(a):
    return np.asarray(a, dtype=np.int16)


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path):
    """Pillow's own I;16 -> RGB clips everything over 255 to white; the 8-bit view is value/257."""
    v = np.array([[0, 257, 1000, 30000], [32767, 40000, 65278, 65535]], dtype=np.uint16)
    for suffix in (".png", ".tif"):
        Image.fromarray(v).save(tmp_path / f"g16{suffix}")
        photo = load_photo(tmp_path / f"g16{suffix}")
        got = np.asarray(photo.rgb)
        assert photo.mode.startswith("I;16") and got.shape == (2, 4, 3)
        assert np.array_equal(got[..., 0], np.floor(v / 257 + 0.5).astype(np.uint8))  # 0 1 4 117 / 127 156 254 255
        assert np.array_equal(got[..., 0], got[..., 2])
        assert any("16-bit" in n for n in photo.notes)
        assert np.asarray(Image.open(tmp_path / f"g16{suffix}").convert("RGB")).min() == 0  # Pillow's: 255 from 257 up
        assert (np.asarray(Image.open(tmp_path / f"g16{suffix}").convert("RGB"))[..., 0] == 255).sum() == 7


def test_int32_and_float_images(tmp_path):
    Image.fromarray(np.array([[0, 65535]], dtype=np.int32), "I").save(tmp_path / "i.tif")
    assert np.asarray(load_photo(tmp_path / "i.tif").rgb)[0, :, 0].tolist() == [0, 255]
    Image.fromarray(np.array([[-5, 70000]], dtype=np.int32), "I").save(tmp_path / "wide.tif")
    with pytest.raises(InputError, match=r"values -5\.\.70000, outside 0\.\.65535"):
        load_photo(tmp_path / "wide.tif")
    Image.fromarray(np.zeros((3, 3), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(InputError, match="floating-point") as e:
        load_photo(tmp_path / "f.tif")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_the_right_rgb_view_or_one_line(mode):
    """Each mode's 8-bit RGB view matches the photo it was made from (within the mode's own loss)."""
    im = image_in_mode(mode, 24, 16)
    ref = _grey(Image.fromarray(face_like(24, 16)).convert("RGB"))
    if mode == "F":
        with pytest.raises(InputError):
            to_photo(im)
        return
    photo = to_photo(im)
    got = _grey(photo.rgb)
    assert photo.rgb.mode == "RGB" and got.shape == (16, 24, 3)
    # premultiplied alpha keeps little colour where it is nearly transparent: compare where alpha >= 1/2
    opaque = np.ones((16, 24), bool) if mode not in ("La", "RGBa") else np.asarray(im)[..., -1] >= 128
    if mode in ("RGB", "RGBA", "RGBX", "RGBa", "YCbCr", "HSV", "LAB", "P", "PA"):
        tol = {"RGB": 0, "RGBA": 0, "RGBX": 0, "RGBa": 2, "YCbCr": 3, "HSV": 3, "LAB": 8, "P": 40, "PA": 40}[mode]
        assert np.abs(got - ref)[opaque].max() <= tol, (mode, np.abs(got - ref)[opaque].max())
    elif mode in ("L", "LA", "La", "I", "I;16", "I;16B"):
        grey = _grey(Image.fromarray(face_like(24, 16)).convert("L"))
        assert np.abs(got[..., 0] - grey)[opaque].max() <= (2 if mode == "La" else 0), mode
    elif mode == "1":
        assert set(np.unique(got)) <= {0, 255}
    elif mode == "CMYK":
        assert np.abs(got - ref).max() <= 1  # Pillow's CMYK is the naive inverse of RGB
    if mode in ("RGBA", "LA", "La", "PA", "RGBa"):
        assert photo.alpha is not None and photo.alpha.mode == "L"
        a = _grey(photo.alpha)
        assert 255 - a.max() <= (16 if mode == "PA" else 0) and a.min() <= (16 if mode == "PA" else 0)  # PA: palette
    else:
        assert photo.alpha is None


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_is_applied(tmp_path, orientation, fmt):
    """A phone photo stored sideways with its orientation tag loads upright (all eight orientations)."""
    upright = Image.fromarray(face_like(40, 24))  # landscape: 40 wide, 24 high
    stored = upright if orientation == 1 else upright.transpose(INVERSE[orientation])
    path = tmp_path / f"o{orientation}.{fmt.lower()}"
    path.write_bytes(encode(stored, fmt, orientation))
    photo = load_photo(path)
    assert photo.size == (40, 24)
    # exact for PNG; JPEG's loss on this texture is ~6 levels on average, a wrong turn or flip ~40
    assert np.abs(_grey(photo.rgb) - _grey(upright)).mean() <= (0 if fmt == "PNG" else 10)
    assert (orientation != 1) == any("orientation" in n for n in photo.notes)
    # the saved copy is upright and carries no orientation tag that would turn it again
    save_photo(np.asarray(photo.rgb), tmp_path / "out.png", photo)
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (40, 24) and out.getexif().get(0x0112) in (None, 1)


def test_alpha_and_icc_profile_survive_the_save(tmp_path):
    rgba = Image.fromarray(face_like(32, 20)).convert("RGBA")
    alpha = np.tile(np.arange(32, dtype=np.uint8) * 8, (20, 1))
    rgba.putalpha(Image.fromarray(alpha))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgba.save(tmp_path / "a.png", icc_profile=icc)
    photo = load_photo(tmp_path / "a.png")
    assert photo.icc == icc
    arr = np.asarray(photo.rgb).copy()
    arr[5:10, 5:10] += 3  # a change, like a perturbation
    for suffix in (".png", ".webp", ".tif"):
        notes = save_photo(arr, tmp_path / f"out{suffix}", photo)
        with Image.open(tmp_path / f"out{suffix}") as out:
            assert out.mode == "RGBA", suffix
            assert np.array_equal(np.asarray(out)[..., 3], alpha), suffix
            assert np.array_equal(np.asarray(out)[..., :3], arr), suffix  # lossless, also under transparent pixels
            assert out.info.get("icc_profile") == icc, suffix
        assert "alpha channel kept unchanged" in notes and "ICC colour profile kept" in notes
    notes = save_photo(arr, tmp_path / "out.bmp", photo)
    assert any("alpha channel dropped" in n for n in notes) and any("profile dropped" in n for n in notes)
    # a greyscale profile does not describe the RGB output: not copied
    grey_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.new("L", (20, 20), 100).save(tmp_path / "g.png", icc_profile=grey_icc)
    assert load_photo(tmp_path / "g.png").icc is None


def test_truncated_zero_byte_and_fake_files_are_one_line(tmp_path):
    Image.fromarray(face_like(120, 100)).save(tmp_path / "whole.jpg", quality=95)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert image_size(tmp_path / "cut.jpg") == (120, 100)  # the header alone looks fine
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, not a picture")
    for name in ("cut.jpg", "zero.png", "text.png"):
        with pytest.raises(InputError) as e:
            load_photo(tmp_path / name)
        assert f"{name}: not a readable image" in str(e.value) and "\n" not in str(e.value)


def test_decompression_bomb_is_refused_from_the_header_with_the_flag(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_header(100_000, 100_000))
    with pytest.raises(InputError) as e:
        load_photo(tmp_path / "bomb.png")
    msg = str(e.value)
    assert "100000x100000 px = 10000.0 megapixels" in msg and "--max-pixels 10000000000" in msg and "\n" not in msg
    Image.fromarray(face_like(30, 20)).save(tmp_path / "small.png")
    with pytest.raises(InputError, match="--max-pixels 600"):
        load_photo(tmp_path / "small.png", max_pixels=599)
    assert load_photo(tmp_path / "small.png", max_pixels=600).size == (30, 20)
    assert MAX_PIXELS == Image.MAX_IMAGE_PIXELS  # the limit is Pillow's, and Pillow's is left as it was


def test_folder_prescan_decodes_and_lists_hidden_files(tmp_path):
    d = tmp_path / "faces"
    (d / ".thumbs").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(face_like(89, 109, i)).save(d / f"{i}.jpg")
    data = (d / "0.jpg").read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    (d / "bomb.png").write_bytes(png_header(50_000, 50_000))
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    Image.fromarray(face_like(89, 109)).save(d / ".thumbs" / "t.jpg")
    headers_only = FaceFolder(d, 64, strict=False)
    assert sorted(p.name for p in headers_only.files) == ["0.jpg", "1.jpg", "cut.jpg"]  # a header-only scan misses it
    ds = FaceFolder(d, 64, strict=False, decode=True)
    assert sorted(p.name for p in ds.files) == ["0.jpg", "1.jpg"]
    assert any(p.startswith("cut.jpg: not a readable image") for p in ds.problems)
    assert any(p.startswith("bomb.png: 50000x50000 px") and "--max-pixels" in p for p in ds.problems)
    assert sorted(ds.hidden) == [".DS_Store", ".thumbs/t.jpg"]
    with pytest.raises(InputError) as e:
        FaceFolder(d, 64, decode=True)
    assert "cut.jpg" in str(e.value) and "bomb.png" in str(e.value) and "\n" not in str(e.value)


def test_full_resolution_change_is_exact_in_strips():
    """PSNR and SSIM computed in strips equal one whole-image computation."""
    import torch

    from pdbench.metrics.functional import ssim
    from pdbench.tensors import from_uint8, to_unit

    a = face_like(70, 53)
    rng = np.random.default_rng(1)
    b = np.clip(a.astype(np.int16) + rng.integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
    whole = full_res_change(a, b, rows=10_000)
    strips = full_res_change(a, b, rows=7)
    assert whole["linf"] == strips["linf"] == 6
    assert whole["psnr"] == pytest.approx(strips["psnr"], abs=1e-9)
    assert whole["ssim"] == pytest.approx(strips["ssim"], abs=1e-6)
    assert whole["ssim"] == pytest.approx(float(ssim(to_unit(from_uint8(a)), to_unit(from_uint8(b)), data_range=1.0)[0]), abs=1e-6)
    mse = ((a.astype(float) - b) ** 2).mean()
    assert whole["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-9)
    assert full_res_change(a, a)["psnr"] == 100.0 and full_res_change(a, a)["ssim"] == pytest.approx(1.0)
    assert torch.is_tensor(from_uint8(a))
