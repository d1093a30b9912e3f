"""Asset integrity: import checks before installing and repairs corrupt files; verify fails on missing
or corrupt assets with the whole reason; list shows path and source; dataset files are checked at use."""

import shutil

import pytest

from conftest import require_asset
from pdbench import assets as A
from pdbench.cli import main
from pdbench.errors import AssetCorruptError

NAME = "brisque-live-range"


def _mirror(tmp_path, content: bytes | None = None):
    src = require_asset(NAME)
    mirror = tmp_path / "mirror"
    dest = mirror / A.ASSETS[NAME].path
    dest.parent.mkdir(parents=True)
    if content is None:
        shutil.copy(src, dest)
    else:
        dest.write_bytes(content)
    return src, mirror


def test_import_refuses_a_corrupt_source_and_repairs_a_corrupt_install(tmp_path, monkeypatch):
    src, bad_mirror = _mirror(tmp_path / "bad", b"truncated")
    _, good_mirror = _mirror(tmp_path / "good")
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path / "store"))
    with pytest.raises(AssetCorruptError, match="not imported"):
        A.import_dir(bad_mirror)
    installed = tmp_path / "store" / A.ASSETS[NAME].path
    assert not installed.exists() and not list(installed.parent.glob("*"))  # nothing half-installed
    installed.parent.mkdir(parents=True, exist_ok=True)
    installed.write_bytes(b"corrupt copy from earlier")
    assert A.import_dir(good_mirror) == [NAME]
    assert installed.read_bytes() == src.read_bytes()
    assert A.status(A.ASSETS[NAME], check=True) == "ok"


def test_verify_fails_on_missing_and_shows_the_whole_reason(tmp_path, monkeypatch, capsys):
    src, mirror = _mirror(tmp_path)
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path / "store"))
    assert main(["assets", "verify", NAME]) == 1  # missing
    assert "1 missing" in capsys.readouterr().out
    A.import_dir(mirror)
    assert main(["assets", "verify", NAME]) == 0
    installed = tmp_path / "store" / A.ASSETS[NAME].path
    installed.write_bytes(src.read_bytes()[:-10])
    assert main(["assets", "verify", NAME]) == 1
    out = capsys.readouterr().out
    assert "corrupt" in out and "delete it and fetch it again from https://github.com/opencv/opencv_contrib" in out
    assert main(["assets", "list"]) == 0
    out = capsys.readouterr().out
    spec = A.ASSETS["mobilefacenet"]
    assert spec.path in out and spec.source in out


def test_dataset_files_are_checked_at_use(tmp_path, monkeypatch):
    """A run reads dataset files through verify_files: the per-file sums of SHA256SUMS (trusted because
    they reproduce the catalog's manifest hash) catch a replaced photo without hashing the whole folder."""
    root = require_asset("codeformer-cropped")
    spec = A.ASSETS["codeformer-cropped"]
    files = sorted(p for p in root.iterdir())[:2]
    A.verify_files(spec, files)
    store = tmp_path / "store"
    shutil.copytree(A.asset_dir() / "faces" / "codeformer-cropped", store / spec.path)
    shutil.copy(A.asset_dir() / "SHA256SUMS", store / "SHA256SUMS")
    monkeypatch.setenv("PDBENCH_ASSETS", str(store))
    copy = sorted((store / spec.path).iterdir())
    A.verify_files(spec, copy[:2])
    shutil.copy(copy[1], copy[0])  # same name, other photo
    with pytest.raises(AssetCorruptError, match=copy[0].name):
        A.verify_files(spec, copy[:2])
