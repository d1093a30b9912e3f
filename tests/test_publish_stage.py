"""The runner's publish stage: ``publish: native`` makes every setting and metric act on the published
photo (8 bits, within ε grey levels at the photo's own resolution, read back with the generator's own
preprocessing); ``publish: model-input`` (PDB's protocol) stays the default and keeps old content keys."""

import csv

import numpy as np
import pytest
import torch

from pdbench.bench import BenchConfig, run
from pdbench.bench.config import load_config
from pdbench.data.folder import _load_image
from pdbench.errors import InputError


def _cfg(celeba_dir, out, **over):
    d = {
        "name": "p",
        "dataset": {"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                    "holdout": 1000, "split": "test", "n": 2, "seed": 0},
        "generators": ["stargan"],
        "defenses": [{"name": "pgd", "steps": 3}],
        "settings": ["none"],
        "metrics": ["mse", "linf_adv"],
        "batch_size": 2,
        "out": str(out),
    }
    d.update(over)
    return BenchConfig.from_dict(d)


def _values(out):
    rows = [r for r in csv.DictReader(open(out / "results.csv")) if r["metric"] != "protect_seconds_per_image"]
    return {(r["image"], r["metric"]): float(r["value"]) for r in rows}


def test_native_rows_act_on_the_published_photo(celeba_dir, tmp_path):
    run(_cfg(celeba_dir, tmp_path / "m"), progress=False)
    run(_cfg(celeba_dir, tmp_path / "n", publish="native"), progress=False)
    m, n = _values(tmp_path / "m"), _values(tmp_path / "n")
    assert m.keys() == n.keys()
    for (img, metric), v in n.items():
        assert v != pytest.approx(m[(img, metric)], rel=1e-3), (img, metric)
        if metric == "mse":
            assert v > 0.05  # the published photo still disrupts StarGAN (PDB's success threshold)
    # x_adv is the 64 px read-back of an 8-bit photo: within ε, and rounded to grey levels at the photo's size
    assert max(v for (_, k), v in n.items() if k == "linf_adv") <= 0.05 + 1e-6
    adv = list((tmp_path / "n" / "cache").rglob("adv.pt"))
    assert len(adv) == 1
    saved = torch.load(adv[0], weights_only=True)
    cfg = _cfg(celeba_dir, tmp_path / "n", publish="native")
    from pdbench.bench.runner import make_plan

    cell = make_plan(cfg, torch.device("cpu"), tmp_path / "n").cells[0]
    assert cell.adv_file == adv[0]
    for path, pub in zip(cell.files, saved["published"]):
        photo = np.asarray(_load_image(path), dtype=np.int16)
        assert pub.dtype == torch.uint8 and tuple(pub.shape) == photo.shape == (109, 89, 3)
        diff = np.abs(pub.numpy().astype(np.int16) - photo)
        assert 0 < diff.max() <= 6  # ⌊0.05 · 127.5⌋ grey levels
        assert (diff[:10] == 0).all()  # above StarGAN's 89 px centre square nothing changes
    # a second run reuses the cell (published photos and rows read back from the cache)
    assert run(cfg, progress=False)["reused"] == 1


def test_publish_key_is_checked_in_one_line(celeba_dir, tmp_path):
    with pytest.raises(InputError, match=r"publish must be model-input or native, got 'natve'\. Did you mean 'native'\?"):
        _cfg(celeba_dir, tmp_path, publish="natve")
    with pytest.raises(InputError, match=r"unknown key 'publsh'.*Did you mean 'publish'\?"):
        _cfg(celeba_dir, tmp_path, publsh="native")
    with pytest.raises(InputError, match="publish must be"):
        _cfg(celeba_dir, tmp_path, publish=["native"])


def test_default_configs_keep_their_content_key(celeba_dir, tmp_path):
    """The content key names ``publish`` only when it is not the default, so every shipped config (and
    the README numbers made from it) keeps the key it had before the publish stage existed."""
    from importlib.resources import files

    before = {"configs/transfer.yaml": "49b9a8429679037d", "configs/pdb-defenses-small.yaml": "1b0bf75dc09e1cdb"}
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for rel, key in before.items():
        assert load_config(root / rel).content_key() == key, rel
    assert load_config(files("pdbench") / "configs" / "quickstart.yaml").content_key() == "21c6b1d8b40fef7c"
    a, b = _cfg(celeba_dir, tmp_path), _cfg(celeba_dir, tmp_path, publish="model-input")
    c = _cfg(celeba_dir, tmp_path, publish="native")
    assert a.content_key() == b.content_key() != c.content_key()
    assert "publish" not in a.to_dict() and c.to_dict()["publish"] == "native"


def test_native_transfer_targets_read_the_published_photo(celeba_dir, tmp_path):
    """With ``publish: native`` a transfer target (AttGAN: another crop and resolution) reads the source's
    published photo with its own preprocessing: its x_adv is within ε and its rows differ from the
    model-input protocol's (δ upsampled from StarGAN's 64 px input)."""
    over = {"generators": ["stargan", "attgan"], "transfer": {"from": ["stargan"], "to": ["attgan"]},
            "metrics": ["mse", "linf_adv"]}
    rows = {}
    for mode in ("model-input", "native"):
        out = tmp_path / mode
        run(_cfg(celeba_dir, out, publish=mode, **over), progress=False)
        rows[mode] = {(r["image"], r["metric"]): float(r["value"]) for r in csv.DictReader(open(out / "results.csv"))
                      if r["source"] == "stargan" and r["target"] == "attgan" and r["metric"] != "protect_seconds_per_image"}
    assert rows["native"].keys() == rows["model-input"].keys() and len(rows["native"]) == 4
    for k, v in rows["native"].items():
        if k[1] == "mse":
            assert v != pytest.approx(rows["model-input"][k], rel=1e-3), k
        else:  # both publish 6 grey levels at most: ≤ ε on AttGAN's input too (the resize's weights are ≥ 0)
            assert 0 < v <= 0.05 + 1e-6
