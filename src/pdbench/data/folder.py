"""A dataset over a folder of face photos.

Preprocessing is the generators' official one: a centre crop to a square of the short side (178 px on
CelebA's 178×218 aligned images, 89 px on the 89×109 copies; ``crop`` < 1 takes a tighter square, as
AttGAN's 170 of 178), then a bilinear, antialiased resize to the generator's resolution. Files that are not images, cannot be decoded, or are too small are reported
by name, never dropped silently.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..tensors import from_uint8

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def read_attr_file(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Parse CelebA's ``list_attr_celeba.txt`` (count line, header line, then ``name ±1 …``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"attribute file {path} does not exist; pass CelebA's list_attr_celeba.txt or omit --attrs")
    with open(path) as f:
        first = f.readline().split()
        header = f.readline().split() if len(first) == 1 and first[0].isdigit() else first
        table = {}
        for line in f:
            parts = line.split()
            if len(parts) != len(header) + 1:
                continue
            table[parts[0]] = (np.array(parts[1:], dtype=np.int8) > 0).astype(np.int8)
    if not table:
        raise InputError(f"attribute file {path} has no rows in CelebA format (name followed by {len(header)} values of ±1)")
    return header, table


def _load_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"{path}: not a readable image ({type(e).__name__}); remove it or convert it to JPEG/PNG") from e


def preprocess(img: Image.Image, resolution: int, crop: float = 1.0) -> np.ndarray:
    """Centre crop to ``crop`` × the short side, resize to resolution×resolution; returns uint8 HWC."""
    box = crop_box(img.size, crop)
    img = img.crop(box)
    if box[2] - box[0] != resolution:
        img = img.resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def crop_box(size: tuple[int, int], crop: float = 1.0) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred square of side ``crop`` × the short side.

    ``crop`` < 1 reproduces a method's tighter official crop (AttGAN: 170 of CelebA's 178 px).
    """
    w, h = size
    s = max(1, round(min(w, h) * crop))
    left, top = (w - s) // 2, (h - s) // 2
    return left, top, left + s, top + s


class FaceFolder:
    """Every image below ``root`` (sorted by relative path), optionally with CelebA attributes.

    ``strict`` (default) raises one error naming every bad file; ``strict=False`` leaves them out and
    records them in ``self.problems`` so that callers can report them.
    """

    def __init__(self, root: str | Path, resolution: int = 128, attr_file: str | Path | None = None,
                 min_side: int | None = None, strict: bool = True, check_files: bool = True, crop: float = 1.0):
        self.root = Path(root)
        if not 0.0 < crop <= 1.0:
            raise InputError(f"crop must be a fraction of the short side in (0, 1], got {crop}")
        self.crop = crop
        if not self.root.is_dir():
            raise InputError(f"face folder {self.root} does not exist; pass a folder of photos (or set PDBENCH_ASSETS)")
        self.resolution = resolution
        self.min_side = min_side if min_side is not None else max(16, resolution // 2)
        candidates = sorted(p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith("."))
        self.problems: list[str] = []
        files = []
        for p in candidates:
            if p.suffix.lower() not in IMAGE_EXTS:
                if p.suffix.lower() not in {".txt", ".csv", ".md", ".json"}:
                    self.problems.append(f"{p.name}: not an image file")
                continue
            if check_files:
                try:
                    with Image.open(p) as im:
                        w, h = im.size
                except (UnidentifiedImageError, OSError, SyntaxError):
                    self.problems.append(f"{p.name}: not a readable image")
                    continue
                if min(w, h) < self.min_side:
                    self.problems.append(f"{p.name}: too small ({w}x{h}, need a short side of at least {self.min_side})")
                    continue
            files.append(p)
        if self.problems and strict:
            shown = "; ".join(self.problems[:5]) + (f"; and {len(self.problems) - 5} more" if len(self.problems) > 5 else "")
            raise InputError(f"{len(self.problems)} bad file(s) in {self.root}: {shown}. Remove them or use --skip-bad")
        if not files:
            raise InputError(f"no images found in {self.root} (looked for {', '.join(sorted(IMAGE_EXTS))})")
        self.files = files
        self.attr_names: list[str] | None = None
        self._attrs: dict[str, np.ndarray] | None = None
        if attr_file is not None:
            self.attr_names, table = read_attr_file(attr_file)
            # rows are keyed by file name; a converted copy (000001.png of 000001.jpg, e.g. a protected
            # folder) finds its row by the name's stem
            by_stem = {Path(k).stem: v for k, v in table.items()}
            self._attrs = {p.name: table[p.name] if p.name in table else by_stem.get(p.stem) for p in files}
            self._attrs = {k: v for k, v in self._attrs.items() if v is not None}
            missing = [p.name for p in files if p.name not in self._attrs]
            if missing:
                raise InputError(f"{len(missing)} image(s) have no row in {attr_file} (e.g. {missing[0]}); use the matching attribute file")

    def __len__(self) -> int:
        return len(self.files)

    def labels(self, attrs: tuple[str, ...] | list[str], indices: list[int] | None = None) -> torch.Tensor | None:
        """(n, len(attrs)) float labels in {0, 1}, or None when the folder has no attribute file."""
        if self._attrs is None or self.attr_names is None:
            return None
        unknown = [a for a in attrs if a not in self.attr_names]
        if unknown:
            raise InputError(f"attributes {unknown} are not in the attribute file (it has {len(self.attr_names)} columns)")
        cols = [self.attr_names.index(a) for a in attrs]
        idx = range(len(self.files)) if indices is None else indices
        return torch.tensor(np.stack([self._attrs[self.files[i].name][cols] for i in idx]), dtype=torch.float32)

    def split(self, holdout: int) -> tuple[list[int], list[int]]:
        """(train, test) indices: the last ``holdout`` files (sorted order) are the test split."""
        n = len(self.files)
        if holdout >= n:
            raise InputError(f"holdout {holdout} leaves no training images in {self.root} ({n} images)")
        return list(range(n - holdout)), list(range(n - holdout, n))

    def select(self, n: int | None, seed: int = 0, pool: list[int] | None = None) -> list[int]:
        """Deterministic choice of n indices from ``pool`` (default all), returned sorted."""
        pool = list(range(len(self.files))) if pool is None else list(pool)
        if n is None or n >= len(pool):
            return pool
        return sorted(random.Random(seed).sample(pool, n))

    def load_uint8(self, indices: list[int]) -> np.ndarray:
        return np.stack([preprocess(_load_image(self.files[i]), self.resolution, self.crop) for i in indices])

    def load(self, indices: list[int]) -> torch.Tensor:
        """Images as float NCHW in [-1, 1] (the pdbench convention)."""
        return from_uint8(self.load_uint8(indices))

    def names(self, indices: list[int]) -> list[str]:
        return [self.files[i].relative_to(self.root).as_posix() for i in indices]
