"""LEAT on pdbench's StarGAN and AttGAN with real held-out faces: it moves the encoder latent more than
a random perturbation of the same ε, and with it the output; the ensemble variant does so on both."""

import pytest
import torch

from pdbench.defenses import get_defense
from pdbench.defenses.objectives import latents
from pdbench.generators import Target, get_generator


@pytest.fixture(scope="module")
def attgan():
    return get_generator("attgan")


@pytest.fixture(scope="module")
def faces(celeba_dir):
    """6 held-out faces at 64 px with the StarGAN crop (pdbench's two generators share the resolution)."""
    from pdbench.data import FaceFolder

    ds = FaceFolder(celeba_dir / "images", 64, attr_file=celeba_dir / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(6, seed=2, pool=test)
    return ds, idx, ds.load(idx)


def _target(g, ds, idx):
    return Target.of(g, ds.labels(g.attributes, idx), len(idx))


def _random(x, eps=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (x + eps * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1)


@torch.inference_mode()
def _latent_and_output(target, x, x_adv):
    m = target.members[0]
    lat = (latents(m.generator, x_adv, m.conditions) - latents(m.generator, x, m.conditions)).pow(2)
    out = (target.outputs(x_adv)[0] - target.outputs(x)[0]).pow(2)
    return lat.transpose(0, 1).flatten(1).mean(1), out.mean(dim=(0, 2, 3, 4))


@pytest.mark.parametrize("gen", ["stargan", "attgan"])
def test_leat_beats_random_in_latent_and_output(gen, stargan, attgan, faces):
    ds, idx, x = faces
    G = stargan if gen == "stargan" else attgan
    t = _target(G, ds, idx)
    x_adv = get_defense("leat").protect(x, t, keys=torch.tensor(idx))  # PDB: ε 0.05, α 0.01, 30 steps
    assert float((x_adv - x).abs().max()) <= 0.05
    lat, out = _latent_and_output(t, x, x_adv)
    lat_r, out_r = _latent_and_output(t, x, _random(x))
    assert float(lat.mean()) > 2 * float(lat_r.mean()), (lat, lat_r)
    assert float(out.mean()) > float(out_r.mean()), (out, out_r)
    assert float((lat > lat_r).float().mean()) == 1.0


def test_stargan_encode_is_the_bottleneck_and_decodes_back(stargan, faces):
    _, _, x = faces
    c = torch.zeros(len(x), 5)
    with torch.inference_mode():
        h = stargan.encode(x, c)
        assert h.shape[1:] == (stargan.net.main[0].out_channels * 4, 16, 16)  # 1/4 resolution, 4× channels
        assert torch.equal(stargan.decode(h, c), stargan.generate(x, c))


def test_leat_pdb_is_the_degenerate_pixel_attack_on_stargan(stargan, faces):
    ds, idx, x = faces
    t = _target(stargan, ds, idx[:2])
    x2 = x[:2]
    x_adv = get_defense("leat-pdb").protect(x2, t, keys=torch.tensor(idx[:2]))
    # maximising ‖x_adv − x‖ without the model: every pixel ends at the ε corner of its random start
    d = (x_adv - x2).abs()
    inside = (x2.abs() < 0.94)
    assert float((d[inside] > 0.05 - 1e-6).float().mean()) > 0.99


def test_leat_ensemble_normalises_per_member_and_beats_random_on_both(stargan, attgan, faces):
    ds, idx, x = faces
    ts, ta = _target(stargan, ds, idx), _target(attgan, ds, idx)
    d = get_defense("leat", surrogates=["stargan", "attgan"])
    x_adv = d.protect(x, ts, keys=torch.tensor(idx))  # the runner's target (StarGAN) lends its edits
    for t in (ts, ta):
        lat, _ = _latent_and_output(t, x, x_adv)
        lat_r, _ = _latent_and_output(t, x, _random(x))
        assert float(lat.mean()) > 2 * float(lat_r.mean()), (t.members[0].generator.name, lat, lat_r)
