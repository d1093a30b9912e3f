"""LPIPS: official linear weights, the missing-backbone error, and the distance's defining properties."""

import shutil

import pytest
import torch

from conftest import require_asset
from pdbench.errors import AssetCorruptError, AssetMissingError
from pdbench.metrics import get_metric
from pdbench.metrics.lpips import LPIPS, load_lpips


@pytest.fixture
def no_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_missing_backbone_is_a_clear_error(no_torch_cache):
    load_lpips.cache_clear()
    require_asset("lpips-v0.1-alex")
    from pdbench.assets import ASSETS

    if ASSETS.get("alexnet-imagenet-torchvision").location().exists():
        pytest.skip("the ImageNet AlexNet is present here")
    with pytest.raises(AssetMissingError) as e:
        get_metric("lpips")  # refused when the run is configured
    msg = str(e.value)
    assert "alexnet-owt-7be5be79.pth" in msg and "download.pytorch.org" in msg and "PDBENCH_ASSETS" in msg
    with pytest.raises(AssetMissingError, match="vgg16-397923af.pth"):
        get_metric("lpips_vgg")


def test_backbone_checked_against_its_official_hash(tmp_path, monkeypatch, no_torch_cache):
    """A file under the official name whose sha256 does not start with the name's hash is refused."""
    src = require_asset("lpips-v0.1-alex").parent.parent
    shutil.copytree(src, tmp_path / "metrics" / "lpips")
    fake = LPIPS("alex").features.state_dict()
    (tmp_path / "metrics" / "lpips" / "backbones").mkdir()
    torch.save({f"features.{k}": v for k, v in fake.items()}, tmp_path / "metrics/lpips/backbones/alexnet-owt-7be5be79.pth")
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path))
    load_lpips.cache_clear()
    with pytest.raises(AssetCorruptError, match="7be5be79"):
        load_lpips("alex")
    load_lpips.cache_clear()


def test_official_linear_weights_and_distance_properties():
    """Loaded linear weights are the official non-negative ones; with them LPIPS is 0 on equal images,
    symmetric, non-negative and grows with the perturbation (checked on a fixed random backbone)."""
    lin = torch.load(require_asset("lpips-v0.1-alex"), map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    m = LPIPS("alex").eval()
    m.load_linear(lin)
    assert all((w.weight >= 0).all() for w in m.lins)
    assert torch.equal(m.lins[2].weight, lin["lin2.model.1.weight"])
    a = torch.rand(3, 3, 64, 64) * 2 - 1
    noise = torch.randn_like(a)
    with torch.no_grad():
        d0 = m(a, a)
        d1, d1r = m(a, (a + 0.05 * noise).clamp(-1, 1)), m((a + 0.05 * noise).clamp(-1, 1), a)
        d2 = m(a, (a + 0.3 * noise).clamp(-1, 1))
    assert d0.abs().max() < 1e-6
    assert torch.allclose(d1, d1r, atol=1e-6) and (d1 > 0).all() and (d2 > d1).all()
