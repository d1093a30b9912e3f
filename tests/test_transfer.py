"""Transfer in the runner: the source × target matrix, the attack made once per source, R_TE as PDB's code."""

import csv
import json

import pytest

from pdbench.bench import BenchConfig, run
from pdbench.errors import InputError
from pdbench.report.findings import compute as findings
from pdbench.report.pdb import pdb_aggregates, te_aggregates, te_table

S64 = "stargan(resolution=64)"  # the same StarGAN under another label: a target with the source's own view


def _cfg(celeba_dir, out, **over):
    d = {
        "name": "transfer-test",
        "dataset": {"path": str(celeba_dir / "images"), "attrs": str(celeba_dir / "list_attr_celeba_first20k.txt"),
                    "holdout": 1000, "split": "test", "n": 2, "seed": 0},
        "generators": ["stargan", "attgan", {"name": "stargan", "resolution": 64}],
        "defenses": ["none", {"name": "pgd", "steps": 2}],
        "settings": ["none", {"name": "jpeg", "quality": 75}],
        "metrics": ["mse", "lpips", "linf_adv"],
        "transfer": {"from": ["stargan", "attgan"], "to": ["stargan", "attgan", S64]},
        "batch_size": 2,
        "out": str(out),
    }
    d.update(over)
    if d["transfer"] is None:
        del d["transfer"]
    return BenchConfig.from_dict(d)


def _rows(path):
    return [r for r in csv.DictReader(open(path)) if r["metric"] != "protect_seconds_per_image"]


