"""FOUND: a universal δ trained on a few training faces against pdbench's StarGAN + AttGAN disrupts held-out
faces' generator features (and StarGAN's output) more than a random δ of the same ε; the trainer's pieces
(aggregation, enhancement, DI) behave as documented; δ files round-trip and a foreign one is refused."""

import pytest
import torch

from pdbench.defenses import get_defense
from pdbench.defenses.cmua import resolve_members, save_delta, train_on_faces
from pdbench.defenses.found import aggregate, diverse_input, enhance, member_features
from pdbench.errors import InputError
from pdbench.generators import Target

N_TRAIN = 8  # training faces (the papers' 128 is slower; 8 already give a δ that transfers to new faces)


@pytest.fixture(scope="module")
def trained(celeba_dir):
    members = resolve_members(["stargan", "attgan"])
    d = get_defense("found", steps=4, alpha=0.01, train_n=N_TRAIN, batch_size=N_TRAIN)
    delta, meta = train_on_faces(members, N_TRAIN, trainer=d.train_delta, method=d.delta_method, **d.train_kwargs())
    return members, delta, meta


@pytest.fixture(scope="module")
def heldout(celeba_dir):
    from pdbench.data import FaceFolder

    ds = FaceFolder(celeba_dir / "images", 64, attr_file=celeba_dir / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(6, seed=4, pool=test)
    return ds, idx, ds.load(idx)


@torch.inference_mode()
def _disruption(t, x, x_adv):
    feat = float((member_features(t, x_adv)[0] - member_features(t, x)[0]).pow(2).mean())
    out = float((t.outputs(x_adv)[0] - t.outputs(x)[0]).pow(2).mean())
    return feat, out


def test_universal_delta_disrupts_heldout_features_more_than_random(trained, heldout, tmp_path):
    members, delta, meta = trained
    assert delta.shape == (3, 64, 64) and float(delta.abs().max()) <= 0.05
    assert meta["method"] == "found" and meta["n_train"] == N_TRAIN
    path = tmp_path / "found.safetensors"
    fp = save_delta(path, delta, meta)
    d = get_defense("found", delta=str(path))
    ds, idx, x = heldout
    x_adv = d.protect(x, Target.of(members[0][0], None, len(x)))
    assert float((x_adv - x).abs().max()) <= 0.05
    assert torch.allclose(x_adv, (x + delta).clamp(-1, 1), atol=1e-6)  # one δ for every image
    g = torch.Generator().manual_seed(0)
    rand = (x + 0.05 * torch.sign(torch.rand(3, 64, 64, generator=g) - 0.5)).clamp(-1, 1)  # a random universal δ
    for G, _ in members:
        t = Target.of(G, ds.labels(G.attributes, idx), len(idx))
        (f_ours, o_ours), (f_rand, o_rand) = _disruption(t, x, x_adv), _disruption(t, x, rand)
        assert f_ours > 1.5 * f_rand, (G.name, f_ours, f_rand)
        if G.name == "stargan":
            assert o_ours > 1.5 * o_rand, (o_ours, o_rand)
    assert d.weights_hash() == fp and d.fingerprint() != get_defense("found").fingerprint()
    with pytest.raises(InputError, match="trained by found, not tsdf"):
        get_defense("tsdf", delta=str(path))


def test_aggregation_enhancement_and_diverse_input():
    torch.manual_seed(0)
    f1, f2 = torch.rand(2, 8, 16, 16), torch.rand(2, 32, 4, 4)
    a = aggregate([f1, f2], 8)
    assert a.shape == (2, 8, 8)
    assert torch.allclose(a.mean(dim=(1, 2)), f1.sum(1).mean(dim=(1, 2)) + f2.sum(1).mean(dim=(1, 2)), rtol=1e-4)
    # no difference, no enhancement: F_enh = A(x̂) exactly; a difference is amplified beyond itself
    assert torch.allclose(enhance(a, a), a)
    b = a + 0.1 * torch.randn_like(a)
    assert float((enhance(b, a) - a).pow(2).mean()) > float((b - a).pow(2).mean())
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    outs = [diverse_input(x, torch.Generator().manual_seed(s)) for s in range(8)]
    assert all(o.shape == x.shape for o in outs)
    assert any(torch.equal(o, x) for o in outs) and any(not torch.equal(o, x) for o in outs)  # p = 1/2
    assert torch.equal(diverse_input(x, torch.Generator().manual_seed(3)), outs[3])  # seeded


def test_bad_settings_fail_in_one_line():
    with pytest.raises(InputError, match="train_n and batch_size must be positive"):
        get_defense("found", train_n=0)
