"""StarGAN: the official architecture, strict loading, clear errors, and pdbench's shipped weights."""

import pytest
import torch

from pdbench.assets import ASSETS, verify
from pdbench.errors import AssetCorruptError, AssetMissingError, InputError
from pdbench.generators.stargan import StarGAN, StarGANNet, target_conditions


def test_official_parameter_names_and_count():
    sd = StarGANNet().state_dict()  # official defaults: conv_dim 64, c_dim 5, repeat_num 6
    assert list(sd)[:6] == ["main.0.weight", "main.1.weight", "main.1.bias", "main.1.running_mean",
                            "main.1.running_var", "main.1.num_batches_tracked"]
    assert "main.9.main.0.weight" in sd and "main.14.main.4.running_var" in sd
    assert sd["main.15.weight"].shape == (256, 128, 4, 4)  # first ConvTranspose2d
    assert sd["main.21.weight"].shape == (3, 64, 7, 7) and "main.21.bias" not in sd
    assert sum(v.numel() for k, v in StarGANNet().named_parameters()) == 8_430_528


def test_official_style_checkpoint_loads_strictly(tmp_path):
    torch.manual_seed(0)
    ref = StarGANNet()
    path = tmp_path / "200000-G.ckpt"
    torch.save(ref.state_dict(), path)  # what the official solver writes
    g = StarGAN.from_assets(checkpoint=str(path), resolution=128)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    c = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    with torch.no_grad():
        ref.train()  # the official test code never calls eval(): instance statistics are used
        assert torch.allclose(g.generate(x, c), ref(x, c), atol=1e-5)
    sd = ref.state_dict()
    sd.pop("main.1.running_mean")
    torch.save(sd, tmp_path / "bad.ckpt")
    with pytest.raises(RuntimeError, match="Missing key"):  # strict: nothing may be missing
        StarGAN.from_assets(checkpoint=str(tmp_path / "bad.ckpt"), resolution=128)
    from pdbench.generators import get_generator

    with pytest.raises(AssetCorruptError) as e:  # through get_generator (run, protect, Python): one line
        get_generator("stargan", checkpoint=str(tmp_path / "bad.ckpt"), resolution=128)
    msg = str(e.value)
    assert "\n" not in msg and "does not fit this architecture" in msg and "1 missing (main.1.running_mean)" in msg
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(AssetCorruptError, match="not a StarGAN generator"):
        StarGAN.from_assets(checkpoint=str(tmp_path / "other.ckpt"))


def test_corrupt_or_missing_checkpoint_is_clear(tmp_path):
    (tmp_path / "trunc.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(AssetCorruptError, match="trunc.ckpt cannot be read"):
        StarGAN.from_assets(checkpoint=str(tmp_path / "trunc.ckpt"))
    with pytest.raises(AssetMissingError, match="does not exist"):
        StarGAN.from_assets(checkpoint=str(tmp_path / "nope.ckpt"))
    with pytest.raises(AssetMissingError) as e:
        StarGAN.from_assets(asset="stargan-celeba-128-official")
    assert "200000-G.ckpt" in str(e.value) and "dropbox" in str(e.value)


def test_official_target_conditions():
    labels = torch.tensor([[0.0, 1, 0, 1, 0]])  # blond male, not young
    c = target_conditions(labels)[:, 0]
    assert c.tolist() == [[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [0, 1, 0, 0, 0], [0, 1, 0, 1, 1]]


def test_shipped_weights_verify_and_load(stargan):
    spec = ASSETS["stargan-celeba-64-pdbench"]
    assert spec.sha256 is not None and verify(spec)
    assert stargan.resolution == 64
    with pytest.raises(InputError, match="expects 64x64"):
        stargan.generate(torch.zeros(1, 3, 128, 128), torch.zeros(1, 5))


def test_batched_generation_equals_single(stargan, celeba_test_batch):
    x, labels, _ = celeba_test_batch
    cs = stargan.conditions(labels[:4], 4)
    with torch.inference_mode():
        many = stargan.generate_many(x[:4], cs)
        one = stargan.generate(x[2:3], cs[3, 2:3])
    assert many.shape == (5, 4, 3, 64, 64)
    assert torch.allclose(many[3, 2:3], one, atol=1e-5)
