"""Shared fixtures.

Tests that need files from the asset directory find it through ``PDBENCH_ASSETS`` (default: the
``../shared/assets`` beside the checkout). Where an asset is missing they skip, unless
``PDBENCH_REQUIRE_ASSETS=1`` (as in CI), which turns a missing asset into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if "PDBENCH_ASSETS" not in os.environ and (ROOT.parent / "shared" / "assets").is_dir():
    os.environ["PDBENCH_ASSETS"] = str(ROOT.parent / "shared" / "assets")

torch.set_num_threads(min(2, torch.get_num_threads()))


def require_asset(name: str) -> Path:
    from pdbench.assets import ASSETS, asset_dir

    spec = ASSETS.get(name)
    loc = spec.location()
    if not loc.exists():
        msg = f"asset {name} not found at {loc} (asset directory {asset_dir()})"
        if os.environ.get("PDBENCH_REQUIRE_ASSETS") == "1":
            pytest.fail(msg + "; PDBENCH_REQUIRE_ASSETS=1 makes this a failure")
        pytest.skip(msg)
    return loc


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    return require_asset("celeba-10k-89px")


def table_cells(html: str, table_id: str) -> list[list[str]]:
    """The text of every cell of an HTML report's table ``table_id``, row by row (tags inside a cell dropped)."""
    import re

    table = re.search(rf'<table[^>]* id="{table_id}">.*?</table>', html, re.S).group(0)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]


def held_out_fid(G, celeba_dir: Path, n: int = 32) -> dict:
    """The model cards' FID protocol (``benchmarks/fid_generators.py``) at n faces per set: 2n held-out CelebA
    faces (seed 0) split into real set A and set B, whose edits and reconstructions are compared with A."""
    from pdbench.train.evaluate import held_out_fid as fid

    require_asset("inception-fid")
    return fid(G, celeba_dir, n)


@pytest.fixture(scope="session")
def stargan():
    """pdbench's shipped StarGAN (in the package: never skipped)."""
    from pdbench.generators import get_generator

    return get_generator("stargan")


@pytest.fixture(scope="session")
def celeba_test_batch(celeba_dir, stargan):
    """32 held-out CelebA faces (never seen in training) with their real attributes."""
    from pdbench.data import FaceFolder
    from pdbench.generators.stargan import ATTRS

    ds = FaceFolder(celeba_dir / "images", stargan.resolution, attr_file=celeba_dir / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(32, seed=0, pool=test)
    return ds.load(idx), ds.labels(ATTRS, idx), idx


@pytest.fixture
def tiny_stargan():
    """A randomly initialised, narrow StarGAN: only for tests of mechanics (shapes, ε, batching)."""
    from pdbench.generators.stargan import StarGAN

    torch.manual_seed(0)
    return StarGAN(resolution=32, conv_dim=8, repeat_num=2).requires_grad_(False)
