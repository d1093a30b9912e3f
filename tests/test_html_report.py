"""The HTML report and the computed findings, on a real (small) run's results.json kept in tests/data.

The fixture ``tests/data/report-run`` is a real run (stargan and attgan; none, pgd with 5 steps, fgsm;
settings none, pdb-paper, sweep-jpeg, sweep-blur; metrics mse, dsr_mse, cidr, psnr_adv; 4 held-out
CelebA faces) with its image grids cut to their first row. The browser test opens the page
in headless Chromium, as a person would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import table_cells

from pdbench.report import findings as F
from pdbench.report.html import load_results, render_html, write_html_report

RUN = Path(__file__).parent / "data" / "report-run"


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(RUN, dest)
    return dest


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((RUN / "results.json").read_text())


# ---------------------------------------------------------------- statistics by hand
def test_kendall_tau_by_hand():
    # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> (5 - 1) / 6
    assert F.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert F.kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    # tau-b with ties: a=(1,1,2,3), b=(1,2,2,3); 6 pairs, 1 tie in a, 1 in b, C=4, D=0 -> 4 / sqrt(5 * 5)
    assert F.kendall_tau([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)
    assert F.kendall_tau([1, 1], [1, 2]) is None  # no untied pair in a: undefined
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 9).tolist(), rng.integers(0, 4, 9).tolist()
    assert F.kendall_tau(a, b) == pytest.approx(scipy_stats.kendalltau(a, b).statistic)


def test_pearson_by_hand():
    # x = (0, 1, 2), y = (0, 1, 5): means 1, 2; sxy = 5, sxx = 2, syy = 14 -> 5 / sqrt(28)
    assert F.pearson([0, 1, 2], [0, 1, 5]) == pytest.approx(5 / 28 ** 0.5)
    assert F.pearson([0, 1], [0, 1]) is None and F.pearson([1, 1, 1], [0, 1, 2]) is None


def _curve(defense, mses, base=0.2):
    return {"generator": "g", "defense": defense, "sweep": "sweep-jpeg", "param": "quality", "baseline": {"mse": base},
            "points": [{"probe": f"jpeg_q{q}", "severity": q, "mse": m} for q, m in zip((100, 90, 80), mses)]}


def test_break_even_by_hand():
    meta = {"summary": [], "aggregates": {"axes": ["mse"], "rows": [], "sweeps": [
        _curve("a", [0.2, 0.06, 0.01]), _curve("b", [0.3, 0.2, 0.1]), _curve("c", [0.01] * 3, base=0.04),
        _curve("none", [0.0] * 3, base=0.0)]}}
    cost = {"g": {"sweep-jpeg": {"jpeg_q80": 31.5}}}
    rows = {b["defense"]: b for b in F._break_even(meta, cost)}
    assert set(rows) == {"a", "b", "c"}  # the none defense has nothing to break
    assert rows["a"]["status"] == "breaks" and rows["a"]["severity"] == 80 and rows["a"]["psnr"] == 31.5
    assert "JPEG quality 80" in rows["a"]["sentence"] and "31.5 dB" in rows["a"]["sentence"]
    assert rows["b"]["status"] == "holds" and rows["b"]["severity"] is None
    assert rows["c"]["status"] == "unprocessed"


# ---------------------------------------------------------------- findings of the real run
def test_findings_from_the_run(meta):
    f = F.compute(meta, measure=False)
    assert f["purification_psnr"] == meta["findings"]["purification_psnr"] and f["purification_note"] is None
    assert json.loads(json.dumps(f)) == meta["findings"]  # JSON-ready: results.json keeps them as computed
    items = {it["kind"]: it for it in f["items"]}
    assert list(items) == ["rank_change", "tradeoff", "transfer", "metric_agreement", "strongest_least_robust"]
    # rank change: stargan's AvgRanks tie (pgd leads on MSE, fgsm on CIDR), so the finding compares the
    # generators per axis too; tau recomputed here from the white-box values
    wb = {(e["generator"], e["defense"]): e for e in meta["summary"] if e["setting"] == "none"}
    ds = ["pgd(steps=5)", "fgsm"]
    pair = items["rank_change"]["data"]["pairs"][0]
    assert items["rank_change"]["enough"] and pair["tau"] is None and pair["defenses"] == ds
    for ax in ("mse", "cidr"):
        tau = F.kendall_tau([wb[("stargan", d)][ax] for d in ds], [wb[("attgan", d)][ax] for d in ds])
        assert pair["per_axis"][ax] == tau
    assert pair["per_axis"] == {"mse": 1.0, "cidr": -1.0}
    assert "AvgRanks tie (per axis: MSE τ = 1.00, CIDR τ = -1.00)" in items["rank_change"]["sentence"]
    # trade-off: Pearson over the 4 (generator, defense) pairs of white-box MSE and ROB pdb-paper
    rows = meta["aggregates"]["rows"]
    r = F.pearson([wb[(x["generator"], x["defense"])]["mse"] for x in rows], [x["rob"]["pdb-paper"] for x in rows])
    assert items["tradeoff"]["data"]["r"] == pytest.approx(r) and f"{r:.2f}" in items["tradeoff"]["sentence"]
    assert "ROB pdb-paper" in items["tradeoff"]["sentence"]
    assert not items["transfer"]["enough"] and "Not enough data (needs TE" in items["transfer"]["sentence"]
    cells = [e for e in meta["summary"] if e["defense"] != "none"]
    r_mc = F.pearson([e["mse"] for e in cells], [e["cidr"] for e in cells])
    assert items["metric_agreement"]["data"]["mse"]["r"] == pytest.approx(r_mc)
    assert "needs metric lpips" in items["metric_agreement"]["sentence"]  # the run measured no LPIPS
    assert {g["generator"] for g in items["strongest_least_robust"]["data"]["generators"]} == {"stargan", "attgan"}
    assert len(f["break_even"]) == 2 * 2 * 2  # generators × defenses (none left out) × sweeps
    md = F.findings_markdown(meta, f)
    assert md.startswith("## Findings") and "| generator | defense | sweep | break-even |" in md


def test_findings_say_what_is_missing(meta):
    one = {**meta, "summary": [e for e in meta["summary"] if e["generator"] == "stargan"],
           "aggregates": {**meta["aggregates"], "rows": [r for r in meta["aggregates"]["rows"] if r["generator"] == "stargan"],
                          "rob_sets": {}, "sweeps": []}}
    for r in one["aggregates"]["rows"]:
        r["rob"] = {}
    items = {it["kind"]: it for it in F.compute(one, measure=False)["items"]}
    assert items["rank_change"]["sentence"].startswith("Not enough data (needs ≥ 2 generators")
    assert items["tradeoff"]["sentence"].startswith("Not enough data (needs a ROB")
    assert items["strongest_least_robust"]["sentence"].startswith("Not enough data (needs a ROB")
    assert "Not enough data (needs a severity sweep" in F.findings_markdown(one)


def test_transfer_finding_and_te_column(meta, run_dir):
    te = {"axes": ["mse", "cidr"], "rows": [
        {"defense": "pgd(steps=5)", "source": "stargan", "te": 0.2, "targets": ["attgan"]},
        {"defense": "fgsm", "source": "stargan", "te": 0.6, "targets": ["attgan"]},
        {"defense": "pgd(steps=5)", "source": "attgan", "te": 0.4, "targets": ["stargan"]}]}
    with_te = {**meta, "aggregates": {**meta["aggregates"], "te": te}}
    item = next(it for it in F.compute(with_te, measure=False)["items"] if it["kind"] == "transfer")
    assert item["enough"] and item["data"]["share_below"] == pytest.approx(2 / 3)
    assert item["sentence"].startswith("2 of 3 R_TE values (67%) are below 0.5")
    html = render_html(with_te, run_dir)
    assert 'data-v="0.2">0.200</td>' in html and 'data-v="0.4">0.400</td>' in html  # TE beside ROB


@pytest.mark.assets
def test_purification_cost_measured_on_the_photos(meta, celeba_dir):
    one = {**meta, "config": {**meta["config"], "generators": [{"name": "stargan"}]}}
    one.pop("findings")
    cost, why = F.measure_purification(one)
    assert why is None and set(cost) == {"stargan"}
    for sweep, vals in cost["stargan"].items():  # what the run stored
        assert meta["findings"]["purification_psnr"]["stargan"][sweep] == pytest.approx(vals)
    jpeg = cost["stargan"]["sweep-jpeg"]
    assert list(jpeg) == ["jpeg_q100", "jpeg_q90", "jpeg_q80", "jpeg_q70", "jpeg_q60", "jpeg_q50"]
    assert 35 < jpeg["jpeg_q100"] < 60 and 20 < jpeg["jpeg_q50"] < jpeg["jpeg_q90"] < jpeg["jpeg_q100"]
    blur = cost["stargan"]["sweep-blur"]
    assert blur["blur_s0.5"] > blur["blur_s1.0"] > blur["blur_s3.0"] > 10


# ---------------------------------------------------------------- the page
def test_page_is_self_contained(run_dir):
    dest = write_html_report(run_dir)
    assert dest == run_dir / "report.html"
    html = dest.read_text()
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html)  # every resource inline
    assert "<script>" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert html.count('class="sortable leaderboard"') == 3  # overall + one per generator
    assert "over the PDB axes this run measured:\n<b>mse, cidr</b> (not measured: lpips, brisque)" in html
    assert html.count("data:image/svg+xml;base64,") >= 5  # jpeg + blur sweeps, MSE-CIDR, trade-off, rank change
    assert "Disruption vs noise σ</b>: Not in this run: add sweep-noise to settings." in html
    assert "LPIPS vs CIDR</b>: Not in this run: add lpips to metrics." in html
    assert html.count('alt="pgd(steps=5) on') == 2 and html.count('alt="fgsm on') == 2
    assert "Findings" in html and "Kendall τ" in html
    assert render_html(load_results(run_dir), run_dir) == html  # deterministic


def _three_generators() -> dict:
    """A run's meta by hand: three generators' white-box MSE (g3 with experimental weights), as in
    test_report's ranking test; AvgRanks g1 a 1, b 2, c 3, d 4; g2 a 3, b 2, c 1; g3 a 1, b and c 2.5."""
    from pdbench.report.pdb import pdb_aggregates

    mse = {"g1": {"a": 0.4, "b": 0.2, "c": 0.1, "d": 0.05}, "g2": {"a": 0.1, "b": 0.2, "c": 0.4},
           "g3": {"a": 0.3, "b": 0.2, "c": 0.2}}
    summary = [{"generator": g, "defense": d, "setting": "none", "mse": v, "n_images": 1}
               for g, vals in mse.items() for d, v in {"none": 0.0, **vals}.items()]
    meta = {"name": "t", "summary": summary, "aggregates": pdb_aggregates(summary), "metrics": {"mse": {}},
            "generators": {g: {"n_images": 1, "resolution": 64, "conditions": ["e"]} for g in mse}}
    meta["generators"]["g3"]["experimental"] = "trained 300 iterations"
    return meta


