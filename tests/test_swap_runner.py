"""Face swappers in the runner (the ``swap`` block): pairs of different people, the protected photo as the
swap's source or target, the disruption and the swap metrics of the clean and the protected swap, on the
shipped (experimental) SimSwap and aeswap weights, two photos each."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from pdbench.bench import BenchConfig, run
from pdbench.bench.config import load_config
from pdbench.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
JUDGES = ("mobilefacenet", "dlib")
SWAP = [f"swap_{m}_{j}" for j in JUDGES for m in ("closer", "cos_source", "cos_target")] + \
    ["swap_landmark_nme", "swap_background_l1"]


def _cfg(out, role="target", generators=("simswap",), defenses=None, **over):
    d = {"name": "swap-test",
         "dataset": {"asset": "celeba-10k-89px", "images": "images", "holdout": 1000, "split": "test", "n": 2, "seed": 0},
         "generators": list(generators),
         "defenses": defenses or ["none", {"name": "pgd", "steps": 2}, "nullswap"],
         "metrics": ["mse", "lpips", "linf_adv"], "swap": {"role": role}, "batch_size": 2, "out": str(out)}
    d.update(over)
    return BenchConfig.from_dict(d)


def _values(out) -> dict:
    """(defense name, metric) -> the values of setting none, in image order."""
    with open(Path(out) / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["setting"] == "none" and r["image"] != "*batch*"]
    by: dict = {}
    for r in rows:
        by.setdefault((r["defense"].split("(")[0], r["metric"]), []).append(float(r["value"]))
    return by


def _same(a, b) -> bool:
    return len(a) == len(b) and all((x != x and y != y) or x == y for x, y in zip(a, b))


@pytest.mark.parametrize("role", ["source", "target"])
def test_simswap_runs_in_either_role_with_swap_and_disruption_metrics(role, celeba_dir, tmp_path, capsys):
    from pdbench.train.simswap import read_identities

    out = tmp_path / role
    run(_cfg(out, role), progress=False)
    assert "experimental weights" in capsys.readouterr().err
    meta = json.loads((out / "results.json").read_text())
    gi = meta["generators"]["simswap"]
    assert gi["kind"] == "swap" and gi["protected_role"] == role and gi["conditions"] == ["swap"]
    assert "not a real swapper" in gi["experimental"] and meta["swap"]["role"] == role
    ids = read_identities(celeba_dir / "identity_CelebA.txt")
    assert len(gi["swap_pairs"]) == 2
    for photo, partner in gi["swap_pairs"]:  # held-out photos (the last 1,000), of two different people
        assert int(Path(photo).stem) > 9000 and int(Path(partner).stem) > 9000
        assert ids[Path(photo).stem] != ids[Path(partner).stem]
    assert set(meta["swap"]["metrics"]) == set(SWAP) | {f"clean_{m}" for m in SWAP}

    v = _values(out)
    for d in ("none", "pgd", "nullswap"):
        for m in ["mse", "lpips", "linf_adv"] + SWAP + [f"clean_{m}" for m in SWAP]:
            assert len(v[(d, m)]) == 2, (d, m)
        assert _same(v[(d, "clean_swap_closer_mobilefacenet")], v[("none", "clean_swap_closer_mobilefacenet")])
        assert max(v[(d, "linf_adv")]) <= 0.05 + 1e-6
        for j in JUDGES:  # defined (the sources and targets are faces); 1 or 0 per swap
            assert all(c in (0.0, 1.0) for c in v[(d, f"swap_closer_{j}")] + v[(d, f"clean_swap_closer_{j}")])
        assert all(0 < b < 1 for b in v[(d, "swap_background_l1")])
    for m in SWAP:  # no defense: the protected swap is the clean swap
        assert _same(v[("none", m)], v[("none", f"clean_{m}")]), m
    assert max(v[("none", "mse")]) == 0.0
    assert min(v[("pgd", "mse")]) > 1e-3  # two PGD steps through the swap move every output
    assert min(v[("nullswap", "mse")]) > 1e-6 and max(v[("nullswap", "linf_adv")]) > 0.04  # the cloak changes the swap
    # the swap keeps its target (the protected photo for role target, the partner for source): outside the face
    # the output is nearer the target than the source (the clean output, written by the run)
    x, partner = (torch.load(p, weights_only=True) for p in _photos(out, gi))
    source, target = (x, partner) if role == "source" else (partner, x)
    clean = torch.load(next(out.glob("cache/simswap-*/b0000-*/clean.pt")), weights_only=True)[0]
    assert float((clean - target).abs().mean()) < float((clean - source).abs().mean()) - 0.05
    md = (out / "summary.md").read_text()
    assert "## Face swaps" in md and f"| simswap | {role} | pgd(steps=2) | none |" in md
    assert "not fit for reporting" in md and "swap_cos_source_dlib" not in md  # no per-metric undefined lines
    from pdbench.report.markdown import compact_table

    assert "undefined" not in compact_table(meta)  # a judge finding no face is the swap table's "–", not a note


def test_the_html_report_shows_summary_md_s_swap_table(celeba_dir, tmp_path):
    """report.html has the face swap table of summary.md (the same cells: clean swap → protected swap, from
    results.json's means), the experimental weights' warning, and no such table for a run without swaps."""
    from conftest import table_cells

    from pdbench.report.html import render_html

    out = tmp_path / "r"
    run(_cfg(out, "target", defenses=["none", {"name": "pgd", "steps": 1}], metrics=["mse"]), progress=False)
    html, md = (out / "report.html").read_text(), (out / "summary.md").read_text()
    meta = json.loads((out / "results.json").read_text())
    rows = table_cells(html, "swap-table")
    assert rows[0] == ["generator", "protected photo", "defense", "setting"] + \
        [f"closer to source ({j}) ↓" for j in JUDGES] + [f"cos to source ({j}) ↓" for j in JUDGES] + \
        ["landmark NME ↑", "background L1 ↑"]
    assert [r[:4] for r in rows[1:]] == [["simswap", "target", "none", "none"], ["simswap", "target", "pgd(steps=1)", "none"]]
    assert all("| " + " | ".join(r) + " |" in md for r in rows)  # summary.md's header and rows, cell for cell
    keys = [f"swap_closer_{j}" for j in JUDGES] + [f"swap_cos_source_{j}" for j in JUDGES] + \
        ["swap_landmark_nme", "swap_background_l1"]
    for e, r in zip(meta["summary"], rows[1:]):  # each cell: results.json's clean and protected means
        want = ["–" if e.get(c) is None else f"{e[c]:.4f}" for k in keys for c in ("clean_" + k, k)]
        assert [x for cell in r[4:] for x in cell.split(" → ")] == want
    none, pgd = rows[1][4:], rows[2][4:]
    assert all(a.split(" → ")[0] == a.split(" → ")[1] for a in none)  # no defense: the protected swap is the clean one
    assert [a.split(" → ")[0] for a in pgd] == [a.split(" → ")[0] for a in none]  # the same clean swaps
    assert pgd != none  # one PGD step moves the swap's numbers
    assert "<b>experimental weights, not fit for reporting:</b>" in html and "not a real swapper" in html
    plain = render_html(json.loads((ROOT / "tests" / "data" / "report-run" / "results.json").read_text()),
                        ROOT / "tests" / "data" / "report-run")
    assert 'id="swap-table"' not in plain and "Face swaps" not in plain


def _photos(out, gi):
    """The run's photos and partners at the generator's input, saved as tensors beside the run (for the test)."""
    from pdbench.assets import resolve
    from pdbench.data import FaceFolder

    ds = FaceFolder(resolve("celeba-10k-89px", check=False) / "images", gi["resolution"])
    names = {Path(f).name: i for i, f in enumerate(ds.files)}
    paths = []
    for k, col in enumerate(("photo", "partner")):
        p = Path(out) / f"{col}.pt"
        torch.save(ds.load([names[pair[k]] for pair in gi["swap_pairs"]]), p)
        paths.append(p)
    return paths


def test_the_role_is_in_the_content_key_and_the_cells(celeba_dir, tmp_path):
    """The other role is another config: its cells have other cache files, and a rerun into the first run's
    folder is refused instead of reusing them."""
    from pdbench.bench.runner import make_plan

    a, b = _cfg(tmp_path / "r", "source"), _cfg(tmp_path / "r", "target")
    assert a.content_key() != b.content_key()
    files = [{str(f) for c in make_plan(cfg, torch.device("cpu"), tmp_path / "r").cells for f in c.cache_files()}
             for cfg in (a, b)]
    assert files[0] and not files[0] & files[1]
    run(_cfg(tmp_path / "r", "source", defenses=["none"]), progress=False)
    with pytest.raises(InputError, match="holds the results of another config"):
        run(_cfg(tmp_path / "r", "target", defenses=["none"]), progress=False)


@pytest.mark.parametrize("swap, generators, match", [
    ({"rol": "source"}, ["simswap"], r"unknown key 'rol' in swap.*Did you mean 'role'"),
    ({"role": "sorce"}, ["simswap"], r"swap.role must be source .* got 'sorce'.*Did you mean 'source'"),
    ({}, ["simswap"], r"swap.role must be source"),
    ({"role": "source", "judges": ["arcface"]}, ["simswap"], r"swap.judges names 'arcface'; known: mobilefacenet, dlib"),
    ({"role": "source", "seed": -1}, ["simswap"], r"swap.seed must be >= 0"),
    ({"role": "source"}, ["simswap", "aeswap"], r"'aeswap' takes the protected photo as the swap's target only"),
    ({"role": "target"}, ["stargan"], r"swap is set but no generator is a face swapper"),
    (None, ["simswap"], r"'simswap' is a face swap: add swap: \{role: source\}"),
    ("source", ["simswap"], r"swap must be a mapping"),
])
def test_bad_swap_blocks_are_one_line(swap, generators, match, tmp_path):
    d = {"dataset": {"asset": "celeba-10k-89px", "images": "images"}, "generators": generators, "defenses": ["none"],
         "metrics": ["mse"], "out": str(tmp_path / "r")}
    if swap is not None:
        d["swap"] = swap
    with pytest.raises(InputError, match=match) as e:
        BenchConfig.from_dict(d)
    assert "\n" not in str(e.value)


def test_a_missing_identity_file_or_a_swapper_in_transfer_is_one_line(celeba_dir, tmp_path):
    cfg = _cfg(tmp_path / "r", swap={"role": "target", "identities": "no_such_file.txt"})
    with pytest.raises(InputError, match="swap.identities .*no_such_file.txt does not exist") as e:
        run(cfg, progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="transfer names the face swapper 'simswap'"):
        _cfg(tmp_path / "t", generators=["simswap", "stargan"], transfer={"from": ["stargan"], "to": ["simswap", "stargan"]})


def test_aeswap_swaps_its_held_out_identities_and_the_example_config_loads(tmp_path):
    """aeswap (role target): its pairs are held-out LFW photos of its two people, each with a held-out photo of
    the other; configs/swap.yaml (simswap + aeswap; none, pgd, nullswap) validates."""
    from conftest import require_asset

    require_asset("lfw-gray-250")
    out = tmp_path / "ae"
    run(_cfg(out, "target", generators=["aeswap"], defenses=["none", {"name": "pgd", "steps": 2}]), progress=False)
    gi = json.loads((out / "results.json").read_text())["generators"]["aeswap"]
    assert gi["protected_role"] == "target" and "lfw-gray-250" in gi["pairs"]
    people = [[Path(n).stem.rsplit("_", 1)[0] for n in pair] for pair in gi["swap_pairs"]]
    assert people == [["George_W_Bush", "Colin_Powell"], ["Colin_Powell", "George_W_Bush"]]
    v = _values(out)
    assert max(v[("none", "mse")]) == 0.0 and min(v[("pgd", "mse")]) > 1e-4
    assert all(b < 0.01 for b in v[("none", "clean_swap_background_l1")])  # pasted inside the face: background kept
    assert all(not math.isnan(c) for c in v[("pgd", "swap_closer_mobilefacenet")])

    cfg = load_config(ROOT / "configs" / "swap.yaml")
    assert [g["name"] for g in cfg.generators] == ["simswap", "aeswap"] and cfg.swap["role"] == "target"
    assert [d["name"] for d in cfg.defenses] == ["none", "pgd", "nullswap"]
    assert "NOT FOR REPORTING" in (ROOT / "configs" / "swap.yaml").read_text()
