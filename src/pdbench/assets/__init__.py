"""The asset store: every checkpoint, weight file and dataset pdbench knows by name.

Assets are looked up under the asset directory ``$PDBENCH_ASSETS`` (default: ``~/.cache/pdbench``),
at the path each entry names; pdbench's own shipped weights live inside the package. A file's sha256
is checked before it is used, so a tampered or truncated file is refused, and checkpoints are read
with ``torch.load(..., weights_only=True)`` or safetensors. ``fetch`` downloads an asset from its
official source (only when asked, and only where a network exists); ``import_dir`` copies the known
files out of an offline mirror.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AssetCorruptError, AssetMissingError, UnknownNameError
from . import catalog

BUILTIN_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class AssetSpec:
    name: str
    path: str  # relative to the asset directory (or to BUILTIN_DIR for builtin assets)
    sha256: str | None
    size: int | None
    source: str  # official URL(s), human readable
    url: str | None  # direct download URL, if any
    licence: str
    kind: str  # generator / detector / identity / metric / dataset
    is_dir: bool = False
    n_files: int | None = None
    builtin: bool = False
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    def location(self) -> Path:
        """Where the asset is: the asset directory, else (if ``meta['package']`` names a Python package
        that ships the same file) inside that installed package, without importing it."""
        loc = (BUILTIN_DIR if self.builtin else asset_dir()) / self.path
        pkg = self.meta.get("package")
        if not loc.exists() and pkg:
            import importlib.util

            spec = importlib.util.find_spec(pkg)
            if spec is not None and spec.submodule_search_locations:
                shipped = Path(list(spec.submodule_search_locations)[0]) / self.meta["package_path"]
                if shipped.exists():
                    return shipped
        return loc


def asset_dir() -> Path:
    env = os.environ.get("PDBENCH_ASSETS")
    if env:
        return Path(env).expanduser().resolve()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pdbench"


def _gh(repo: str, path: str) -> tuple[str, str]:
    return f"https://github.com/{repo} ({path})", f"https://github.com/{repo}/raw/HEAD/{path}"


def _build() -> dict[str, AssetSpec]:
    out: dict[str, AssetSpec] = {}
    for name, rel, sha, size, repo, path, lic, kind in catalog.FILES:
        src, url = _gh(repo, path)
        out[name] = AssetSpec(name, rel, sha, size, src, url, lic, kind, meta=catalog.SHIPPED_IN.get(name, {}))
    for name, rel, sha, n, repo, path, lic in catalog.DATASETS:
        src, _ = _gh(repo, path)
        out[name] = AssetSpec(name, rel, sha, None, src, None, lic, "dataset", is_dir=True, n_files=n)
    for name, rel, url, lic, meta in catalog.OFFICIAL_GENERATORS:
        out[name] = AssetSpec(name, rel, None, None, url, url, lic, "generator", meta=meta)
    for name, rel, url, lic, meta in catalog.BACKBONES:
        out[name] = AssetSpec(name, rel, None, None, url, url, lic, "metric", meta=meta)
    from . import builtin

    for spec in builtin.ASSETS:
        out[spec.name] = spec
    return out


class _Assets(dict):
    def get(self, name: str, *default) -> AssetSpec:  # type: ignore[override]
        if name not in self and default:
            return default[0]
        if name not in self:
            raise UnknownNameError(f"unknown asset {name!r}; `pdbench assets list` shows the known ones")
        return self[name]


ASSETS: _Assets = _Assets(_build())

_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def manifest_sha256(folder: Path) -> tuple[str, int]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    lines = "".join(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest(), len(files)


def _missing(spec: AssetSpec) -> AssetMissingError:
    where = "inside the installed package" if spec.builtin else f"in the asset directory {asset_dir()} (set PDBENCH_ASSETS)"
    how = "reinstall pdbench" if spec.builtin else f"run `pdbench assets fetch {spec.name}` or `pdbench assets import DIR`"
    return AssetMissingError(
        f"asset {spec.name!r} is missing: expected {spec.path} {where}; official source: {spec.source}; fix: {how}"
    )


def status(spec: AssetSpec, check: bool = False) -> str:
    """'present', 'missing', or with check=True 'ok' / 'corrupt: ...' / 'unverifiable'."""
    loc = spec.location()
    if not loc.exists():
        return "missing"
    if not check:
        return "present"
    if spec.sha256 is None:
        return "present (no checksum recorded)"
    try:
        verify(spec)
    except AssetCorruptError as e:
        return f"corrupt: {e}"
    return "ok"


def verify(spec: AssetSpec) -> Path:
    loc = spec.location()
    if not loc.exists():
        raise _missing(spec)
    if spec.sha256 is None:
        prefix = spec.meta.get("sha256_prefix")
        if prefix and not sha256_file(loc).startswith(prefix):
            raise AssetCorruptError(f"asset {spec.name!r} at {loc} does not have the sha256 its official file name promises "
                                    f"({prefix}…); delete it and fetch it again from {spec.source}")
        return loc
    if spec.is_dir:
        got, n = manifest_sha256(loc)
        if got != spec.sha256:
            raise AssetCorruptError(
                f"dataset {spec.name!r} at {loc} does not match its manifest ({n} files, expected {spec.n_files}); "
                f"re-import it from {spec.source}"
            )
        return loc
    got = sha256_file(loc)
    if got != spec.sha256:
        size = loc.stat().st_size
        raise AssetCorruptError(
            f"asset {spec.name!r} at {loc} has sha256 {got[:12]}… ({size} bytes), expected {spec.sha256[:12]}… "
            f"({spec.size} bytes): the file is tampered or truncated; delete it and fetch it again from {spec.source}"
        )
    return loc


_SUMS: dict[tuple, dict[str, str]] = {}  # (SHA256SUMS path, size, mtime, dataset) -> authenticated per-file sha256
_WHOLE_OK: set[str] = set()  # datasets whose whole manifest was checked in this process


def dataset_sums(spec: AssetSpec) -> dict[str, str] | None:
    """Per-file sha256 of a dataset (path relative to the dataset folder) from the asset directory's
    ``SHA256SUMS``, trusted only when those lines reproduce the manifest sha256 the catalog records;
    None when the file is absent or does not match."""
    sums = asset_dir() / "SHA256SUMS"
    if not sums.is_file() or not spec.is_dir or spec.sha256 is None:
        return None
    st = sums.stat()
    key = (str(sums), st.st_size, st.st_mtime_ns, spec.name)
    if key not in _SUMS:
        prefix = f"./{spec.path.strip('/')}/"
        rows = {}
        with open(sums) as f:
            for line in f:
                sha, sep, rel = line.rstrip("\n").partition("  ")
                if sep and rel.startswith(prefix):
                    rows[rel[len(prefix):]] = sha
        lines = "".join(f"{rows[r]}  {r}\n" for r in sorted(rows, key=lambda r: r.split("/")))
        _SUMS[key] = rows if rows and hashlib.sha256(lines.encode()).hexdigest() == spec.sha256 else {}
    return _SUMS[key] or None


def verify_files(spec: AssetSpec, paths) -> None:
    """Check the files of a dataset that a run reads (cheap: only those, each hashed once per process
    and (path, size, mtime)); without a trusted ``SHA256SUMS`` the whole folder's manifest is checked once."""
    root = spec.location()
    if not root.exists():
        raise _missing(spec)
    rows = dataset_sums(spec)
    if rows is None:
        if spec.name not in _WHOLE_OK:
            verify(spec)
            _WHOLE_OK.add(spec.name)
        return
    for p in paths:
        p = Path(p)
        rel = p.resolve().relative_to(root.resolve()).as_posix() if p.is_absolute() else p.as_posix()
        want = rows.get(rel)
        if want is None:
            raise AssetCorruptError(f"dataset {spec.name!r}: {rel} is not one of its files (added by hand?); "
                                    f"remove it or re-import the dataset from {spec.source}")
        if sha256_file(root / rel) != want:
            raise AssetCorruptError(f"dataset {spec.name!r}: {root / rel} does not have its recorded sha256 (tampered or "
                                    f"truncated); re-import the dataset from {spec.source}")