@pytest.fixture(scope="module")
def transfer_run(celeba_dir, tmp_path_factory):
    """One real run of the matrix, with every call to PGD's protect counted (by the generator attacked)."""
    from pdbench.defenses.pgd import PGD

    out = tmp_path_factory.mktemp("transfer")
    calls = []
    orig = PGD.protect

    def counted(self, x, target, *a, **k):
        calls.append(x.shape)
        return orig(self, x, target, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(PGD, "protect", counted)
    try:
        first = run(_cfg(celeba_dir, out), progress=False)
        n_first = len(calls)
        again = run(_cfg(celeba_dir, out), progress=False)
    finally:
        mp.undo()
    return {"out": out, "first": first, "again": again, "calls_first": n_first, "calls": len(calls),
            "rows": _rows(out / "results.csv"), "meta": json.loads((out / "results.json").read_text())}


def test_attack_runs_once_per_source_and_is_reused(transfer_run):
    # 3 generators × 1 batch: PGD ran 3 times, although stargan's and attgan's perturbations were judged on 2
    # targets each and under 2 settings; a rerun reads everything back
    assert transfer_run["calls_first"] == 3
    assert transfer_run["first"]["computed"] == 6  # 3 generators × 2 defenses
    assert transfer_run["again"]["computed"] == 0 and transfer_run["again"]["reused"] == 6
    assert transfer_run["calls"] == 3


def test_matrix_shape(transfer_run):
    rows = transfer_run["rows"]
    pairs = {(r["source"], r["target"]) for r in rows}
    assert pairs == {("stargan", "stargan"), ("attgan", "attgan"), (S64, S64),  # white box
                     ("stargan", "attgan"), ("stargan", S64), ("attgan", "stargan"), ("attgan", S64)}
    for s, t in pairs:
        mine = [r for r in rows if (r["source"], r["target"]) == (s, t)]
        assert all(r["generator"] == t for r in mine)  # a transfer row's generator is the target judging it
        assert len(mine) == 2 * 2 * 2 * 3  # images × defenses × settings × metrics
    te = transfer_run["meta"]["aggregates"]["te"]
    assert sorted((p["source"], p["target"]) for p in te["pairs"] if p["defense"] == "pgd(steps=2)") == \
        sorted([("attgan", S64), ("attgan", "stargan"), ("stargan", S64), ("stargan", "attgan")])
    assert {(r["defense"], r["source"]) for r in te["rows"]} == {("pgd(steps=2)", "stargan"), ("pgd(steps=2)", "attgan")}
    assert te["axes"] == ["mse", "lpips"]
    by = {(r["generator"], r["defense"]): r for r in transfer_run["meta"]["aggregates"]["rows"]}
    assert by[("stargan", "pgd(steps=2)")]["te"] == next(r["te"] for r in te["rows"] if r["source"] == "stargan")
    assert by[(S64, "pgd(steps=2)")]["te"] is None  # only a target
    md = (transfer_run["out"] / "summary.md").read_text()
    assert "| generator | defense | MSE ↑ | LPIPS ↑ | AvgRank ↓ | R_ROB ↑ | TE ↑ |" in md
    assert "| pgd(steps=2) | stargan | WB | " in md and "### Transfer: R_TE" in md
    item = next(i for i in transfer_run["meta"]["findings"]["items"] if i["kind"] == "transfer")
    assert item["enough"] and item["data"]["n"] == 4


def test_source_equal_to_target_is_the_white_box_row_exactly(transfer_run, celeba_dir, tmp_path):
    rows = transfer_run["rows"]
    key = lambda r: (r["image"], r["defense"], r["setting"], r["metric"])  # noqa: E731
    bb = {key(r): r["value"] for r in rows if (r["source"], r["target"]) == ("stargan", S64)}
    wb = {key(r): r["value"] for r in rows if (r["source"], r["target"]) == (S64, S64)}
    assert bb == wb and len(bb) == 24  # the same weights and view: x_adv fed as it is, judged as its own white box
    pair = next(p for p in transfer_run["meta"]["aggregates"]["te"]["pairs"]
                if (p["defense"], p["source"], p["target"]) == ("pgd(steps=2)", "stargan", S64))
    assert pair["r_te"] == 1.0
    # the white-box rows do not change with a transfer block: the same run without one gives them exactly
    run(_cfg(celeba_dir, tmp_path / "plain", generators=["stargan", "attgan"], transfer=None), progress=False)
    alone = {(r["generator"],) + key(r): r["value"] for r in _rows(tmp_path / "plain" / "results.csv")}
    with_tr = {(r["generator"],) + key(r): r["value"] for r in rows
               if r["source"] == r["target"] and r["generator"] in ("stargan", "attgan")}
    assert alone == with_tr


def test_carried_perturbation_on_another_view(transfer_run):
    """StarGAN reads the whole 89 px square, AttGAN its central 170/178: the perturbation reaches the other
    through the published photo. No perturbation changes nothing; PGD's stays within ε (+1 level of rounding)."""
    rows = transfer_run["rows"]
    for s, t in (("stargan", "attgan"), ("attgan", "stargan")):
        mine = [r for r in rows if (r["source"], r["target"]) == (s, t)]
        assert all(float(r["value"]) == 0.0 for r in mine if r["defense"] == "none" and r["setting"] == "none"
                   and r["metric"] in ("mse", "linf_adv"))
        linf = [float(r["value"]) for r in mine if r["defense"] == "pgd(steps=2)" and r["metric"] == "linf_adv"]
        assert 0 < max(linf) <= 7 / 127.5 + 1e-6
        mse = [float(r["value"]) for r in mine if r["defense"] == "pgd(steps=2)" and r["metric"] == "mse"
               and r["setting"] == "none"]
        assert min(mse) > 0


def test_r_te_formula_on_hand_made_numbers():
    """PDB's transferability_evaluation.py: per pair the mean over the axes of min(1, BB / WB), WB the target's
    own white box; a quality axis with WB 0 counts 0; TE(source) = mean over its targets."""
    e = lambda d, s, t, **v: {"defense": d, "source": s, "target": t, **v}  # noqa: E731
    entries = [
        e("pgd", "A", "A", mse=0.4, lpips=0.2, cidr=0.5), e("pgd", "B", "B", mse=0.1, lpips=0.0, cidr=0.2),
        e("pgd", "C", "C", mse=0.2, lpips=0.1, cidr=0.4),
        e("pgd", "A", "B", mse=0.05, lpips=0.3, cidr=0.1),  # mse 0.5, lpips WB 0 -> 0, cidr 0.5
        e("pgd", "A", "C", mse=0.4, lpips=0.05, cidr=0.1),  # clipped 1, 0.5, 0.25
        e("pgd", "B", "A", mse=0.1, lpips=0.1, cidr=0.5),  # 0.25, 0.5, 1
        e("none", "A", "B", mse=0.0, lpips=0.0, cidr=0.0),  # no defense: never scored
    ]
    te = te_aggregates(entries)
    pairs = {(p["source"], p["target"]): p for p in te["pairs"]}
    assert set(pairs) == {("A", "B"), ("A", "C"), ("B", "A")}
    assert pairs[("A", "B")]["ratios"] == {"mse": 0.5, "lpips": 0.0, "cidr": 0.5}
    assert pairs[("A", "B")]["r_te"] == pytest.approx(1 / 3)
    assert pairs[("A", "C")]["r_te"] == pytest.approx((1 + 0.5 + 0.25) / 3)
    rows = {r["source"]: r for r in te["rows"]}
    assert rows["A"]["te"] == pytest.approx((1 / 3 + 1.75 / 3) / 2) and rows["A"]["targets"] == ["B", "C"]
    assert rows["B"]["te"] == pytest.approx(1.75 / 3)
    assert rows["A"]["cidr"] == pytest.approx(0.1)  # PDB's raw transfer CIDR: BB identity values, not normalised
    table = te_table(te)
    assert "| pgd | A | WB | 0.333 | 0.583 | 0.458 |" in table
    # in PDB's table: TE of a (generator, defense) row is TE with that generator as the source
    summary = [{"generator": g, "defense": "pgd", "setting": "none", "mse": v} for g, v in (("A", 0.4), ("B", 0.1))]
    agg = pdb_aggregates(summary, te_entries=entries)
    assert {r["generator"]: r["te"] for r in agg["rows"]} == {"A": rows["A"]["te"], "B": rows["B"]["te"]}
    meta = {"summary": summary, "aggregates": agg}
    item = next(i for i in findings(meta, measure=False)["items"] if i["kind"] == "transfer")
    assert item["data"]["share_below"] == pytest.approx(1 / 3) and item["data"]["n"] == 3  # A->B is below 0.5
    assert "1 of 3 R_TE values" in item["sentence"]


@pytest.mark.parametrize("block, message", [
    ({"form": ["stargan"]}, "unknown key 'form' in transfer; known: from, settings, to. Did you mean 'from'?"),
    ({"from": ["stargn"]}, "transfer.from names 'stargn', which is not one of the configured generators "
                           "(stargan, attgan); list it under 'generators' first. Did you mean 'stargan'?"),
    ({"to": ["attgan", "attgan"]}, "transfer.to lists 'attgan' twice"),
    ({"from": ["stargan"], "to": ["stargan"]}, "no source -> target pair with different generators"),
    ({"from": []}, "transfer.from must be a non-empty list"),
    ({"settings": []}, "transfer.settings must be a non-empty list of setting labels or probe set names"),
    ({"settings": ["none", "none"]}, "transfer.settings lists 'none' twice"),
    (["stargan", "attgan"], "transfer must be a mapping"),
])
def test_transfer_block_errors_are_one_line(celeba_dir, tmp_path, block, message):
    with pytest.raises(InputError) as e:
        _cfg(celeba_dir, tmp_path, generators=["stargan", "attgan"], transfer=block)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_without_a_transfer_block_the_config_key_is_unchanged(celeba_dir, tmp_path):
    """A config without ``transfer`` hashes as before (its run folder stays its own); ``transfer: {}`` is the
    full matrix of the configured generators."""
    import hashlib

    with_tr = _cfg(celeba_dir, tmp_path, generators=["stargan", "attgan"], transfer={})
    assert with_tr.transfer == {"from": ["stargan", "attgan"], "to": ["stargan", "attgan"]}
    plain = _cfg(celeba_dir, tmp_path, generators=["stargan", "attgan"], transfer=None)
    d = plain.to_dict()
    assert "transfer" not in d
    old = {k: v for k, v in d.items() if k not in ("out", "device", "name", "executor")}
    assert plain.content_key() == hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert with_tr.content_key() != plain.content_key()


def test_transfer_settings_judges_the_targets_under_the_chosen_settings_only(celeba_dir, tmp_path):
    """``transfer: {settings: [none]}``: the white-box rows keep every setting, the targets judge unprocessed
    only (PDB's TE), TE is the same as with every setting judged, and a name the run lacks is one line."""
    over = dict(generators=["stargan", "attgan"], defenses=["none", {"name": "pgd", "steps": 2}], metrics=["mse"])
    full = run(_cfg(celeba_dir, tmp_path / "full", transfer={}, **over), progress=False)
    only = run(_cfg(celeba_dir, tmp_path / "none", transfer={"settings": ["none"]}, **over), progress=False)
    rows = _rows(only["results"])
    bb = [r for r in rows if r["source"] != r["target"]]
    assert bb and {r["setting"] for r in bb} == {"none"}
    assert {r["setting"] for r in rows if r["source"] == r["target"]} == {"none", "jpeg(quality=75)"}
    assert {r["setting"] for r in _rows(full["results"]) if r["source"] != r["target"]} == {"none", "jpeg(quality=75)"}
    te = lambda res: json.loads(open(res["json"]).read())["aggregates"]["te"]["rows"]  # noqa: E731
    assert te(only) == te(full) and len(te(only)) == 2
    with pytest.raises(InputError) as e:
        _cfg(celeba_dir, tmp_path, transfer={"settings": ["jpeg"]}, **over).validate()
    assert "transfer.settings names 'jpeg', which is not a setting of the run" in str(e.value) and "\n" not in str(e.value)
