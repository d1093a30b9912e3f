import numpy as np
import pytest
import torch

from pdbench.errors import InputError
from pdbench.tensors import check_images, from_uint8, from_unit, to_uint8


def test_uint8_roundtrip_is_exact():
    img = np.random.default_rng(0).integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    x = from_uint8(img)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert np.array_equal(to_uint8(x), img)
    assert from_uint8(np.zeros((4, 4, 3), np.uint8)).min() == -1.0
    assert from_uint8(np.full((4, 4, 3), 255, np.uint8)).max() == 1.0


@pytest.mark.parametrize("bad, msg", [
    (torch.zeros(3, 8, 8), "expected shape (N, 3, H, W)"),
    (torch.zeros(1, 8, 8, 3), "expected shape (N, 3, H, W)"),
    (torch.full((1, 3, 4, 4), 200.0), "looks like [0, 255]"),
    (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "from_uint8"),
])
def test_wrong_input_says_what_it_got(bad, msg):
    with pytest.raises(InputError) as e:
        check_images(bad)
    assert msg in str(e.value)


def test_from_unit_checks_range():
    assert torch.equal(from_unit(torch.ones(1, 3, 2, 2)), torch.ones(1, 3, 2, 2))
    with pytest.raises(InputError, match=r"expected \[0.0, 1.0\]"):
        from_unit(-torch.ones(1, 3, 2, 2))