def test_ranking_per_generator_and_tau_matrix_as_in_summary_md(tmp_path, meta, run_dir):
    """The page's ranking table and τ-b matrix are findings.ranking_table's, as summary.md shows them (the
    same cells), with each τ's number of shared defenses; a run with one generator says what it needs."""
    three = _three_generators()
    html = render_html(three, tmp_path)
    md = F.ranking_markdown(three)
    rows = table_cells(html, "ranking-table")
    assert rows[0] == ["defense", "g1", "g2", "g3 (experimental)", "mean place"]
    assert rows[1:] == [["a", "1 (1.00)", "3 (3.00)", "1 (1.00)", "1.67"], ["b", "2 (2.00)", "2 (2.00)", "2.5 (2.50)", "2.17"],
                        ["c", "3 (3.00)", "1 (1.00)", "2.5 (2.50)", "2.17"], ["d", "4 (4.00)", "–", "–", "4.00"]]
    assert all("| " + " | ".join(r) + " |" in md for r in rows)  # summary.md's rows, cell for cell
    t = f"{2 / 6 ** 0.5:.2f}"  # τ-b of (1, 2, 3) vs (1, 2.5, 2.5), by hand in test_report
    assert table_cells(html, "tau-matrix") == [["", "g1", "g2", "g3"], ["g1", "1 (4)", "-1.00 (3)", f"{t} (3)"],
                                                ["g2", "-1.00 (3)", "1 (3)", f"-{t} (3)"], ["g3", f"{t} (3)", f"-{t} (3)", "1 (3)"]]
    for s in F.ranking_sentences(F.ranking_table(three)):
        assert s in md and f"<p>{s}</p>" in html
    assert "lowest -1.00 (g1 vs g2)" in html and "Experimental weights (marked)" in html
    # the kept run: stargan's AvgRanks tie, so no τ; its rows are summary.md's too
    html = render_html(meta, run_dir)
    rows = table_cells(html, "ranking-table")
    assert rows[1:] == [["pgd(steps=5)", "1.5 (1.50)", "1 (1.00)", "1.25"], ["fgsm", "1.5 (1.50)", "2 (2.00)", "1.75"]]
    assert table_cells(html, "tau-matrix")[1] == ["stargan", "1 (2)", "– (2)"]
    assert "<p>No τ: no two generators rank ≥ 2 common defenses without ties.</p>" in html
    one = {**three, "summary": [e for e in three["summary"] if e["generator"] == "g1"]}
    one["aggregates"] = {**three["aggregates"], "rows": [r for r in three["aggregates"]["rows"] if r["generator"] == "g1"]}
    html = render_html(one, tmp_path)
    assert 'id="ranking-table"' not in html and "Not in this run: needs ≥ 2 generators in the config" in html


