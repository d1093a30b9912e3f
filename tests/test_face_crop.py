"""The attacker's data preparation (pdbench.faces.crop): real RetinaFace on real CelebA photos; a photo
without a face is dropped, every kept face becomes a square crop of the training resolution."""

import numpy as np
import pytest
from PIL import Image

from pdbench.errors import InputError
from pdbench.faces.crop import SCALE, crop_faces, square_around


@pytest.fixture(scope="module")
def photos(celeba_dir):
    """Three held-out CelebA photos as published at 64 px and one at its own 89 × 109 px."""
    from pdbench.data import FaceFolder
    from pdbench.data.folder import load_photo

    ds = FaceFolder(celeba_dir / "images", 64)
    _, test = ds.split(1000)
    idx = ds.select(3, seed=2, pool=test)
    return list(ds.load_uint8(idx)), np.asarray(load_photo(ds.files[idx[0]]).rgb)


def test_square_around_is_inside_the_photo():
    assert square_around((20, 30, 44, 62), 64, 64, 1.5) == (8, 16, 56, 64)  # side 48, pushed up from the bottom
    assert square_around((20, 24, 44, 56), 64, 64, 3.0) == (0, 0, 64, 64)  # capped at the photo
    assert square_around((-10, -5, 10, 15), 89, 109, 1.0) == (0, 0, 20, 20)  # a box over the corner
    assert square_around((30, 30, 31, 31), 64, 64, 0.1) == (30, 30, 31, 31)  # at least one pixel
    with pytest.raises(InputError, match="scale"):
        square_around((0, 0, 10, 10), 64, 64, 0.0)


def test_a_miss_is_dropped_and_crops_have_the_training_size(photos):
    faces64, face89 = photos
    blank = np.full((64, 64, 3), 128, np.uint8)  # no face: RetinaFace finds nothing on a flat grey photo
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = crop_faces([faces64[0], blank, faces64[1], face89, noise, faces64[2]], "retinaface", size=64)
    assert [c is None for c in out] == [False, True, False, False, True, False]
    for c in (out[0], out[2], out[3], out[5]):
        assert c.image.shape == (64, 64, 3) and c.image.dtype == np.uint8
        assert c.score >= 0.6
        left, top, right, bottom = c.square
        assert right - left == bottom - top  # square
    # a clean 64 px CelebA photo is framed almost as a whole (SCALE was measured for that), unresampled
    for c, x in ((out[0], faces64[0]), (out[2], faces64[1]), (out[5], faces64[2])):
        side = c.square[2] - c.square[0]
        assert side >= 48  # at least 3/4 of the photo
        if side == 64:
            assert np.array_equal(c.image, x)
    # the 89 px photo's square lies inside it and is resized to 64 with Pillow's bilinear
    sq = out[3].square
    assert 0 <= sq[0] and 0 <= sq[1] and sq[2] <= 89 and sq[3] <= 109
    ref = np.asarray(Image.fromarray(face89).crop(sq).resize((64, 64), Image.BILINEAR))
    assert np.array_equal(out[3].image, ref)
    # another training size
    small = crop_faces([faces64[0]], "retinaface", size=32)[0]
    assert small.image.shape == (32, 32, 3)
    assert SCALE == 1.6


def test_bad_input_is_one_line(photos):
    with pytest.raises(InputError, match="8-bit RGB") as e:
        crop_faces([photos[0][0].astype(np.float32)])
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="size"):
        crop_faces([photos[0][0]], size=0)
