"""DF-RAP: pdbench's ComG is DF-RAP's network, loads strictly from a checksum-verified file, imitates real
JPEG better than doing nothing, and PGD through it survives real JPEG 75 better than plain PGD."""

import pytest
import torch

from pdbench.assets import ASSETS, verify
from pdbench.defenses import get_defense
from pdbench.defenses.comgan import ASSET, QF, QF_WEIGHTS, ComGenerator, load_comg, sample_quality
from pdbench.errors import AssetCorruptError, AssetMissingError
from pdbench.generators import Target
from pdbench.transforms import parse_setting

# DF_RAP net/ComGAN.py parameter names (a ResidualBlock: main.0 conv, main.1 IN, main.3 conv, main.4 IN, conv1x1)
OFFICIAL_KEYS = ["conv1.0.weight", "conv2.0.main.0.weight", "conv2.0.main.1.weight", "conv2.0.main.1.running_mean",
                 "conv2.0.main.1.num_batches_tracked", "conv2.0.main.4.running_var", "conv2.0.conv1x1.weight",
                 "conv5.0.main.3.weight", "conv4m.0.conv1x1.weight", "conv1m.0.main.4.bias", "conv0.0.weight",
                 "conv0.0.bias", "upsample54.0.weight", "upsample21.0.weight"]


def test_comg_is_dfrap_architecture_and_loads_strictly_with_checksum():
    net = ComGenerator(32)  # the official width: 10.19 M parameters at any resolution
    assert sum(p.numel() for p in net.parameters()) == 10_191_171
    assert set(OFFICIAL_KEYS) <= set(net.state_dict())
    assert len(net.state_dict()) == 111
    spec = ASSETS.get(ASSET)
    verify(spec)  # sha256 and size of the shipped file
    g = load_comg()
    assert not g.training and all(not p.requires_grad for p in g.parameters())
    assert g.dim == 16 and set(g.state_dict()) == set(ComGenerator(16).state_dict())
    x = torch.rand(1, 3, 109, 89) * 2 - 1  # a photo at its own size (native-mode protect): padded, cropped back
    with torch.inference_mode():
        y = g(x)
        assert y.shape == x.shape and torch.equal(g(x[..., :64, :64]), g._forward(x[..., :64, :64]))


def test_bad_comg_checkpoints_are_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(AssetMissingError, match="does not exist"):
        get_defense("dfrap", comg=str(tmp_path / "nothing.safetensors"))
    state = {k: v for k, v in ComGenerator(8).state_dict().items() if k != "conv0.0.bias"}
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(AssetCorruptError, match=r"1 missing \(conv0.0.bias\)"):
        get_defense("dfrap", comg=str(tmp_path / "partial.safetensors"))
    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(AssetCorruptError, match="not a ComG state dict"):
        load_comg(str(tmp_path / "other.safetensors"))


def test_quality_distribution_is_dfrap_qf_txt():
    assert abs(sum(QF_WEIGHTS) - 1.0) < 1e-9 and len(QF) == len(QF_WEIGHTS) == 15 and (min(QF), max(QF)) == (71, 100)
    qs = sample_quality(20_000, torch.Generator().manual_seed(0))
    for q, w in zip(QF, QF_WEIGHTS):
        assert abs(qs.count(q) / len(qs) - w) < 0.01, q


@pytest.fixture(scope="module")
def heldout():
    from pdbench.train.comgan import heldout_faces

    return heldout_faces(48, seed=1)


def test_shipped_comg_is_trained_not_random(heldout):
    """A random U-Net with tanh is nowhere near the identity; the shipped ComG reproduces held-out faces
    at 37.7 dB on these 48 faces (a random one of the same width: 10.9 dB), its mean colours within 0.002."""
    from pdbench.train.comgan import psnr

    with torch.inference_mode():
        y = load_comg()(heldout)
        torch.manual_seed(0)
        r = ComGenerator(16).eval()(heldout)
    assert float(psnr(y, heldout).mean()) > 37.0
    assert float(psnr(r, heldout).mean()) < 15.0
    assert float((y - heldout).mean(dim=(0, 2, 3)).abs().max()) < 0.005


COMG_GAP = ("pdbench's CPU-trained ComG (width 16, 1,050 iterations, 21 min) is still an imprecise identity: "
            "0.3-0.7 dB below x itself against libjpeg at q 71-80 and 1.7-7 dB at q 90-100 "
            "(docs/model-cards/comgan-celeba-64-pdbench.md); a longer training has to close this")


@pytest.mark.xfail(strict=True, reason=COMG_GAP)
def test_comg_beats_identity_against_real_jpeg_on_heldout_faces(heldout):
    from pdbench.train.comgan import psnr_table

    table = psnr_table(load_comg(), heldout, qualities=(71, 75, 80, 85, 92))
    for q, row in table.items():
        assert row["comg"] > row["identity"], (q, row)


