"""A dataset over a folder of face photos.

Preprocessing is the generators' official one: a centre crop to a square of the short side (178 px on
CelebA's 178×218 aligned images, 89 px on the 89×109 copies; ``crop`` < 1 takes a tighter square, as
AttGAN's 170 of 178), then a bilinear, antialiased resize to the generator's resolution. Files that are not images, cannot be decoded, or are too small are reported
by name, never dropped silently; hidden files (a name starting with ".") are skipped and listed.

Every image is loaded by :func:`load_photo`: decoded fully, turned upright by its EXIF orientation,
and converted from any Pillow mode to the 8-bit RGB that generators see (16-bit greyscale scaled, not
clipped; floating-point refused), with its alpha and RGB colour profile kept aside for the output.
"""

from __future__ import annotations

import io
import random
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

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


MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit (about 0.25 GB as 24-bit RGB)
_OPEN_LOCK = threading.Lock()


@dataclass
class Photo:
    """A decoded photo, upright, as the 8-bit RGB view that is protected, with what the output keeps.

    ``rgb`` is what every generator sees and what the perturbation is written onto; ``alpha`` (mode "L")
    is the source's transparency, kept unchanged on output where the format allows; ``icc`` is the
    source's colour profile when it describes RGB data (it is copied to the output); ``notes`` say, in
    one short phrase each, what the conversion did (16-bit depth reduced, orientation applied, ...).
    """

    rgb: Image.Image
    alpha: Image.Image | None = None
    icc: bytes | None = None
    notes: list[str] = field(default_factory=list)
    mode: str = "RGB"  # the source's Pillow mode

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.size


def _unreadable(path: Path, e: BaseException) -> InputError:
    return InputError(f"{path}: not a readable image ({type(e).__name__}); remove it or convert it to JPEG/PNG")


def _open(path: Path) -> Image.Image:
    """``Image.open`` (header only) without Pillow's own bomb check: :func:`_check_size` replaces it."""
    try:
        with _OPEN_LOCK:
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except Exception as e:  # any decoder failure on a bad file: one line naming it
        raise _unreadable(path, e) from e


def _check_size(path: Path, im: Image.Image, max_pixels: int | None) -> tuple[int, int]:
    w, h = im.size
    if w < 1 or h < 1:
        raise InputError(f"{path}: the image is {w}x{h} px (empty); remove it")
    if max_pixels is not None and w * h > max_pixels:
        raise InputError(f"{path}: {w}x{h} px = {w * h / 1e6:.1f} megapixels is over the limit of "
                         f"{max_pixels / 1e6:.1f} (a guard against decompression bombs); "
                         f"if you trust the file, pass --max-pixels {w * h}")
    return w, h


