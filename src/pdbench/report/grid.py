"""Image grids a person can read: for a few images, the photo, its deepfake, and per defense the
protected photo and the deepfake made from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..io import save_png
from ..tensors import to_uint8


def defense_grid(x: torch.Tensor, fake_clean: torch.Tensor, protected: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 dest: str | Path, pad: int = 2) -> Path:
    """Rows: images. Columns: x, G(x), then for each defense x_adv and G(x_adv). Saves a PNG."""
    cols = [x, fake_clean]
    for x_adv, fake_adv in protected.values():
        cols += [x_adv, fake_adv]
    tiles = [to_uint8(c.cpu()) for c in cols]  # each (N, H, W, 3)
    n, h, w, _ = tiles[0].shape
    grid = np.full((n * (h + pad) + pad, len(tiles) * (w + pad) + pad, 3), 255, np.uint8)
    for j, t in enumerate(tiles):
        for i in range(n):
            y0, x0 = pad + i * (h + pad), pad + j * (w + pad)
            grid[y0:y0 + h, x0:x0 + w] = t[i]
    save_png(dest, grid)
    return Path(dest)
