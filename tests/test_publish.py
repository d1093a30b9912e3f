"""The publish stage: the differentiable resize is Pillow's, and a perturbation made at the photo's own
resolution keeps its effect once written onto the photo in 8 bits and read back."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require_asset
from pdbench.data.folder import _load_image, crop_box, preprocess
from pdbench.errors import InputError
from pdbench.filters import pil_bilinear_weights, resize_bilinear
from pdbench.generators import Target
from pdbench.publish import (PhotoGenerator, first_order_ratio, grey_levels, photo_target, protect_images,
                             published_disruption, quantise)
from pdbench.tensors import from_uint8


def _photos():
    celeba = sorted((require_asset("celeba-10k-89px") / "images").iterdir())[:2]
    hq = sorted((require_asset("celebahq-stargan-v2") / "src" / "female").iterdir())[:1]
    ffhq = sorted(require_asset("ffhq-styleclip").iterdir())[:1]
    return [_load_image(p) for p in celeba + hq + ffhq]


def test_resize_matches_pillow_within_one_grey_level():
    """On real 89×109 CelebA and 1024² CelebA-HQ / FFHQ photos, for StarGAN's and AttGAN's crops and for
    an upscale, the float resize rounded to uint8 is Pillow's BILINEAR within one grey level (Pillow
    rounds to 8 bits between its two passes; the float path does not)."""
    for img in _photos():
        for crop, res in ((1.0, 64), (170 / 178, 128), (1.0, 256 if img.size[0] < 200 else 1100)):
            sq = img.crop(crop_box(img.size, crop))
            ref = np.asarray(sq.resize((res, res), Image.BILINEAR), dtype=np.int16)
            x = torch.tensor(np.asarray(sq), dtype=torch.float64).permute(2, 0, 1)[None]
            ours = np.rint(resize_bilinear(x, (res, res))[0].permute(1, 2, 0).numpy()).clip(0, 255).astype(np.int16)
            diff = np.abs(ours - ref)
            assert diff.max() <= 1, (img.size, crop, res, diff.max())
            assert (diff > 0).mean() < 0.25  # most pixels agree exactly
    w = pil_bilinear_weights(1024, 64, dtype=torch.float64)
    assert w.min() >= 0 and torch.allclose(w.sum(1), torch.ones(64, dtype=torch.float64))
    assert int((w[10] > 0).sum()) == 32  # the triangle widens with the 16× downscale: antialiasing


def test_photo_generator_reads_a_photo_as_the_generator_does(stargan):
    """PhotoGenerator's model input from the full photo equals the official Pillow preprocessing within one
    grey level, and its outputs follow; the wrong photo size is one clear error."""
    img = _photos()[0]
    pg = PhotoGenerator(stargan, (img.size[1], img.size[0]))
    x = from_uint8(np.asarray(img))
    ref = from_uint8(preprocess(img, stargan.resolution, stargan.crop))
    assert (pg.model_input(x) - ref).abs().max() <= 1 / 127.5 + 1e-5
    assert pg.footprint().sum() == 89 * 89 and not pg.footprint()[:10].any()
    with pytest.raises(InputError, match="same size"):
        pg.model_input(torch.zeros(1, 3, 64, 64))
    # with rounding: the model input is on the 8-bit grid, still Pillow's within one grey level, and the
    # gradient passes straight through both roundings (the float resize's transpose)
    pr = PhotoGenerator(stargan, (img.size[1], img.size[0]), rounding=True)
    x_adv = (x + 0.03 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    xr = pr.model_input(x_adv)
    levels = (xr + 1) * 127.5
    assert (levels - levels.round()).abs().max() < 1e-4
    assert (xr - pg.model_input(x_adv)).abs().max() <= 1.5 / 127.5
    assert (pr.model_input(x) - ref).abs().max() <= 1 / 127.5 + 1e-5
    v = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    grads = []
    for g in (pg, pr):
        p = x_adv.clone().requires_grad_(True)
        (gr,) = torch.autograd.grad(g.model_input(p), p, grad_outputs=v)
        grads.append(gr)
    assert torch.equal(grads[0], grads[1])


def test_quantise_respects_eps_and_leaves_the_rest():
    photos = np.full((1, 8, 6, 3), 250, dtype=np.uint8)
    x = from_uint8(photos)
    x_adv = x + 0.05 * torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))
    foot = torch.zeros(8, 6, dtype=torch.bool)
    foot[1:7] = True
    out = quantise(photos, x_adv, 0.05, foot).astype(int)
    assert grey_levels(0.05) == 6
    assert set(np.unique(out[0, 1:7])) <= {244, 255} and (out[0, [0, 7]] == 250).all()


def test_native_publish_keeps_the_disruption(stargan):
    """PGD through the photo's own resize on two 89 px CelebA faces and a 1024 px CelebA-HQ photo: the
    published (8-bit, read-back, Pillow-preprocessed) disruption keeps ≥ 60 % of what the defense reached,
    and is several times what PDB's model-input mode leaves after publishing; ε holds on the photo and
    nothing outside the generator's crop changes. Mixed sizes come back in order."""
    from pdbench.defenses import get_defense

    imgs = _photos()[:3]
    d = get_defense("pgd", steps=8)
    keys = torch.tensor([11, 12, 13])
    res = {}
    for mode in ("native", "model-input"):
        target = Target.of(stargan, None, len(imgs))
        out = protect_images(d, target, imgs, keys=keys, mode=mode)
        pub = published_disruption(target, imgs, out.published)
        res[mode] = (out.model_input_mse, pub)
        for im, p in zip(imgs, out.published):
            a, b = np.asarray(im, dtype=np.int16), p.astype(np.int16)
            assert a.shape == b.shape and 0 < np.abs(a - b).max() <= 6
        assert np.array_equal(out.published[0][:10], np.asarray(imgs[0])[:10])  # above the 89 px square
    pre, pub = res["native"]
    assert (pub / pre).min() >= 0.6, (pre, pub)
    assert (pub / res["model-input"][1]).min() >= 1.5, (pub, res["model-input"][1])
    # against PDB's own number (model-input mode, before publishing) native keeps about half: the ε-ball at
    # the photo's resolution, seen through the antialiased resize, is a smaller set than the ε-ball at 64 px
    # (docs/results/publish.json, benchmarks/publish.py); to first order at most 6/6.375 · ‖Rᵀg‖₁/‖g‖₁ ≈ 55 %
    # of PDB's gain is deliverable (first_order_ratio, docs/results/publish_bound.json), so the 80 %
    # (and a 60 % floor against PDB) is beyond the bound; this floor catches a regression
    vs_pdb = pub / res["model-input"][0]
    assert vs_pdb.min() >= 0.45, vs_pdb  # measured 0.53–0.62 on these three photos
    assert pub.min() > 0.05  # published success threshold


