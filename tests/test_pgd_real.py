"""Defenses against pdbench's trained StarGAN on real, held-out CelebA faces (never a random network)."""

import torch

from pdbench.defenses import get_defense
from pdbench.generators import Target
from pdbench.transforms import parse_setting


def _per_image_mse(G, target, x, x_adv):
    with torch.inference_mode():
        clean, = target.outputs(x)
        adv, = target.outputs(x_adv)
    return (adv - clean).pow(2).mean(dim=(0, 2, 3, 4))


def test_pgd_disrupts_at_least_90_percent_of_real_faces(stargan, celeba_test_batch):
    x, labels, keys = celeba_test_batch
    target = Target.of(stargan, labels, len(x))
    pgd = get_defense("pgd")  # PDB defaults: ε 0.05, α 0.01, 30 steps
    x_adv = pgd.protect(x, target, keys=torch.tensor(keys))
    assert float((x_adv - x).abs().max()) <= 0.05
    mse = _per_image_mse(stargan, target, x, x_adv)
    assert float((mse > 0.05).float().mean()) >= 0.9, mse
    # a random perturbation of the same size is nowhere near: the disruption is the attack's doing
    g = torch.Generator().manual_seed(0)
    noise = x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)
    base = _per_image_mse(stargan, target, x, noise.clamp(-1, 1))
    assert float(mse.mean()) > 5 * float(base.mean())
    # JPEG 75 through libjpeg weakens a non-robust perturbation (PDB's central finding)
    jpeg = parse_setting("jpeg:quality=75")
    after = _per_image_mse(stargan, target, x, jpeg(x_adv))
    assert float(after.mean()) < float(mse.mean())