def test_report_cli_and_bad_input(run_dir, tmp_path, capsys):
    from pdbench.cli import main

    out = tmp_path / "elsewhere.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0 and out.stat().st_size > 10_000
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "results.json not found" in err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    assert main(["report", str(tmp_path / "bad")]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "no chromium on PATH (Debian: apt-get install chromium)"
        if os.environ.get("PDBENCH_REQUIRE_ASSETS") == "1":
            pytest.fail(msg + "; PDBENCH_REQUIRE_ASSETS=1 makes this a failure")
        pytest.skip(msg)
    return exe


def test_page_in_headless_chromium(run_dir, tmp_path):
    from PIL import Image

    exe = _chromium()
    dest = write_html_report(run_dir).resolve()
    page = dest.as_uri()
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]

    def console(url):  # the page's DOM after its scripts ran, and what it wrote to the console (errors included)
        res = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout, [line for line in res.stderr.splitlines() if ":CONSOLE" in line]

    broken = tmp_path / "broken.html"  # the check below can fail: a script error is seen
    broken.write_text("<html><body><script>notDefined();</script></body></html>")
    assert any("Uncaught ReferenceError" in line for line in console(broken.as_uri())[1])
    html, messages = console(page)
    assert messages == []  # no script error, no warning
    assert 'data-report="ready"' in html  # the inline script ran to its end
    assert html.count('data-sortable="ready"') >= 5
    overall = re.search(r'<table class="sortable leaderboard" id="lb-overall".*?</table>', html, re.S).group(0)
    assert len(re.findall(r"<tr>", overall)) == 1 + 2  # header + pgd and fgsm
    assert "pgd(steps=5)" in overall and "fgsm" in overall
    # a click on a header sorts the rows: stargan's board by MSE, ascending then descending
    clicks = tmp_path / "clicks.html"
    clicks.write_text(dest.read_text().replace("</body>", """<script>
var t = document.getElementById("lb-0"), th = t.tHead.rows[0].cells[3], order = [];
function names() { return [].map.call(t.tBodies[0].rows, function (r) { return r.cells[1].textContent; }).join("|"); }
th.click(); order.push(names()); th.click(); order.push(names());
document.body.setAttribute("data-sorted", th.textContent + ": " + order.join(" / "));
</script></body>"""))
    dom, messages = console(clicks.as_uri())
    assert messages == [] and 'data-sorted="MSE ↑: fgsm|pgd(steps=5) / pgd(steps=5)|fgsm"' in dom
    shot = tmp_path / "shot.png"
    run = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", page],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (2000, 1280)
    assert img.std() > 20 and (img < 128).mean() > 0.01  # text, tables and plots, not a blank page