def resolve(name: str, check: bool = True) -> Path:
    """Path of a known asset, checksum-verified (files) unless check=False."""
    spec = ASSETS.get(name)
    if not spec.location().exists():
        raise _missing(spec)
    if check and not spec.is_dir:
        verify(spec)
    return spec.location()


def load_state_dict(path: str | os.PathLike, asset: AssetSpec | None = None) -> dict:
    """Read a state dict from .safetensors or a torch pickle (weights_only), refusing corrupt files."""
    import torch

    p = Path(path)
    if not p.exists():
        if asset is not None:
            raise _missing(asset)
        raise AssetMissingError(f"checkpoint {p} does not exist; pass the path of a state-dict file (.ckpt/.pth/.safetensors)")
    if asset is not None:
        verify(asset)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, not a checkpoint, pickle with code...
        raise AssetCorruptError(f"checkpoint {p} cannot be read ({type(e).__name__}: {str(e)[:120]}); it is corrupt or not a state dict") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise AssetCorruptError(f"checkpoint {p} holds a {type(state).__name__}, not a state dict")
    return state


def fetch(name: str, timeout: float = 60.0) -> Path:
    """Download an asset from its official URL into the asset directory, checking its sha256."""
    spec = ASSETS.get(name)
    if spec.builtin:
        return verify(spec)
    if spec.is_dir or spec.url is None:
        raise AssetMissingError(
            f"asset {name!r} cannot be downloaded automatically; get it from {spec.source} and run `pdbench assets import DIR`"
        )
    dest = spec.location()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(spec.url, timeout=timeout) as r:
            shutil.copyfileobj(r, f)
        got = sha256_file(Path(tmp))
        if spec.sha256 is not None and got != spec.sha256:
            raise AssetCorruptError(f"download of {name!r} from {spec.url} has sha256 {got[:12]}…, expected {spec.sha256[:12]}…; not kept")
        os.replace(tmp, dest)
    except OSError as e:
        raise AssetMissingError(f"could not download {name!r} from {spec.url} ({e}); no network? copy it from a mirror with `pdbench assets import DIR`") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _check_at(spec: AssetSpec, path: Path) -> None:
    """:func:`verify` of ``spec`` as if it lay at ``path`` (a candidate not yet installed)."""
    if spec.sha256 is None:
        prefix = spec.meta.get("sha256_prefix")
        if prefix and not path.is_dir() and not sha256_file(path).startswith(prefix):
            raise AssetCorruptError(f"{path} does not have the sha256 its official file name promises ({prefix}…); "
                                    f"not imported; get it again from {spec.source}")
        return
    if spec.is_dir:
        got, n = manifest_sha256(path)
        if got != spec.sha256:
            raise AssetCorruptError(f"{path} does not match dataset {spec.name!r}'s manifest ({n} files, expected "
                                    f"{spec.n_files}); not imported; get it again from {spec.source}")
        return
    got = sha256_file(path)
    if got != spec.sha256:
        raise AssetCorruptError(f"{path} has sha256 {got[:12]}… ({path.stat().st_size} bytes), expected {spec.sha256[:12]}… "
                                f"({spec.size} bytes) for {spec.name!r}; not imported; get it again from {spec.source}")


