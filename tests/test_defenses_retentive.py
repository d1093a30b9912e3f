"""Retentive on pdbench's StarGAN with real held-out faces: the shipped U-Net loads strictly with its
checksum, respects ε, and nullifies StarGAN (G(x_adv) ≈ x_adv) far better than a random perturbation of
the same ε; `pdbench train retentive` trains, checkpoints, resumes and exports loadable weights."""

import json
import shutil

import pytest
import torch

from pdbench.assets import ASSETS, sha256_file
from pdbench.cli import main
from pdbench.defenses import DEFENSES, get_defense
from pdbench.defenses.retentive import ASSET, UNet, load_retentive, unet_from_state
from pdbench.errors import AssetCorruptError
from pdbench.generators import Target
from pdbench.metrics import MetricInputs, get_metric


@pytest.fixture(scope="module")
def faces(celeba_dir):
    """12 held-out faces (9001-10000: never seen by the U-Net or StarGAN) at 64 px, with their attributes."""
    from pdbench.data import FaceFolder
    from pdbench.generators.stargan import ATTRS

    ds = FaceFolder(celeba_dir / "images", 64, attr_file=celeba_dir / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(12, seed=3, pool=test)
    return ds.load(idx), ds.labels(ATTRS, idx), idx


def test_shipped_weights_load_strictly_with_checksum():
    spec = ASSETS.get(ASSET)
    assert spec.builtin and sha256_file(spec.location()) == spec.sha256 and spec.location().stat().st_size == spec.size
    net = load_retentive()
    assert isinstance(net, UNet) and not net.training
    assert (net.ngf, net.num_downs) == (spec.meta["ngf"], spec.meta["num_downs"])
    d = get_defense("retentive")
    assert d.fingerprint() != get_defense("retentive", network=UNet(net.ngf, net.num_downs)).fingerprint()
    # strict: a missing or reshaped tensor is one line naming it, never a silent partial load
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state.pop("model.model.3.bias")
    with pytest.raises(AssetCorruptError, match=r"1 missing \(model.model.3.bias\)"):
        unet_from_state(state, "x.safetensors")
    with pytest.raises(AssetCorruptError, match="not a Retentive U-Net"):
        unet_from_state({"main.0.weight": torch.zeros(1)}, "g.safetensors")


def test_eps_respected_and_stargan_nullified_better_than_random(stargan, faces):
    x, labels, idx = faces
    t = Target.of(stargan, labels, len(idx))
    d = get_defense("retentive")
    x_adv = d.protect(x, t, keys=torch.tensor(idx))
    assert float((x_adv - x).abs().max()) <= 0.05 and float(x_adv.min()) >= -1 and float(x_adv.max()) <= 1
    # one image at a time gives the same δ (eval-mode BatchNorm: no batch statistics)
    one = d.protect(x[:1], t.subset(slice(0, 1)))
    assert torch.allclose(one, x_adv[:1], atol=1e-6)
    g = torch.Generator().manual_seed(0)
    x_rand = (x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1)
    ret = get_metric("retention_mse")
    with torch.inference_mode():
        clean = stargan.generate_many(x, t.members[0].conditions)
        r = {name: ret(MetricInputs(x, xa, clean, stargan.generate_many(xa, t.members[0].conditions)))
             for name, xa in (("none", x), ("random", x_rand), ("retentive", x_adv))}
    # the declared effect: G(x_adv) comes out closer to x_adv than for random noise of the same ε, on every face
    assert float(r["retentive"].mean()) < 0.6 * float(r["random"].mean()), r
    assert float((r["retentive"] < r["random"]).float().mean()) == 1.0, r
    assert float(r["retentive"].mean()) < float(r["none"].mean())


def test_retention_metrics_on_known_inputs():
    x = torch.zeros(2, 3, 8, 8)
    x_adv = x + 0.01
    out = torch.stack([x_adv, x_adv + 0.3])  # edit 0 returns x_adv (MSE 0), edit 1 is off by 0.3 (MSE 0.09)
    inp = MetricInputs(x, x_adv, out.clone(), out)
    assert torch.allclose(get_metric("retention_mse")(inp), torch.full((2,), 0.045))
    assert torch.allclose(get_metric("dsr_retention")(inp), torch.full((2,), 0.5))  # 0 ≤ 0.05, 0.09 > 0.05
    assert DEFENSES.get("retentive").info()["methodology"] == "model"


def test_train_three_steps_resumes_and_exports(celeba_dir, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:12]:
        shutil.copy(p, imgs / p.name)
    attrs = str(celeba_dir / "list_attr_celeba_first20k.txt")
    out = tmp_path / "run"
    args = ["train", "retentive", "--data", str(imgs), "--attrs", attrs, "--out", str(out), "--resolution", "64",
            "--dim", "4", "--holdout", "4", "--batch-size", "2", "--save-every", "1", "--sample-every", "2",
            "--set", "edits_per_step=1"]
    assert main(args + ["--iters", "2"]) == 0
    prog = json.loads((out / "progress.json").read_text())
    assert prog["step"] == 2 and prog["product"] == "PG.safetensors" and prog["target"] == "stargan"
    assert prog["recipe"]["ngf"] == 4 and prog["recipe"]["edits_per_step"] == 1
    first = torch.load(out / "state.pt", weights_only=True)
    assert main(args + ["--iters", "3"]) == 2  # refuses to overwrite a run without --resume
    assert main(["train", "retentive", "--data", str(imgs), "--attrs", attrs, "--out", str(out), "--resume",
                 "--iters", "3", "--save-every", "1"]) == 0
    st = torch.load(out / "state.pt", weights_only=True)
    assert st["step"] == 3 and st["recipe"]["ngf"] == 4 and set(st) >= {"PG", "opt"}
    key = "model.model.0.weight"
    assert not torch.equal(st["PG"][key], first["PG"][key])  # the resumed step trained
    capsys.readouterr()
    assert main(["train", "retentive", "--data", str(imgs), "--attrs", attrs, "--out", str(out), "--resume",
                 "--dim", "8", "--iters", "4"]) == 2
    assert "ngf=4" in capsys.readouterr().err
    assert main(["train", "retentive", "--data", str(imgs), "--out", str(tmp_path / "r2"), "--iters", "1"]) == 2
    assert "--attrs" in capsys.readouterr().err
    assert main(["train", "retentive", "--data", str(imgs), "--attrs", attrs, "--out", str(tmp_path / "r3"),
                 "--set", "lambda_adv=x"]) == 2
    assert "lambda_adv takes a float" in capsys.readouterr().err
    assert main(["export", str(out), "-o", str(tmp_path / "pg.safetensors"), "--critic"]) == 2
    assert main(["export", str(out), "-o", str(tmp_path / "pg.safetensors")]) == 0
    net = load_retentive(str(tmp_path / "pg.safetensors"))  # strict load of the fp16 export
    assert (net.ngf, net.num_downs) == (4, 6)
    assert torch.allclose(net.model.model[0].weight, st["PG"][key].half().float())
    d = get_defense("retentive", checkpoint=str(tmp_path / "pg.safetensors"))
    assert d.config()["checkpoint"] == str(tmp_path / "pg.safetensors")


def test_native_photo_protection_stays_in_the_crop_and_retains(stargan, celeba_dir):
    """On whole photos (pdbench protect's native mode) δ is computed on StarGAN's 64 px input and upsampled
    onto its crop square: nothing outside the square changes, ε holds in grey levels, and the published
    photo, read as StarGAN reads it, is still nullified better than the unprotected one."""
    import numpy as np
    from PIL import Image

    from pdbench.data.folder import crop_box, preprocess
    from pdbench.publish import grey_levels, protect_images
    from pdbench.tensors import from_uint8

    paths = sorted((celeba_dir / "images").iterdir())[-3:]  # held out (009998-010000)
    imgs = [Image.open(p).convert("RGB") for p in paths]
    t = Target.of(stargan, None, len(imgs))
    done = protect_images(get_defense("retentive"), t, imgs, mode="native")
    left, top, right, bottom = crop_box(imgs[0].size, stargan.crop)
    cs = t.members[0].conditions
    for im, pub in zip(imgs, done.published):
        diff = pub.astype(int) - np.asarray(im, dtype=int)
        assert np.abs(diff).max() <= grey_levels(0.05) and np.abs(diff).max() > 0
        inside = np.zeros(diff.shape[:2], bool)
        inside[top:bottom, left:right] = True
        assert not diff[~inside].any()
    x = from_uint8(np.stack([preprocess(im, 64, stargan.crop) for im in imgs]))
    xp = from_uint8(np.stack([preprocess(Image.fromarray(p), 64, stargan.crop) for p in done.published]))
    with torch.inference_mode():
        r_clean = (stargan.generate_many(x, cs).clamp(-1, 1) - x).pow(2).mean()
        r_pub = (stargan.generate_many(xp, cs).clamp(-1, 1) - xp).pow(2).mean()
    assert float(r_pub) < 0.7 * float(r_clean), (r_pub, r_clean)