def test_native_result_does_not_depend_on_the_batch(stargan):
    from pdbench.defenses import get_defense

    imgs = _photos()[:2]
    d = get_defense("pgd", steps=3)
    both = protect_images(d, Target.of(stargan, None, 2), imgs, keys=torch.tensor([5, 6])).published
    alone = protect_images(d, Target.of(stargan, None, 1), imgs[1:], keys=torch.tensor([6])).published
    assert np.array_equal(both[1], alone[0])


def test_modes_are_named_and_checked(stargan):
    from pdbench.defenses import get_defense

    img = _photos()[0]
    with pytest.raises(InputError, match="unknown publish mode 'upsample'"):
        protect_images(get_defense("pgd", steps=0), Target.of(stargan, None, 1), [img], mode="upsample")
    t = photo_target(Target.of(stargan, None, 1), (109, 89))
    assert isinstance(t.members[0].generator, PhotoGenerator) and t.members[0].generator.inner is stargan


def test_first_order_ratio_is_the_photo_share_of_the_linear_gain(stargan):
    """‖Rᵀg‖₁ / ‖g‖₁ on a real face: 1 exactly when the photo is the model input itself (R = I), strictly
    between for an 89 px face read through the antialiased resize (measured ≈ 0.59, docs/results/publish_bound.json),
    and the gradient it is made of predicts the loss change of δ_p = ε·sign(Rᵀg) on the photo to first order."""
    from pdbench.defenses import get_defense

    d = get_defense("pgd", steps=1)
    img = _photos()[0]
    target = Target.of(stargan, None, 1)
    photo = from_uint8(np.asarray(img))
    x = PhotoGenerator(stargan, (109, 89)).model_input(photo)
    start = (x + 0.05 * torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(3)))).clamp(-0.99, 0.99)
    rho = first_order_ratio(d, target, photo, start)
    assert 0.4 < float(rho) < 0.8, rho
    # the model's own size: R is the identity, the whole gain is deliverable
    assert float(first_order_ratio(d, target, x, start)) == pytest.approx(1.0, abs=1e-6)
    # first-order check of the composed gradient: a small step t·sign(Rᵀg) on the photo changes the loss by
    # ≈ t·‖Rᵀg‖₁, while the same step on the model input (t·sign g) gains ≈ t·‖g‖₁ — their ratio is rho
    refs = d.prepare(x, target)
    pg = PhotoGenerator(stargan, (109, 89))
    g = d.gradient(start, 0, x, target, refs)
    p = photo.clone().requires_grad_(True)
    (rt,) = torch.autograd.grad(pg.model_input(p), p, grad_outputs=g)
    t = 1e-3
    with torch.no_grad():
        base = d.loss(start, 0, x, target, refs)
        gain_photo = d.loss(start + pg.model_input(t * rt.sign()), 0, x, target, refs) - base
        gain_model = d.loss(start + t * g.sign(), 0, x, target, refs) - base
    assert float(gain_photo / gain_model) == pytest.approx(float(rho), rel=0.05)
