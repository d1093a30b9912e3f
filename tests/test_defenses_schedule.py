"""Sign-PGD's step schedule: PDB's constant α stays the default (same configuration, so the same cache
keys and numbers); the cosine schedule is opt-in, named in the configuration, and checked in one line."""

import math

import pytest
import torch

from pdbench.defenses import get_defense
from pdbench.defenses.optim import SignPGD
from pdbench.errors import InputError
from pdbench.generators import Target


def test_constant_is_pdb_and_cosine_decays():
    const, cos = SignPGD(0.01, 30), SignPGD(0.02, 30, schedule="cosine")
    assert [const.step_size(t) for t in range(30)] == [0.01] * 30
    steps = [cos.step_size(t) for t in range(30)]
    assert steps[0] == 0.02 and all(a > b for a, b in zip(steps, steps[1:])) and steps[-1] < 1e-4
    assert sum(steps) == pytest.approx(0.02 * (30 + 1) / 2, rel=1e-9)  # Σ cos(πt/T) over t < T is 1
    assert steps[15] == pytest.approx(0.01)
    assert "schedule" not in const.config() and cos.config()["schedule"] == "cosine"
    pgd = get_defense("pgd")
    assert pgd.config() == {"eps": 0.05, "alpha": 0.01, "steps": 30, "seed": 0, "random_start": True}
    assert get_defense("pgd", schedule="cosine").fingerprint() != pgd.fingerprint()
    with pytest.raises(InputError, match="schedule must be one of constant, cosine, got 'cosin'"):
        get_defense("pgd", schedule="cosin")


def test_cosine_steps_are_the_ones_taken(tiny_stargan):
    """The iterates move by exactly α_t·sign ∇ (inside the ε-ball), step by step."""
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    d = get_defense("pgd", steps=4, alpha=0.02, schedule="cosine", eps=0.5)
    t = Target.of(tiny_stargan, None, 1)
    refs = d.prepare(x, t)
    its = list(d.optimiser.iterates(d, x, t, torch.tensor([0]), refs))
    assert len(its) == 5
    for step, (a, b) in enumerate(zip(its, its[1:])):
        moved = (b - a).abs()
        want = 0.02 * 0.5 * (1 + math.cos(math.pi * step / 4))
        assert moved.max() == pytest.approx(want, rel=1e-4)
