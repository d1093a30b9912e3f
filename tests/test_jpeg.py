"""JPEG goes through libjpeg (Pillow), not an approximation."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from pdbench.errors import InputError, UnknownNameError
from pdbench.tensors import from_uint8, to_uint8
from pdbench.transforms import parse_setting


def test_jpeg_equals_a_real_codec_roundtrip():
    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 255, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=75)
    ref = np.asarray(Image.open(buf).convert("RGB"))
    out = parse_setting({"name": "jpeg", "quality": 75})(from_uint8(img))
    assert np.array_equal(to_uint8(out)[0], ref)


def test_quality_orders_the_error():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g) * 2 - 1, size=64, mode="bilinear")
    err = [float((parse_setting(f"jpeg:quality={q}")(x) - x).abs().mean()) for q in (10, 50, 75, 95)]
    assert err == sorted(err, reverse=True) and err[0] > 2 * err[-1]


def test_setting_errors():
    with pytest.raises(InputError, match="1..100"):
        parse_setting({"name": "jpeg", "quality": 0})
    with pytest.raises(UnknownNameError, match="unknown transform 'jpg'"):
        parse_setting("jpg")
    assert parse_setting("resize:factor=0.5").label() == "resize(factor=0.5)"
