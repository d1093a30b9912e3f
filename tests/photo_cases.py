"""Unusual and malformed photo files for the photo I/O and protect reliability tests."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# EXIF orientation -> the transpose that turns the stored pixels upright (EXIF 2.3, tag 0x0112)
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
INVERSE = {**{k: v for k, v in UPRIGHT.items() if k not in (6, 8)},
           6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}

MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "LA", "La", "PA", "RGBa", "RGBX",
         "I;16", "I;16B"]


def png_header(width: int, height: int, color_type: int = 2, depth: int = 8) -> bytes:
    """A PNG whose header claims width x height but which holds no pixel data (a decompression-bomb header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def face_like(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured uint8 RGB image (not flat, so every grey level change is visible)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 9.0)[..., None] * np.array([1.0, 0.7, 0.4])
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def image_in_mode(mode: str, w: int, h: int, seed: int = 0) -> Image.Image:
    rgb = Image.fromarray(face_like(w, h, seed))
    if mode in ("I;16", "I;16B"):
        grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        return Image.frombytes(mode, (w, h), grey.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    if mode == "I":
        return Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.int32) * 257, "I")
    if mode == "F":
        return Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0, "F")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = Image.fromarray(np.linspace(0, 255, w * h).reshape(h, w).astype(np.uint8))
        im = rgb.convert("RGBA")
        im.putalpha(alpha)
        if mode in ("La", "RGBa"):  # premultiplied, built by hand (Pillow's RGBA -> La drops the alpha)
            src = np.asarray(im.convert("LA") if mode == "La" else im, dtype=np.float64)
            pre = src.copy()
            pre[..., :-1] = np.rint(src[..., :-1] * src[..., -1:] / 255.0)
            return Image.frombytes(mode, (w, h), pre.astype(np.uint8).tobytes())
        return im.convert(mode) if mode != "PA" else im.convert("P").convert("PA")
    if mode == "P":
        return rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    return rgb.convert(mode)


def encode(im: Image.Image, fmt: str, orientation: int = 1) -> bytes:
    """``im`` stored in ``fmt`` (TIFF, then PNG of RGB, where the format cannot hold the mode)."""
    exif = None
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
    plain = im.convert({"La": "LA", "RGBa": "RGBA"}.get(im.mode, im.mode))
    plain = plain.convert("RGBA" if "A" in plain.mode else "RGB")
    for f, img in ((fmt, im), ("TIFF", im), ("PNG", plain)):
        b = io.BytesIO()
        try:
            img.save(b, format=f, **({"exif": exif} if exif is not None and f in ("PNG", "JPEG", "WEBP") else {}))
            return b.getvalue()
        except (OSError, ValueError, KeyError, TypeError):
            continue
    raise AssertionError("unreachable: RGB PNG always saves")


def stamp(path: Path) -> tuple[bytes, int]:
    """The bytes and mtime of a file: what must not change when it is an input."""
    return Path(path).read_bytes(), os.stat(path).st_mtime_ns