def import_dir(src: str | os.PathLike, link: bool = False) -> list[str]:
    """Copy (or symlink) every known asset found under ``src`` (same layout) into the asset directory.

    Each source is checked before anything is installed (a corrupt source is refused and the asset
    directory left as it was); an asset already installed and intact is kept; an installed one that is
    corrupt is replaced by the (intact) source. Copies are made beside the destination and moved into
    place, so an interrupted import leaves no half file."""
    src = Path(src)
    if not src.is_dir():
        from ..errors import InputError

        raise InputError(f"{src} is not a folder; pass a folder laid out like the asset directory")
    done = []
    for spec in ASSETS.values():
        if spec.builtin:
            continue
        s = src / spec.path
        if not s.exists():
            continue
        d = (asset_dir() / spec.path)
        if d.exists() and s.resolve() == d.resolve():
            verify(spec)
            done.append(spec.name)
            continue
        if d.exists():
            try:
                verify(spec)
                done.append(spec.name)  # intact: kept
                continue
            except AssetCorruptError:
                pass  # replaced below by the checked source
        _check_at(spec, s)
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = d.with_name(f".part-{os.getpid()}-{d.name}")
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp)
        elif tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        if link:
            tmp.symlink_to(s.resolve(), target_is_directory=s.is_dir())
        elif s.is_dir():
            shutil.copytree(s, tmp)
        else:
            shutil.copy2(s, tmp)
        try:
            if not link:
                _check_at(spec, tmp)  # what landed is what was checked
            if d.is_dir() and not d.is_symlink():
                old = d.with_name(f".old-{os.getpid()}-{d.name}")
                os.replace(d, old)
                os.replace(tmp, d)
                shutil.rmtree(old)
            else:
                os.replace(tmp, d)
        finally:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            elif tmp.exists() or tmp.is_symlink():
                tmp.unlink()
        done.append(spec.name)
    return done
