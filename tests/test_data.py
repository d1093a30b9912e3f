"""FaceFolder: loading, preprocessing, attribute files and clear errors for bad input."""

import numpy as np
import pytest
import torch
from PIL import Image

from pdbench.data import FaceFolder, read_attr_file
from pdbench.errors import InputError


def _folder(tmp_path, n=3, size=(89, 109)):
    d = tmp_path / "faces"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(d / f"{i:06d}.jpg")
    return d


def test_bad_files_are_named(tmp_path):
    d = _folder(tmp_path)
    (d / "notes.docx").write_bytes(b"hello")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    Image.new("RGB", (10, 12)).save(d / "tiny.png")
    with pytest.raises(InputError) as e:
        FaceFolder(d, 64)
    msg = str(e.value)
    assert "3 bad file(s)" in msg and "notes.docx: not an image file" in msg
    assert "broken.jpg: not a readable image" in msg and "tiny.png: too small (10x12" in msg
    ds = FaceFolder(d, 64, strict=False)
    assert len(ds) == 3 and len(ds.problems) == 3


def test_stargan_preprocessing_centre_crop_then_resize(tmp_path):
    d = tmp_path / "one"
    d.mkdir()
    img = np.zeros((109, 89, 3), np.uint8)
    img[:10] = 255  # rows above the centre 89×89 crop: cropped away
    Image.fromarray(img).save(d / "a.png")
    x = FaceFolder(d, 64).load([0])
    assert x.shape == (1, 3, 64, 64) and float(x.max()) == -1.0


def test_celeba_attributes_and_split(celeba_dir):
    names, table = read_attr_file(celeba_dir / "list_attr_celeba_first20k.txt")
    assert len(names) == 40 and names[8] == "Black_Hair" and table["000001.jpg"][20] == 0  # 000001 is female
    ds = FaceFolder(celeba_dir / "images", 64, attr_file=celeba_dir / "list_attr_celeba_first20k.txt", check_files=False)
    train, test = ds.split(1000)
    assert len(train) == 9000 and ds.names(test[:1]) == ["009001.jpg"]
    a = ds.select(8, seed=3, pool=test)
    assert a == ds.select(8, seed=3, pool=test) and a != ds.select(8, seed=4, pool=test)
    lab = ds.labels(("Black_Hair", "Male"), [0])
    assert lab.tolist() == [[0.0, 0.0]]


def test_converted_copies_find_their_rows_by_stem(celeba_dir, tmp_path):
    """A PNG copy of 000002.jpg (e.g. from `pdbench protect DIR`) gets 000002.jpg's attributes."""
    from PIL import Image

    attrs = celeba_dir / "list_attr_celeba_first20k.txt"
    for name in ("000002.jpg", "000003.jpg"):
        Image.open(celeba_dir / "images" / name).save(tmp_path / name.replace(".jpg", ".png"))
    ds = FaceFolder(tmp_path, 64, attr_file=attrs)
    ref = FaceFolder(celeba_dir / "images", 64, attr_file=attrs, check_files=False)
    cols = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    assert torch.equal(ds.labels(cols), ref.labels(cols, [1, 2]))
    Image.open(celeba_dir / "images" / "000004.jpg").save(tmp_path / "zz.png")
    with pytest.raises(InputError, match="have no row"):
        FaceFolder(tmp_path, 64, attr_file=attrs)


def test_attr_file_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_attr_file(tmp_path / "nope.txt")
    d = _folder(tmp_path, n=1)
    bad = tmp_path / "attrs.txt"
    bad.write_text("1\nA B\nother.jpg 1 -1\n")
    with pytest.raises(InputError, match="have no row"):
        FaceFolder(d, 64, attr_file=bad)
