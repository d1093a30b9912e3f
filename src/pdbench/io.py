"""Atomic writes: every result file appears whole or not at all.

A write goes to a hidden temporary ``.<name>.<8 random chars>.part`` beside its destination and is
renamed over it only when complete; a process killed mid-write leaves such a file behind, which
:func:`clean_stale_parts` removes on the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; it replaces ``dest`` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results should have the usual mode
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_PART = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")  # what atomic_path's mkstemp names look like


def clean_stale_parts(folder: str | os.PathLike, recursive: bool = True, name: str | None = None) -> list[Path]:
    """Remove unfinished ``.<name>.XXXXXXXX.part`` files that an interrupted :func:`atomic_path` left in
    ``folder`` (below it too when ``recursive``; only those of the file ``name`` when given); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(".*.part") if recursive else folder.glob(".*.part")
    gone = []
    for p in sorted(found):
        if p.is_file() and _PART.match(p.name) and (name is None or p.name.startswith(f".{name}.")):
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def check_writable(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove that a file can be written in it (InputError otherwise).

    A real probe file, because permission bits say nothing for root or on read-only mounts.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file, not a folder: choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".pdbench-probe.", suffix=".part")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{what} {folder} is not writable ({e.strerror or type(e).__name__}); "
                         "choose a folder you can write to") from e
    return folder


def write_json(dest: str | os.PathLike, obj) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_text(dest: str | os.PathLike, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def save_png(dest: str | os.PathLike, array) -> None:
    """Save a uint8 HWC array as PNG atomically."""
    from PIL import Image

    with atomic_path(dest) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def torch_save(obj, dest: str | os.PathLike) -> None:
    import torch

    with atomic_path(dest) as tmp:
        torch.save(obj, tmp)


def save_safetensors(state: dict, dest: str | os.PathLike, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    with atomic_path(dest) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
