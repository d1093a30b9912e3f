"""The asset store: lookup, checksums, clear errors, fetch and import."""

from dataclasses import replace

import pytest

from pdbench import assets as A
from pdbench.errors import AssetCorruptError, AssetMissingError, UnknownNameError
from conftest import require_asset


def test_registry_knows_every_shared_asset_with_source_and_licence():
    for name in ["retinaface-mobilenet0.25", "mobilefacenet", "brisque-live-model", "lpips-v0.1-alex",
                 "celeba-10k-89px", "lfw-gray-250", "stargan-celeba-128-official", "stargan-celeba-64-pdbench"]:
        spec = A.ASSETS.get(name)
        assert spec.source and spec.licence
    with pytest.raises(UnknownNameError, match="pdbench assets list"):
        A.ASSETS.get("no-such-asset")


def test_every_present_file_asset_verifies():
    require_asset("retinaface-mobilenet0.25")
    for spec in A.ASSETS.values():
        if spec.location().exists() and not spec.is_dir and spec.sha256:
            assert A.verify(spec) == spec.location()


def test_dataset_manifest_verifies():
    spec = A.ASSETS.get("simswap-crop224")
    require_asset(spec.name)
    assert A.verify(spec)


def test_missing_asset_names_file_source_and_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path))
    with pytest.raises(AssetMissingError) as e:
        A.resolve("mobilefacenet")
    msg = str(e.value)
    assert "identity/mobilefacenet/mobilefacenet_068.ckpt" in msg
    assert "Xiaoccer/MobileFaceNet_Pytorch" in msg and str(tmp_path) in msg and "pdbench assets fetch mobilefacenet" in msg


@pytest.mark.parametrize("damage", ["tamper", "truncate"])
def test_tampered_or_truncated_file_is_refused(tmp_path, monkeypatch, damage):
    src = require_asset("mobilefacenet")
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path))
    dst = tmp_path / A.ASSETS["mobilefacenet"].path
    dst.parent.mkdir(parents=True)
    data = bytearray(src.read_bytes())
    if damage == "tamper":
        data[1000] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    dst.write_bytes(bytes(data))
    with pytest.raises(AssetCorruptError, match="tampered or truncated"):
        A.resolve("mobilefacenet")


def test_fetch_checks_checksum_and_writes_atomically(tmp_path, monkeypatch):
    src = require_asset("lpips-v0.1-alex")
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path / "store"))
    good = A.ASSETS["lpips-v0.1-alex"]
    monkeypatch.setitem(A.ASSETS, good.name, replace(good, url=src.as_uri()))
    assert A.fetch(good.name).read_bytes() == src.read_bytes()
    wrong = replace(good, name="x", url=src.as_uri(), sha256="0" * 64, path="x/alex.pth")
    monkeypatch.setitem(A.ASSETS, "x", wrong)
    with pytest.raises(AssetCorruptError, match="not kept"):
        A.fetch("x")
    assert not list((tmp_path / "store" / "x").iterdir())  # no half-written file left
    offline = replace(good, name="y", url="http://127.0.0.1:9/alex.pth", path="y/alex.pth")
    monkeypatch.setitem(A.ASSETS, "y", offline)
    with pytest.raises(AssetMissingError, match="could not download"):
        A.fetch("y", timeout=2)


def test_import_from_mirror(tmp_path, monkeypatch):
    require_asset("brisque-live-range")
    mirror = A.asset_dir()
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path))
    assert A.status(A.ASSETS["brisque-live-range"]) == "missing"
    done = A.import_dir(mirror, link=True)
    assert "brisque-live-range" in done and "celeba-10k-89px" in done
    assert A.status(A.ASSETS["brisque-live-range"], check=True) == "ok"