@pytest.fixture(scope="module")
def jpeg75_disruption(stargan, celeba_test_batch):
    """MSE(G(JPEG75(x_adv)), G(x)) per defense on 8 held-out faces, 10 steps each (DF-RAP's k)."""
    x, labels, keys = celeba_test_batch
    x, labels, keys = x[:8], labels[:8], torch.tensor(keys[:8])
    t = Target.of(stargan, labels, 8)
    jpeg = parse_setting({"name": "jpeg", "quality": 75})
    with torch.inference_mode():
        clean = t.outputs(x)[0]
    out = {}
    for name in ("pgd", "dfrap", "dfrap-kornia"):
        x_adv = get_defense(name, steps=10).protect(x, t, keys=keys)
        assert float((x_adv - x).abs().max()) <= 0.05
        with torch.inference_mode():
            out[name] = float((t.outputs(jpeg(x_adv))[0] - clean).pow(2).mean())
    return out


@pytest.mark.xfail(strict=True, reason=COMG_GAP + "; through it DF-RAP survives JPEG 75 no better than PGD")
def test_dfrap_disrupts_after_real_jpeg75_better_than_pgd(jpeg75_disruption):
    d = jpeg75_disruption
    assert d["dfrap"] > 1.2 * d["pgd"], d


def test_dfrap_kornia_disrupts_after_real_jpeg75_better_than_pgd(jpeg75_disruption):
    """Measured on these 8 faces: MSE after JPEG 75 0.115 (dfrap-kornia) vs 0.0058 (pgd, 10 steps; 0.0054 at
    30), while without JPEG PGD disrupts more (0.50 vs 0.17): robustness is bought with white-box strength."""
    d = jpeg75_disruption
    assert d["dfrap-kornia"] > 5 * d["pgd"], d


@pytest.mark.parametrize("name", ["dfrap", "dfrap-kornia"])
def test_batched_equals_per_image(name, tiny_stargan):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    t = Target.of(tiny_stargan, None, 3)
    d = get_defense(name, steps=3)
    keys = torch.tensor([4, 5, 6])
    xb = d.protect(x, t, keys=keys)
    xs = torch.cat([d.protect(x[i:i + 1], t.subset(slice(i, i + 1)), keys=keys[i:i + 1]) for i in range(3)])
    assert (xb - xs).abs().gt(1e-5).float().mean() < 0.01


def test_kornia_qualities_follow_keys_and_fixed_quality():
    d = get_defense("dfrap-kornia")
    a = d.qualities(torch.tensor([1, 2, 3]), 0)
    assert torch.equal(a, d.qualities(torch.tensor([1, 2, 3]), 0)) and set(a.tolist()) <= set(map(float, QF))
    assert torch.equal(get_defense("dfrap-kornia", quality=75).qualities(torch.tensor([1, 2]), 4), torch.tensor([75.0, 75.0]))
    from pdbench.errors import InputError

    with pytest.raises(InputError, match="quality must be in"):
        get_defense("dfrap-kornia", quality=101)


def test_fingerprint_covers_comg_weights(tmp_path):
    from pdbench.io import save_safetensors

    a = get_defense("dfrap")
    state = {k: v.clone() for k, v in load_comg().state_dict().items()}
    save_safetensors(state, tmp_path / "same.safetensors")
    state["conv0.0.bias"] += 1e-2
    save_safetensors(state, tmp_path / "moved.safetensors")
    b = get_defense("dfrap", comg=str(tmp_path / "same.safetensors"))
    c = get_defense("dfrap", comg=str(tmp_path / "moved.safetensors"))
    assert a.fingerprint() != c.fingerprint() and b.fingerprint() != c.fingerprint()


def test_train_comgan_smoke_resume_export_and_strict_load(celeba_dir, tmp_path):
    """`pdbench train comgan` trains on libjpeg pairs, resumes, and its export loads strictly as dfrap's ComG;
    the identity initialisation starts at tanh(1.2·x), and the pairs are the `jpeg` setting's encoder."""
    import json
    import shutil

    from pdbench.cli import main
    from pdbench.train.comgan import IDENTITY_GAIN, identity_init, jpeg_batch

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(identity_init(ComGenerator(8)).eval()(x), torch.tanh(IDENTITY_GAIN * x), atol=1e-6)
    assert torch.equal(jpeg_batch(x, [75, 75]), parse_setting("jpeg:quality=75")(x))
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:20]:
        shutil.copy(p, imgs / p.name)
    out = tmp_path / "run"
    args = ["train", "comgan", "--data", str(imgs), "--attrs", str(celeba_dir / "list_attr_celeba_first20k.txt"),
            "--out", str(out), "--resolution", "64", "--dim", "4", "--holdout", "4", "--batch-size", "4",
            "--save-every", "2", "--sample-every", "2"]
    assert main(args + ["--iters", "2"]) == 0
    first = torch.load(out / "state.pt", weights_only=True)["G"]
    assert main(args + ["--iters", "4", "--resume"]) == 0
    st = torch.load(out / "state.pt", weights_only=True)
    assert st["step"] == 4 and not torch.equal(st["G"]["conv1.0.weight"], first["conv1.0.weight"])
    assert json.loads((out / "progress.json").read_text())["recipe"]["dim"] == 4
    assert main(["export", str(out), "-o", str(tmp_path / "comg.safetensors")]) == 0
    d = get_defense("dfrap", comg=str(tmp_path / "comg.safetensors"), steps=1)
    g = load_comg(str(tmp_path / "comg.safetensors"))
    assert g.dim == 4 and torch.allclose(g.conv1[0].weight, st["G"]["conv1.0.weight"].half().float())
    assert d.fingerprint() != get_defense("dfrap").fingerprint()