def image_size(path: Path, max_pixels: int | None = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header alone, refusing sizes over ``max_pixels`` (InputError)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(Path(path)) as im:
            return _check_size(Path(path), im, max_pixels)


def load_photo(path: Path, max_pixels: int | None = MAX_PIXELS) -> Photo:
    """Decode ``path`` fully (a truncated file fails here, not later), orient and convert it (:func:`to_photo`).

    More than ``max_pixels`` is refused from the header, before any pixel is decoded, with one line
    naming the size and the flag that allows it (Pillow's own check would raise a traceback).
    """
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's decoding warnings: failures here are InputErrors
        with _open(path) as im:
            _check_size(path, im, max_pixels)
            try:
                deep = im.mode in ("RGB", "RGBA") and any(";16" in str(getattr(t, "args", "")) for t in im.tile)
                im.load()
                photo = to_photo(im, str(path))
            except InputError:
                raise
            except Exception as e:
                raise _unreadable(path, e) from e
    if deep:
        photo.notes.append("16 bits per channel: protected its 8-bit view and written as 8-bit")
    return photo


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in im.info


def _rgb_icc(icc: bytes | None) -> bytes | None:
    """The ICC profile if it describes RGB data (bytes 16..20 of the header are the data colour space)."""
    return icc if isinstance(icc, bytes) and len(icc) >= 128 and icc[16:20] == b"RGB " else None


def to_photo(im: Image.Image, name: str = "image") -> Photo:
    """Apply the EXIF orientation and convert any Pillow mode to an 8-bit RGB view (plus alpha), or refuse.

    16-bit and 32-bit integer greyscale ("I;16*", "I" within 0..65535) is scaled to 8 bits
    (value / 257, rounded) — Pillow's own conversion clips it to white; floating-point images ("F")
    have no defined grey scale and are refused; premultiplied alpha is undone; palettes are expanded.
    """
    notes: list[str] = []
    src = im
    try:
        orientation = im.getexif().get(0x0112, 1)
        if orientation not in (1, None):
            im = ImageOps.exif_transpose(im)
            notes.append(f"EXIF orientation {orientation} applied (saved upright)")
    except Exception:  # a damaged EXIF block: the pixels are still fine
        notes.append("EXIF block unreadable: orientation not applied")
    icc = im.info.get("icc_profile")
    mode = im.mode
    alpha = None
    if mode in ("La", "RGBa"):  # premultiplied: undo it before splitting off the alpha
        im = im.convert("LA" if mode == "La" else "RGBA")
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        notes.append("palette image written as full-colour RGB")
    if im.mode in ("RGBA", "LA"):
        alpha = im.getchannel("A")
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im).astype(np.int64)
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise InputError(f"{name}: 32-bit integer image with values {lo}..{hi}, outside 0..65535; "
                             "convert it to an 8- or 16-bit PNG first")
        im = Image.fromarray(((arr * 2 + 257) // 514).astype(np.uint8), "L")  # round(v / 257)
        notes.append("16-bit greyscale: protected its 8-bit view (value/257) and written as 8-bit")
    elif im.mode == "F":
        raise InputError(f"{name}: 32-bit floating-point image (mode F) has no defined grey scale; "
                         "convert it to an 8- or 16-bit PNG first")
    if im.mode in ("1", "L"):
        notes.append("greyscale written as RGB")
        icc = None  # a grey profile does not describe the RGB output
        im = im.convert("RGB")
    elif im.mode == "CMYK":
        im = _cmyk_to_rgb(im, icc, notes)
        icc = None
    elif im.mode in ("YCbCr", "LAB", "HSV", "RGBX"):
        im = im.convert("RGB")
        notes.append(f"{mode} converted to RGB")
        icc = None
    elif im.mode != "RGB":
        raise InputError(f"{name}: image mode {mode} is not supported; convert it to an 8-bit RGB PNG first")
    if im is src:
        im = im.copy()  # detach from the file, which the caller closes
    return Photo(im, alpha, _rgb_icc(icc), notes, mode)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            notes.append("CMYK converted to sRGB with its colour profile")
            return out
        except Exception:
            pass
    notes.append("CMYK converted to RGB without a colour profile (colours approximate)")
    return im.convert("RGB")


def _load_image(path: Path, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """The photo at ``path`` as upright 8-bit RGB (every Pillow mode converted correctly, or refused)."""
    return load_photo(path, max_pixels).rgb


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
                 min_side: int | None = None, strict: bool = True, check_files: bool = True, crop: float = 1.0,
                 decode: bool = False, max_pixels: int | None = MAX_PIXELS):
        """``decode``: the pre-scan decodes every file fully (finds truncated files, costs one decode each);
        otherwise it reads headers only. Files and folders whose name starts with "." are skipped and
        listed in ``self.hidden``; files over ``max_pixels`` are bad files (a decompression-bomb guard)."""
        self.root = Path(root)
        if not 0.0 < crop <= 1.0:
            raise InputError(f"crop must be a fraction of the short side in (0, 1], got {crop}")
        self.crop = crop
        if not self.root.is_dir():
            raise InputError(f"face folder {self.root} does not exist; pass a folder of photos (or set PDBENCH_ASSETS)")
        self.resolution = resolution
        self.max_pixels = max_pixels
        self.min_side = min_side if min_side is not None else max(16, resolution // 2)
        candidates = sorted(p for p in self.root.rglob("*") if p.is_file())
        self.hidden = [p.relative_to(self.root).as_posix() for p in candidates
                       if any(part.startswith(".") for part in p.relative_to(self.root).parts)]
        candidates = [p for p in candidates if p.relative_to(self.root).as_posix() not in set(self.hidden)]
        self.problems: list[str] = []
        files = []
        for p in candidates:
            if p.suffix.lower() not in IMAGE_EXTS:
                if p.suffix.lower() not in {".txt", ".csv", ".md", ".json"}:
                    self.problems.append(f"{p.name}: not an image file")
                continue
            if check_files:
                try:
                    w, h = load_photo(p, max_pixels).size if decode else image_size(p, max_pixels)
                except InputError as e:
                    msg = str(e).replace(str(p), p.name)
                    self.problems.append(msg if "--max-pixels" in msg else msg.split(" (")[0].split("; ")[0])
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
        return np.stack([preprocess(_load_image(self.files[i], self.max_pixels), self.resolution, self.crop) for i in indices])

    def load(self, indices: list[int]) -> torch.Tensor:
        """Images as float NCHW in [-1, 1] (the pdbench convention)."""
        return from_uint8(self.load_uint8(indices))

    def names(self, indices: list[int]) -> list[str]:
        return [self.files[i].relative_to(self.root).as_posix() for i in indices]
