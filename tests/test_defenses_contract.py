"""Defense contract v2: the ported attacks reproduce the pre-v2 code bit for bit on real faces; objectives,
optimisers, config-built ensembles and model-based defenses behave as documented."""

import pytest
import torch
from torch import nn

from pdbench.defenses import DEFENSES, ModelDefense, get_defense, project_linf
from pdbench.defenses.base import per_key_uniform
from pdbench.defenses.disrupting import blur_schedule
from pdbench.defenses.ensemble import build_target, parse_members
from pdbench.errors import InputError, UnknownNameError
from pdbench.filters import apply_blur
from pdbench.generators import Target


def _pre_v2(x, target, keys, eps, alpha, steps, seed, blur=False):
    """The sign attack exactly as pdbench ran it before the v2 contract (IterativeSignAttack.protect)."""
    with torch.inference_mode():
        clean = [o.clone() for o in target.outputs(x)]
    x_adv = project_linf(x + per_key_uniform(tuple(x.shape), keys, eps, seed, x.device), x, eps)
    sched = blur_schedule()
    for step in range(steps):
        x_adv.requires_grad_(True)
        xin = apply_blur(x_adv, *sched[step % len(sched)]) if blur else x_adv
        total = 0.0
        for out, ref, m in zip(target.outputs(xin), clean, target.members):
            total = total + m.weight * (out - ref).pow(2).mean(dim=(0, 2, 3, 4)).sum()
        (grad,) = torch.autograd.grad(total, x_adv)
        x_adv = project_linf(x_adv.detach() + alpha * grad.sign(), x, eps)
    return x_adv.detach()


@pytest.mark.parametrize("name,steps,alpha,blur", [("pgd", 3, 0.01, False), ("ifgsm", 3, 0.01, False),
                                                   ("fgsm", 1, 0.05, False), ("disrupting", 6, 0.01, True),
                                                   ("composite", 3, 0.01, False)])
def test_ported_attacks_are_bit_identical_to_pre_v2(name, steps, alpha, blur, stargan, celeba_test_batch):
    x, labels, keys = celeba_test_batch
    x, labels, keys = x[-2:], labels[-2:], torch.tensor(keys[-2:])
    t = Target.of(stargan, labels, 2)
    d = get_defense(name, seed=7, **({} if name == "fgsm" else {"steps": steps}))
    assert torch.equal(d.protect(x, t, keys=keys), _pre_v2(x, t, keys, 0.05, alpha, steps, 7, blur))


def test_objective_weights_and_ensemble_weights_scale_the_loss(tiny_stargan):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    xa = (x + 0.05).clamp(-1, 1)
    t1 = Target.of(tiny_stargan, None, 2)
    a = get_defense("composite", objectives=[{"name": "output", "weight": 1.0}])
    b = get_defense("composite", objectives=[{"name": "output", "weight": 3.0}, {"name": "ssim", "weight": 0.0}])
    la = a.loss(xa, 0, x, t1, a.prepare(x, t1))
    lb = b.loss(xa, 0, x, t1, b.prepare(x, t1))
    assert torch.allclose(lb, 3 * la)
    t2 = Target([t1.members[0], type(t1.members[0])(tiny_stargan, t1.members[0].conditions, 0.5)])
    assert torch.allclose(a.loss(xa, 0, x, t2, a.prepare(x, t2)), 1.5 * la)


def test_composite_builds_from_config_and_rejects_bad_entries(tiny_stargan):
    d = get_defense("composite", objectives=["latent", {"name": "output", "weight": 0.5}], grad_norm="member", steps=2)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float((d.protect(x, Target.of(tiny_stargan, None, 1)) - x).abs().max()) <= 0.05
    adam = get_defense("composite", optimiser={"name": "adam", "lr": 0.01, "param": "tanh"}, steps=3)
    assert adam.config()["optimiser"]["name"] == "adam" and adam.norm == "linf"
    assert get_defense("composite", optimiser={"name": "adam", "lr": 1e-4, "param": "lab-ab"}).norm == "lab-ab"
    with pytest.raises(UnknownNameError, match="unknown objective 'outptu'"):
        get_defense("composite", objectives=["outptu"])
    with pytest.raises(InputError, match="objective 'output' does not take"):
        get_defense("composite", objectives=[{"name": "output", "gain": 2}])
    with pytest.raises(UnknownNameError, match="unknown optimiser"):
        get_defense("composite", optimiser="lbfgs")


def test_ensemble_from_config(stargan):
    from pdbench.generators import get_generator

    att = get_generator("attgan")
    assert parse_members(["stargan", {"name": "attgan", "weight": 0.5}]) == [("stargan", {}, 1.0), ("attgan", {}, 0.5)]
    t = build_target(["stargan", {"name": "attgan", "weight": 0.5}], 3)
    assert [m.generator.name for m in t.members] == ["stargan", "attgan"] and [m.weight for m in t.members] == [1.0, 0.5]
    assert t.members[0].conditions.shape == (5, 3, 5) and t.members[1].conditions.shape == (13, 3, 13)
    assert t.members[1].generator.fingerprint() == att.fingerprint()
    like = Target.of(stargan, torch.ones(3, 5), 3)
    assert torch.equal(build_target(["stargan"], 3, like=like).members[0].conditions, like.members[0].conditions)
    for bad, msg in [([], "at least one"), ([{"weight": 1}], "needs a generator name"),
                     ([{"name": "stargan", "weight": -1}], "positive number")]:
        with pytest.raises(InputError, match=msg):
            parse_members(bad)
    with pytest.raises(UnknownNameError, match="Did you mean 'stargan'"):
        parse_members(["stargn"])


class _Tiny(ModelDefense):
    name = "tiny-model"


def test_model_defense_projects_and_fingerprints_weights(tiny_stargan):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    d = _Tiny(net)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    x_adv = d.protect(x, Target.of(tiny_stargan, None, 2))
    assert float((x_adv - x).abs().max()) <= 0.05 and float((x_adv - x).abs().max()) > 0.01
    fp = d.fingerprint()
    with torch.no_grad():
        net[0].bias.add_(1e-3)
    assert d.fingerprint() != fp  # the weights are part of the key
    assert _Tiny(None).fingerprint() != fp
    with pytest.raises(InputError, match="no network given"):
        _Tiny(None).protect(x, Target.of(tiny_stargan, None, 2))


def test_every_defense_record_is_complete():
    for name in DEFENSES.names():
        cls = DEFENSES.get(name)
        rec = cls.record
        if name in ("none", "composite"):
            continue
        assert rec.year and rec.url.startswith("https://") and rec.official, name
        assert rec.code, name
