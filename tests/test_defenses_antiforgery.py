"""Anti-Forgery: the differentiable Lab conversion against scikit-image, and the defense on pdbench's
StarGAN with real held-out faces (only a/b move; the output is disrupted)."""

import numpy as np
import torch
from skimage.color import lab2rgb as sk_lab2rgb
from skimage.color import rgb2lab as sk_rgb2lab

from pdbench.defenses import DEFENSES, get_defense
from pdbench.defenses.colour import lab_to_rgb, rgb_to_lab
from pdbench.generators import Target


def _norm_lab(lab: np.ndarray) -> np.ndarray:  # skimage HWC Lab -> Anti-Forgery's normalised CHW
    return np.stack([(lab[..., 0] - 50) / 100, lab[..., 1] / 110, lab[..., 2] / 110])


def test_rgb_to_lab_matches_scikit_image(celeba_test_batch):
    x, _, _ = celeba_test_batch
    g = torch.Generator().manual_seed(0)
    imgs = torch.cat([x[:4], torch.rand(2, 3, 16, 16, generator=g).mul(2).sub(1).repeat(1, 1, 4, 4)[:, :, :64, :64]])
    imgs[-1, :, :8] = -1.0  # black and white pixels: both branches of every piecewise function
    imgs[-1, :, 8:16] = 1.0
    ours = rgb_to_lab(imgs.double())
    for i in range(len(imgs)):
        ref = _norm_lab(sk_rgb2lab(((imgs[i].double() + 1) / 2).permute(1, 2, 0).numpy()))
        assert np.abs(ours[i].numpy() - ref).max() < 1e-6
    back = lab_to_rgb(ours)
    assert float((back - imgs.double()).abs().max()) < 1e-6
    # lab_to_rgb against scikit-image's lab2rgb on shifted (still in-gamut) colours
    shifted = ours.clone()
    shifted[:, 1:] += 0.02
    ref = sk_lab2rgb(torch.stack([shifted[0, 0] * 100 + 50, shifted[0, 1] * 110, shifted[0, 2] * 110], -1).numpy())
    ok = (ref > 1e-3) & (ref < 1 - 1e-3)  # skimage clips out-of-gamut colours; compare where it did not
    ours_rgb = ((lab_to_rgb(shifted)[0] + 1) / 2).permute(1, 2, 0).numpy()
    assert ok.mean() > 0.9 and np.abs(ours_rgb - ref)[ok].max() < 1e-6


def test_lab_conversion_has_finite_gradients_at_extremes():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.999, 1.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5).clone().requires_grad_(True)
    lab = rgb_to_lab(x)
    (g,) = torch.autograd.grad(lab_to_rgb(lab + 0.01).sum() + lab.sum(), x)
    assert torch.isfinite(g).all()


def test_antiforgery_records_and_names():
    assert get_defense("antiforgery").steps == 500 and get_defense("antiforgery-paper").steps == 100
    for n in ("antiforgery", "antiforgery-paper"):
        cls = DEFENSES.get(n)
        assert cls.norm == "lab-ab" and "AbstractTeen/AntiForgery" in cls.record.code
        assert cls.record.official["lr"] == 1e-4 and cls.record.official["grad_clip_norm"] == 1.0


def test_antiforgery_disrupts_stargan_and_keeps_lightness(stargan, celeba_test_batch):
    x, labels, keys = celeba_test_batch
    x, labels = x[:5], labels[:5]
    target = Target.of(stargan, labels, len(x))
    d = get_defense("antiforgery-paper")  # the official 100 iterations (PDB's 500 are slower, not needed here)
    x_adv = d.protect(x, target, keys=torch.tensor(keys[:5]))
    assert float(x_adv.min()) >= -1 and float(x_adv.max()) <= 1
    with torch.inference_mode():
        (clean,), (adv,) = target.outputs(x), target.outputs(x_adv)
    mse = (adv - clean).pow(2).mean(dim=(0, 2, 3, 4))
    assert float((mse > 0.05).float().mean()) >= 0.8, mse
    lab0, lab1 = rgb_to_lab(x.double()), rgb_to_lab(x_adv.double())
    inside = ((x_adv > -1) & (x_adv < 1)).all(dim=1)  # not clamped: the colour stayed in the sRGB gamut
    assert float(inside.float().mean()) > 0.9
    dL = (lab1[:, 0] - lab0[:, 0]).abs()
    assert float(dL[inside].max()) < 1e-4  # L is unchanged wherever x_adv was not clamped to [-1, 1]
    dab = (lab1[:, 1:] - lab0[:, 1:]).abs().amax(dim=1)
    assert float(dab[inside].max()) <= d.eps + 1e-4  # only a/b move, within ε (ab/110 units)
    assert float(dab[inside].max()) > 0.005  # and they do move
