"""A self-contained HTML report of a benchmark run, rendered from its results.json (the single source of truth).

:func:`write_html_report` reads ``<run_dir>/results.json`` and the image grids it names and writes
``<run_dir>/report.html``: one file that opens without a network (inline CSS and JS, every image a
base64 data URI). It holds

* a summary line (with the run's wall time and executor) and the per-cell timing table (protect
  seconds per image, the wall seconds of the cell's batches);
* sortable leaderboards, one per generator and one overall: AvgRank over the PDB axes the run
  measured (said which), the white-box value of each axis, ROB per probe set / R_ROB, and TE;
* for a run with ≥ 2 generators, the defense ranking per generator (one column per generator) and the
  Kendall τ-b matrix between the generators' rankings with the number of defenses each pair shares
  (:func:`pdbench.report.findings.ranking_table`, what summary.md shows);
* for a run with a ``swap`` block, the face swaps' table (:func:`pdbench.report.markdown.swap_table`, as
  in summary.md): per cell, closer-to-source rate and cosine to the source under each identity judge,
  landmark NME and background L1, clean swap → swap of the protected photo;
* the findings of :mod:`pdbench.report.findings` (sentences computed from the numbers) and each
  defense's break-even purification;
* plots (Matplotlib, Agg, inlined SVG): disruption vs severity per sweep, MSE vs CIDR and LPIPS vs
  CIDR with Pearson r, white-box MSE vs ROB, AvgRank across generators. A plot whose data the run
  lacks is replaced by a one-line note naming the setting or metric that would produce it;
* per defense, the image grid cut from the runner's grid PNG: photo, protected photo, perturbation
  (amplified so ±ε spans black to white), deepfake of the photo, deepfake of the protected photo.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import write_text
from . import findings as F
from .markdown import SWAP_INTRO, images_text, partial_note, swap_table, swap_value
from .pdb import AXES

TEMPLATE = "report.html.j2"
GRID_PAD = 2  # pdbench.report.grid.defense_grid's default padding
SWEEP_NOTES = {"sweep-jpeg": "JPEG quality", "sweep-blur": "blur σ", "sweep-noise": "noise σ", "sweep-scale": "scale"}


def _b64(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _png(array: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return _b64(buf.getvalue(), "image/png")


# ---------------------------------------------------------------- plots
def _figure(w: float = 6.4, h: float = 3.6):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(figsize=(w, h), layout="constrained")


def _svg(fig) -> str:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "pdbench", "svg.fonttype": "none"}):  # deterministic, small
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return _b64(buf.getvalue(), "image/svg+xml")


def _plot(title: str, svg: str | None = None, note: str | None = None, caption: str = "") -> dict:
    return {"title": title, "src": svg, "note": note, "caption": caption}


def _sweep_plots(meta: dict) -> list[dict]:
    from ..transforms.probe_sets import PROBE_SETS

    curves = meta.get("aggregates", {}).get("sweeps", [])
    axes = meta.get("aggregates", {}).get("axes", [])
    lead = "mse" if "mse" in axes else (axes[0] if axes else None)
    out = []
    for name, what in SWEEP_NOTES.items():
        title = f"Disruption vs {what}"
        cs = [c for c in curves if c["sweep"] == name]
        if not cs or lead is None:
            need = f"add {name} to settings" if not cs else "add mse (or another PDB axis) to metrics"
            out.append(_plot(title, note=f"Not in this run: {need}."))
            continue
        gens = list(dict.fromkeys(c["generator"] for c in cs))
        fig = _figure(3.4 * len(gens) + 0.6, 3.2)
        axs = fig.subplots(1, len(gens), squeeze=False)[0]
        for ax, g in zip(axs, gens):
            for c in (c for c in cs if c["generator"] == g):
                pts = [p for p in c["points"] if p.get(lead) is not None]
                xs = [p["severity"] for p in pts]
                ax.plot(xs, [p[lead] for p in pts], marker="o", ms=3, label=c["defense"])
            if lead == "mse":
                ax.axhline(F.MSE_SUCCESS, color="k", ls="--", lw=0.8, label=f"success {F.MSE_SUCCESS}")
            sev = [pr[2] for pr in PROBE_SETS[name].probes]
            if len(sev) > 1 and sev[0] > sev[-1]:
                ax.invert_xaxis()  # mildest on the left
            ax.set_title(g, fontsize=10)
            ax.set_xlabel(PROBE_SETS[name].param + " (milder → stronger)")
            ax.set_ylabel(f"{lead.upper()}(G(x), G(T(x_adv)))")
            ax.grid(alpha=0.3)
        axs[0].legend(fontsize=7)
        out.append(_plot(title, _svg(fig), caption=f"{PROBE_SETS[name].description}; mean over images; the none "
                                                    f"defense shows what the probe alone does to the deepfake."))
    return out


def _scatter_plots(meta: dict) -> list[dict]:
    cells = [e for e in meta.get("summary", []) if e["defense"] != "none"]
    out = []
    for m in ("mse", "lpips"):
        title = f"{m.upper()} vs CIDR"
        pts = [e for e in cells if e.get(m) is not None and e.get("cidr") is not None]
        if len(pts) < 3:
            need = [x for x in (m, "cidr") if not any(e.get(x) is not None for e in cells)]
            out.append(_plot(title, note=f"Not in this run: add {' and '.join(need) or 'more defenses or settings'} "
                                         f"to metrics." if need else "Not enough protected cells (needs ≥ 3)."))
            continue
        r = F.pearson([e[m] for e in pts], [e["cidr"] for e in pts])
        fig = _figure(4.6, 3.6)
        ax = fig.subplots()
        for g in dict.fromkeys(e["generator"] for e in pts):
            ge = [e for e in pts if e["generator"] == g]
            ax.scatter([e[m] for e in ge], [e["cidr"] for e in ge], s=14, label=g, alpha=0.8)
        ax.set_xlabel(f"{m.upper()} ↑")
        ax.set_ylabel("CIDR ↑")
        ax.set_title(f"Pearson r = {F._fmt(r, '.2f')} over {len(pts)} cells", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        out.append(_plot(title, _svg(fig), caption="one point per (generator, defense, setting) cell, defense none left out"))
    return out


def _tradeoff_plot(meta: dict) -> dict:
    title = "White-box disruption vs robustness"
    agg = meta.get("aggregates", {})
    key, label = F.rob_choice(agg)
    wb = {(e["generator"], e["defense"]): e for e in meta.get("summary", []) if e["setting"] == "none"}
    pts = [(r["generator"], r["defense"], wb.get((r["generator"], r["defense"]), {}).get("mse"), F.rob_value(r, key))
           for r in agg.get("rows", [])]
    pts = [p for p in pts if p[2] is not None and p[3] is not None]
    if not pts:
        return _plot(title, note="Not in this run: add a ROB probe set (pdb-paper or pdb-code) to settings and mse to "
                                 "metrics.")
    fig = _figure(4.6, 3.6)
    ax = fig.subplots()
    for g in dict.fromkeys(p[0] for p in pts):
        gp = [p for p in pts if p[0] == g]
        ax.scatter([p[2] for p in gp], [p[3] for p in gp], s=22, label=g)
        for p in gp:
            ax.annotate(p[1], (p[2], p[3]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("white-box MSE ↑ (setting none)")
    ax.set_ylabel(f"{label} ↑")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _plot(title, _svg(fig), caption="upper right: strong and robust; a falling cloud is a trade-off")


def _rank_plot(meta: dict) -> dict:
    title = "AvgRank across generators"
    rows = [r for r in meta.get("aggregates", {}).get("rows", []) if r.get("avg_rank") is not None]
    gens = list(dict.fromkeys(r["generator"] for r in rows))
    if len(gens) < 2:
        return _plot(title, note="Not in this run: needs ≥ 2 generators in the config.")
    fig = _figure(4.6, 3.6)
    ax = fig.subplots()
    defs = list(dict.fromkeys(r["defense"] for r in rows))
    for k, d in enumerate(defs):
        by = {r["generator"]: r["avg_rank"] for r in rows if r["defense"] == d}
        xs = [i for i, g in enumerate(gens) if g in by]
        off = (k - (len(defs) - 1) / 2) * 0.04  # tied ranks stay visible
        ax.plot(xs, [by[gens[i]] + off for i in xs], marker="o", label=d)
    ax.set_xticks(range(len(gens)), gens)
    ax.set_yticks(range(1, len(defs) + 1))
    ax.set_ylim(len(defs) + 0.5, 0.5)  # rank 1 on top
    ax.set_ylabel("AvgRank (1 = most disruptive)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _plot(title, _svg(fig), caption="crossing lines: the ranking changes with the generator (lines offset by a few "
                                         "hundredths so that ties stay visible)")


# ---------------------------------------------------------------- tables
def _num(v, spec: str = ".3f") -> dict:
    return {"v": v, "t": F._fmt(v, spec)}


def _leaderboards(meta: dict) -> tuple[list[dict], list[str]]:
    agg = meta.get("aggregates", {})
    axes = agg.get("axes", [])
    rob_sets = list(agg.get("rob_sets", {}))
    loose = any(r.get("r_rob") is not None for r in agg.get("rows", []))
    te = {}
    for r in F.te_rows(meta):
        te.setdefault(r["defense"], {})[r["source"]] = r["te"]
    wb = {(e["generator"], e["defense"]): e for e in meta.get("summary", []) if e["setting"] == "none"}
    head = ["#", "defense", "AvgRank ↓"] + [f"{a.upper()} ↑" for a in axes] + \
        (["R_ROB ↑"] if loose else []) + [f"ROB {n} ↑" for n in rob_sets] + ["TE ↑", "protect s/image"]
    boards = []
    gens = list(dict.fromkeys(r["generator"] for r in agg.get("rows", [])))
    for g in gens:
        rows = sorted((r for r in agg["rows"] if r["generator"] == g), key=lambda r: (r["avg_rank"] is None, r["avg_rank"] or 0))
        body = []
        for i, r in enumerate(rows, 1):
            e = wb.get((g, r["defense"]), {})
            cells = [_num(i, "d"), {"v": None, "t": r["defense"]}, _num(r["avg_rank"], ".2f")]
            cells += [_num(e.get(a), ".4f") for a in axes]
            cells += [_num(r.get("r_rob"))] if loose else []
            cells += [_num(r.get("rob", {}).get(n)) for n in rob_sets]
            cells += [_num(te.get(r["defense"], {}).get(g)), _num(e.get("protect_seconds_per_image"), ".3f")]
            body.append(cells)
        boards.append({"title": f"Generator {g}", "id": f"lb-{len(boards)}", "head": head, "rows": body})
    if len(gens) > 1:
        ohead = ["#", "defense", "mean AvgRank ↓"] + [f"AvgRank {g}" for g in gens] + \
            (["mean R_ROB ↑"] if loose else []) + [f"mean ROB {n} ↑" for n in rob_sets] + ["mean TE ↑"]
        defs = list(dict.fromkeys(r["defense"] for r in agg["rows"]))
        mean = lambda vs: (sum(v for v in vs if v is not None) / len([v for v in vs if v is not None])  # noqa: E731
                           if any(v is not None for v in vs) else None)
        orow = []
        for d in defs:
            rs = {r["generator"]: r for r in agg["rows"] if r["defense"] == d}
            cells = [{"v": None, "t": d}, _num(mean([r["avg_rank"] for r in rs.values()]), ".2f")]
            cells += [_num(rs[g]["avg_rank"] if g in rs else None, ".2f") for g in gens]
            cells += [_num(mean([r.get("r_rob") for r in rs.values()]))] if loose else []
            cells += [_num(mean([r.get("rob", {}).get(n) for r in rs.values()])) for n in rob_sets]
            cells += [_num(mean(list(te.get(d, {}).values())))]
            orow.append(cells)
        orow.sort(key=lambda c: (c[1]["v"] is None, c[1]["v"] or 0))
        boards.insert(0, {"title": "Overall (mean over generators)", "id": "lb-overall", "head": ohead,
                          "rows": [[_num(i, "d")] + c for i, c in enumerate(orow, 1)]})
    return boards, axes


def _ranking(meta: dict) -> dict | None:
    """:func:`pdbench.report.findings.ranking_table` as the page's tables: per defense its place (AvgRank
    in brackets) under each generator and its mean place; the τ-b matrix, each cell with the number of
    defenses the two generators both ranked."""
    rt = F.ranking_table(meta)
    if rt is None:
        return None
    gens = [g["name"] for g in rt["generators"]]
    rows = [{"defense": r["defense"],
             "cells": [{"v": r["places"][g], "t": f"{r['places'][g]:g} ({r['avg_ranks'][g]:.2f})"} if g in r["places"]
                       else {"v": None, "t": "–"} for g in gens] + [_num(r["mean_place"], ".2f")]} for r in rt["rows"]]
    tau = [{"generator": a, "cells": [{"t": "1" if a == b else F._fmt(rt["tau"][a][b]["tau"], ".2f"), "n": rt["tau"][a][b]["n"],
                                       "diagonal": a == b} for b in gens]} for a in gens]
    return {"generators": rt["generators"], "rows": rows, "tau": tau, "sentences": F.ranking_sentences(rt),
            "title": F.RANKING_TITLE, "how": F.RANKING_HOW, "tau_title": F.TAU_TITLE, "tau_how": F.TAU_HOW}


def _swaps(meta: dict) -> dict | None:
    """:func:`pdbench.report.markdown.swap_table` as the page's table: each value cell "clean → protected"
    (summary.md's text), sorted by the protected swap's value."""
    st = swap_table(meta)
    if st is None:
        return None
    rows = [[{"v": None, "t": r[k]} for k in ("generator", "role", "defense", "setting")]
            + [{"v": "–" if prot is None else prot, "t": swap_value(clean, prot)} for clean, prot in r["values"]]
            for r in st["rows"]]  # a data-v that is not a number ("–": no face found) sorts last
    return {"head": st["head"], "rows": rows, "intro": SWAP_INTRO}


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def _timing(meta: dict) -> tuple[list[list], str]:
    """Per (generator, defense): images, protect s/image and in all, the plan cells (batches) and their
    wall seconds (protecting, the generator's outputs and every metric in every setting, as measured by
    the run that computed them); and the summary line, with the run's wall time and executor."""
    cells = [e for e in meta.get("summary", []) if e["setting"] == "none" and e.get("protect_seconds_per_image") is not None]
    if not cells:
        cells = list({(e["generator"], e["defense"]): e for e in meta.get("summary", [])
                      if e.get("protect_seconds_per_image") is not None}.values())
    wall: dict[tuple, list] = {}
    for c in meta.get("cells", []):
        wall.setdefault((c["generator"], c["defense"]), []).append(c.get("seconds"))
    rows = []
    for e in cells:
        w = wall.get((e["generator"], e["defense"]), [])
        known = None if not w or None in w else sum(w)
        rows.append([e["generator"], e["defense"], e.get("n_images"), F._fmt(e["protect_seconds_per_image"], ".4f"),
                     F._fmt(e["protect_seconds_per_image"] * (e.get("n_images") or 0), ".2f"), len(w) or "–",
                     F._fmt(known, ".2f")])
    gens = meta.get("generators", {})
    defenses = list(dict.fromkeys(e["defense"] for e in meta.get("summary", [])))
    settings = list(dict.fromkeys(e["setting"] for e in meta.get("summary", [])))
    n = "/".join(map(str, sorted({gi.get("n_images") for gi in gens.values()})))
    done = "/".join(map(str, sorted({gi["finished"]["images"] for gi in gens.values() if "finished" in gi})))
    images = f"{done} of {n} planned images" if done else f"{n} images"  # a partial run: those with a finished cell
    total = sum(e["protect_seconds_per_image"] * (e.get("n_images") or 0) for e in cells)
    slow = max((e for e in cells if e["defense"] != "none"), key=lambda e: e["protect_seconds_per_image"], default=None)
    line = (f"{_n(len(gens), 'generator')} ({', '.join(gens)}) × {_n(len(defenses), 'defense')} × "
            f"{_n(len(settings), 'setting')} × {_n(len(meta.get('metrics', {})), 'metric')} on "
            f"{images}: {_n(len(meta.get('summary', [])), 'cell')}; protecting took {total:.1f} s "
            "in all")
    if slow:
        line += f", slowest {slow['defense']} on {slow['generator']} ({slow['protect_seconds_per_image']:.3f} s/image)"
    run = meta.get("run") or {}
    if run.get("seconds") is not None:
        from tqdm import tqdm

        workers = run.get("workers") or 1
        line += (f". This run: {run.get('computed', 0)} of {_n(run.get('cells', 0), 'batch cell')} computed, "
                 f"{run.get('reused', 0)} reused, in {tqdm.format_interval(run['seconds'])} on {run.get('executor', 'local')}"
                 + (f" ({workers} workers)" if workers > 1 else ""))
        if run.get("images_per_second"):
            line += f", {run['images_per_second']:.2f} images/s"
    return rows, line + "."


def _summary_table(meta: dict) -> tuple[list[str], list[list]]:
    cols = list(meta.get("metrics", {}))
    head = ["generator", "defense", "setting"] + cols
    rows = [[e["generator"], e["defense"], e["setting"]] + [_num(e.get(c), ".4f") for c in cols]
            for e in meta.get("summary", [])]
    return head, rows


# ---------------------------------------------------------------- image grids
def _defense_sections(meta: dict, run_dir: Path) -> tuple[list[dict], list[str]]:
    from PIL import Image

    from ..defenses import EPS
    from ..registry import spec_label

    specs = [d if isinstance(d, dict) else {"name": d} for d in meta.get("config", {}).get("defenses", [])]
    labels = [spec_label(d) for d in specs]
    sections = {lab: {"defense": lab, "grids": []} for lab in labels if lab != "none"}
    notes = []
    for g, gi in meta.get("generators", {}).items():
        if not gi.get("grid"):
            notes.append(f"{g}: no image grid in results.json.")
            continue
        path = run_dir / gi["grid"]
        if not path.is_file():
            notes.append(f"{g}: image grid {gi['grid']} is missing from {run_dir}.")
            continue
        img = np.asarray(Image.open(path).convert("RGB"))
        s, p = int(gi["resolution"]), GRID_PAD
        n_rows, n_cols = (img.shape[0] - p) // (s + p), (img.shape[1] - p) // (s + p)
        if n_cols != 2 + 2 * len(labels) or n_rows < 1:
            notes.append(f"{g}: image grid {gi['grid']} has {n_cols} columns, not the {2 + 2 * len(labels)} of "
                         f"this run's defenses; shown whole.")
            sections.setdefault("(whole grid)", {"defense": "(whole grid)", "grids": []})["grids"].append(
                {"generator": g, "src": _png(img)})
            continue

        def tile(i, j):
            return img[p + i * (s + p):p + i * (s + p) + s, p + j * (s + p):p + j * (s + p) + s].astype(np.int16)

        for k, lab in enumerate(labels):
            if lab == "none":
                continue
            rows = []
            for i in range(n_rows):
                x, fake, x_adv, fake_adv = tile(i, 0), tile(i, 1), tile(i, 2 + 2 * k), tile(i, 3 + 2 * k)
                delta = np.clip(127.5 + (x_adv - x) * (1.0 / EPS), 0, 255)  # ±ε of [-1,1] = ±EPS·127.5 levels → full range
                row = [x, x_adv, delta, fake, fake_adv]
                rows.append(np.concatenate([np.pad(t, ((p, p), (p, p), (0, 0)), constant_values=255) for t in row], 1))
            sections[lab]["grids"].append({"generator": g, "src": _png(np.concatenate(rows, 0).astype(np.uint8))})
    return [v for v in sections.values() if v["grids"]], notes


def _section_facts(sections: list[dict], meta: dict, found: dict) -> None:
    """Per defense section, one line per generator: its white-box numbers, rank, ROB and break-even points."""
    agg = meta.get("aggregates", {})
    key, label = F.rob_choice(agg)
    wb = {(e["generator"], e["defense"]): e for e in meta.get("summary", []) if e["setting"] == "none"}
    rows = {(r["generator"], r["defense"]): r for r in agg.get("rows", [])}
    for sec in sections:
        facts = []
        for g in meta.get("generators", {}):
            e, r = wb.get((g, sec["defense"])), rows.get((g, sec["defense"]))
            if e is None:
                continue
            bits = [f"{a.upper()} {F._fmt(e.get(a), '.4f')}" for a in agg.get("axes", [])]
            if r is not None:
                bits.append(f"AvgRank {F._fmt(r.get('avg_rank'), '.2f')}")
                if key is not None:
                    bits.append(f"{label} {F._fmt(F.rob_value(r, key))}")
            bits += [f"{b['sweep']}: {b['sentence']}" for b in found.get("break_even", [])
                     if b["generator"] == g and b["defense"] == sec["defense"]]
            facts.append(f"{g}: " + "; ".join(bits))
        sec["facts"] = facts


# ---------------------------------------------------------------- page
def load_results(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise InputError(f"{path} not found: pass the folder of a finished `pdbench run` (it holds results.json)")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON ({e}); rerun `pdbench run` on that folder to rewrite it") from None
    if not isinstance(meta, dict) or "summary" not in meta:
        raise InputError(f"{path} has no 'summary': it is not a pdbench results.json; rerun `pdbench run`")
    return meta


def render_html(meta: dict, run_dir: str | Path, found: dict | None = None) -> str:
    """The report page for ``meta`` (results.json), with grids read from ``run_dir``."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from ..defenses import EPS

    run_dir = Path(run_dir)
    found = found if found is not None else F.compute(meta)
    boards, axes = _leaderboards(meta)
    missing_axes = [a for a in AXES if a not in axes]
    timing, line = _timing(meta)
    sec, grid_notes = _defense_sections(meta, run_dir)
    shead, srows = _summary_table(meta)
    plots = _sweep_plots(meta) + _scatter_plots(meta) + [_tradeoff_plot(meta), _rank_plot(meta)]
    agg = meta.get("aggregates", {})
    _section_facts(sec, meta, found)
    env = Environment(loader=PackageLoader("pdbench.report", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    be = []
    for b in found["break_even"]:
        at = F.severity_text(b["param"], b["severity"]) if b["status"] == "breaks" else \
            "already below unprocessed" if b["status"] == "unprocessed" else "never (holds at the strongest)"
        be.append([b["generator"], b["defense"], b["sweep"], at, F._fmt(b["mse"]), F._fmt(b["psnr"], ".1f")])
    return env.get_template(TEMPLATE).render(
        name=meta.get("name", "benchmark"), line=line, axes=axes, missing_axes=missing_axes, boards=boards,
        rob_sets=agg.get("rob_sets", {}), loose=sorted({s for r in agg.get("rows", []) for s in r.get("settings", [])}),
        timing=timing, findings=found, break_even=be, plots=plots, sections=sec, grid_notes=grid_notes,
        eps=EPS, shead=shead, srows=srows, ranking=_ranking(meta), swaps=_swaps(meta), partial=partial_note(meta),
        generators=meta.get("generators", {}), images={g: images_text(gi) for g, gi in meta.get("generators", {}).items()},
        metrics=meta.get("metrics", {}))


def write_html_report(run_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Render ``<run_dir>/results.json`` into ``dest`` (default ``<run_dir>/report.html``), atomically."""
    run_dir = Path(run_dir)
    meta = load_results(run_dir)
    dest = Path(dest) if dest is not None else run_dir / "report.html"
    write_text(dest, render_html(meta, run_dir))
    return dest
