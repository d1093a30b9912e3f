"""Mechanics of every registered defense on a tiny random StarGAN: its declared norm and ε exactly, range,
batching, seeds, progress, and that no two defenses are secretly the same attack."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pdbench.defenses import DEFENSES, get_defense, project_linf
from pdbench.defenses.colour import rgb_to_lab
from pdbench.errors import UnknownNameError
from pdbench.generators import Target

NAMES = DEFENSES.names()
# fast settings for the property tests; Adam's lr is raised so that the ±ε clamp is reached in 3 steps
FAST = {"fgsm": {}, "none": {}, "antiforgery": {"steps": 3, "alpha": 0.03}, "antiforgery-paper": {"steps": 3, "alpha": 0.03},
        "cmua": {"steps": 2, "train_n": 16, "batch_size": 16}}


def _fast(name):
    return get_defense(name, **FAST.get(name, {"steps": 3}))


def _batch(n, seed=0, res=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, res, res, generator=g) * 2 - 1


def check_budget(d, x, x_adv):
    """The defense's declared norm holds: L∞ ≤ ε on RGB, or (lab-ab) L fixed and |Δab| ≤ ε where in gamut."""
    assert x_adv.shape == x.shape
    assert float(x_adv.min()) >= -1 and float(x_adv.max()) <= 1
    if d.norm == "linf":
        assert float((x_adv - x).abs().max()) <= d.eps
        return float((x_adv - x).abs().max())
    if d.norm == "lab-ab":
        lab0, lab1 = rgb_to_lab(x.double()), rgb_to_lab(x_adv.double())
        inside = ((x_adv > -1) & (x_adv < 1)).all(dim=1)
        assert float((lab1[:, 0] - lab0[:, 0]).abs()[inside].max()) < 1e-4
        dab = (lab1[:, 1:] - lab0[:, 1:]).abs().amax(dim=1)[inside]
        assert float(dab.max()) <= d.eps + 1e-4
        return float(dab.max())
    assert d.norm == "none" and torch.equal(x_adv, x)
    return 0.0


@pytest.mark.parametrize("name", NAMES)
def test_budget_and_range_respected(name, tiny_stargan):
    x = _batch(3)
    x[0, :, :4] = 1.0  # saturated pixels: the projection must also keep [-1, 1]
    x[1, :, :4] = -1.0
    d = _fast(name)
    x_adv = d.protect(x, Target.of(tiny_stargan, None, 3))
    moved = check_budget(d, x, x_adv)
    if name != "none":  # it actually perturbs (and, for Adam, reaches the clamp); a universal δ is a batch mean
        assert moved > (d.eps / 10 if name == "cmua" else d.eps / 2)


@pytest.fixture(scope="module")
def default_outputs(request):
    """Every registered defense at its own defaults (steps / 10), same seed, same images, same tiny generator."""
    from pdbench.generators.stargan import StarGAN

    torch.manual_seed(0)
    g = StarGAN(resolution=32, conv_dim=8, repeat_num=2).requires_grad_(False)
    x = _batch(2, seed=3)
    t = Target.of(g, None, 2)
    out = {}
    for n in NAMES:
        # each defense's own defaults, with every step count cut to a tenth (so default differences stay)
        steps = DEFENSES.get(n).defaults().get("steps")
        kw = {"steps": max(1, steps // 10)} if steps else {}
        if n == "cmua":
            kw.update(train_n=16, batch_size=16)
        out[n] = get_defense(n, seed=0, **kw).protect(x, t, keys=torch.tensor([5, 6]))
    return out


def _root(name):
    seen = set()
    while DEFENSES.get(name).alias_of and name not in seen:
        seen.add(name)
        name = DEFENSES.get(name).alias_of
    return name


@pytest.mark.parametrize("name", NAMES)
def test_distinct_unless_declared_alias(name, default_outputs):
    alias = DEFENSES.get(name).alias_of
    if alias is not None:
        assert alias in DEFENSES, f"{name} is declared an alias of unregistered {alias!r}"
    for other in NAMES:
        if other == name:
            continue
        same = torch.equal(default_outputs[name], default_outputs[other])
        if _root(name) == _root(other):
            assert same, f"{name} is declared the same attack as {other} but gives a different x_adv"
        else:
            assert not same, f"{name} and {other} give the same x_adv: declare one an alias (alias_of) or fix it"


@pytest.mark.parametrize("name", NAMES)
def test_record_fingerprint_and_progress(name, tiny_stargan):
    cls = DEFENSES.get(name)
    assert cls.record is not None and cls.record.paper, f"{name} has no record"
    info = cls.info()
    assert info["name"] == name and info["norm"] == cls.norm and "defaults" in info
    d1, d2 = get_defense(name), get_defense(name, seed=1)
    assert d1.fingerprint() == get_defense(name).fingerprint()
    assert d1.fingerprint() != d2.fingerprint()  # the configuration (here the seed) is in the key
    calls = []
    _fast(name).protect(_batch(1), Target.of(tiny_stargan, None, 1), progress=lambda s, t: calls.append((s, t)))
    assert calls and calls[-1][0] == calls[-1][1] and all(s <= t for s, t in calls)


@settings(max_examples=60, deadline=None)
@given(eps=st.floats(1e-4, 0.5), step=st.floats(0, 3), seed=st.integers(0, 2**16))
def test_projection_never_exceeds_eps(eps, step, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    y = x + step * (torch.rand(x.shape, generator=g) * 2 - 1)
    p = project_linf(y, x, eps)
    assert float((p - x).abs().max()) <= eps
    assert float(p.min()) >= -1 and float(p.max()) <= 1


@pytest.mark.parametrize("name", ["pgd", "disrupting", "fgsm", "leat", "leat-pdb", "antiforgery"])
def test_batched_equals_per_image(name, tiny_stargan):
    x = _batch(4, seed=1)
    labels = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.float32)
    target = Target.of(tiny_stargan, labels, 4)
    d = get_defense(name, **({"steps": 4} if name != "fgsm" else {}))
    keys = torch.tensor([10, 11, 12, 13])
    xb = d.protect(x, target, keys=keys)
    xs = torch.cat([d.protect(x[i:i + 1], target.subset(slice(i, i + 1)), keys=keys[i:i + 1]) for i in range(4)])
    if name == "antiforgery":
        # Adam rescales every gradient to a step of ≈ lr, so where a gradient is float noise the batch's
        # summation order can flip that step: the a/b difference stays within 2·lr per step, rarely reached
        dab = (rgb_to_lab(xb.double()) - rgb_to_lab(xs.double()))[:, 1:].abs()
        assert float(dab.max()) <= 2 * d.alpha * d.steps + 1e-6 and float(dab.mean()) < d.alpha / 10
        return
    # the same steps; float summation order inside a batch may flip a sign where a gradient is ~0
    assert (xb - xs).abs().gt(1e-5).float().mean() < 0.01


def test_seed_changes_random_start_only_for_pgd(tiny_stargan):
    x = _batch(2)
    t = Target.of(tiny_stargan, None, 2)
    a = get_defense("pgd", steps=0, seed=0).protect(x, t)
    b = get_defense("pgd", steps=0, seed=1).protect(x, t)
    c = get_defense("pgd", steps=0, seed=0).protect(x, t)
    assert torch.equal(a, c) and not torch.equal(a, b)


def test_unknown_defense_name_is_clear():
    with pytest.raises(UnknownNameError) as e:
        get_defense("pgdd")
    assert "unknown defense 'pgdd'" in str(e.value) and "Did you mean 'pgd'" in str(e.value)
