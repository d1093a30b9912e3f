"""PDB's aggregate scores from per-cell means: ROB, TE and AvgRank, computed as PDB's code does.

PDB's disruption axes are MSE, LPIPS (AlexNet), CIDR (its ``relative_id``) and BRISQUE of G(x_adv);
pdbench uses those of them the run measured and says which (``axes`` in the result). All four are
read "higher = more disrupted". The ``none`` defense is left out of every aggregate.

* **ROB** (``robustness_evaluation.py``): for each probe T of a set, the mean over the axes of
  ``min(1, D(G(T(x_adv))) / D(G(x_adv)))`` with the means over images of each cell, then the mean over
  the set's probes. Quality axes (MSE, LPIPS, BRISQUE) divide by ``baseline + 1e-10``; the identity
  axis divides by the baseline itself and is dropped when the baseline is 0 or missing (PDB's
  3-metric fallback). A probe cell without a value on an axis counts 0 there (PDB reads a missing
  value as 0); an axis without a baseline value is not used; a probe that was not run is skipped.
  Ratios are clipped at 1 only, as in PDB. Each named probe set (``pdb-code``, ``pdb-paper``, see
  :mod:`pdbench.transforms.probe_sets`) gets its own ROB under its name; settings listed one by one
  are pooled into ``r_rob``, as before.
* **TE** (``transferability_evaluation.py``): for perturbations made against a source generator S
  and evaluated on a target T ≠ S (black box, BB), the mean over the axes of ``min(1, BB / WB)``
  where WB is T's own white-box result (perturbations made against T, evaluated on T); a quality
  axis with WB ≤ 0 counts 0, the identity axis is dropped when BB or WB is missing or WB ≤ 0. A pair
  missing a quality value is skipped, as is a target whose WB lacks one (or lacks identity when the
  identity axis is used). TE(S) = mean over the targets that remain; each pair's score is kept too
  (``pairs``: R_TE per (defense, source → target), the matrix). The runner's ``transfer`` block
  measures these unprocessed (setting ``none``); the TE column of PDB's table is TE(defense, source =
  the row's generator).
* **AvgRank** (paper): among one generator's defenses, unprocessed (setting ``none``), the mean of each
  defense's rank on the axes (1 = most disruptive; ties share their mean rank). ROB and TE are not
  ranked.
* **Sweeps** (``sweep-*`` sets): per defense, the disruption on each axis at each severity, with the
  retention (the ROB term of that probe) — a curve, as data.
"""

from __future__ import annotations

AXES = ("mse", "lpips", "cidr", "brisque")
AXIS_NAMES = {"mse": "MSE", "lpips": "LPIPS", "cidr": "CIDR", "brisque": "BRISQUE"}  # PDB's table headings
IDENTITY = "cidr"  # PDB's relative_id: treated as the identity axis in ROB and TE
EPS = 1e-10  # PDB's guard on the quality baselines of ROB


def _mean(vals: list[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def _axes_used(entries: list[dict], axes) -> list[str]:
    return [a for a in axes if any(a in e for e in entries)]


def retention(cell: dict, base: dict, axes) -> float | None:
    """PDB's per-probe ROB term: the mean over ``axes`` of the clipped processed / unprocessed ratios."""
    parts = []
    for a in axes:
        b = base.get(a)
        if b is None or (a == IDENTITY and not b):
            continue
        v = cell.get(a) or 0.0
        parts.append(min(1.0, v / b) if a == IDENTITY else min(1.0, v / (b + EPS)))
    return _mean(parts)


def tied_ranks(vals: dict[str, float]) -> dict[str, float]:
    """Rank 1 = highest value; tied values share the mean of their ranks (PDB's AvgRank ranks each axis so;
    the findings' ranking table places defenses by AvgRank with it too)."""
    order = sorted(vals, key=lambda d: -vals[d])
    out, i = {}, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and vals[order[j + 1]] == vals[order[i]]:
            j += 1
        for d in order[i:j + 1]:
            out[d] = (i + j) / 2 + 1
        i = j + 1
    return out


def _probe_groups(settings: list[str]) -> tuple[dict, list[str]]:
    """Named sets present ({set name: (ProbeSet, [(label, probe)])}) and the loose settings (not ``none``)."""
    from ..transforms.probe_sets import split_label

    sets: dict = {}
    loose = []
    for s in settings:
        hit = split_label(s)
        if hit:
            sets.setdefault(hit[0].name, (hit[0], []))[1].append((s, hit[1]))
        elif s != "none":
            loose.append(s)
    for ps, members in sets.values():  # the set's own order, whatever order the cells came in
        members.sort(key=lambda m: ps.probe_names().index(m[1]))
    return sets, loose


def sweep_curves(summary: list[dict], axes: tuple[str, ...] = AXES) -> list[dict]:
    """Severity curves of the ``sweep``-kind probe sets in ``summary``, one per (generator, defense, sweep).

    Each: ``{"generator", "defense", "sweep", "param", "baseline": {axis: value without processing},
    "points": [{"probe", "severity", "retention", axis: value, ...}, ...]}`` in the set's order
    (mildest first). ``retention`` is None for the ``none`` defense and where there is no baseline.
    """
    used = _axes_used(summary, axes)
    cells = {(e["generator"], e["defense"], e["setting"]): e for e in summary}
    out = []
    for g in dict.fromkeys(e["generator"] for e in summary):
        sets, _ = _probe_groups(list(dict.fromkeys(e["setting"] for e in summary if e["generator"] == g)))
        for d in dict.fromkeys(e["defense"] for e in summary if e["generator"] == g):
            base = cells.get((g, d, "none"))
            for name, (ps, members) in sets.items():
                if ps.kind != "sweep":
                    continue
                present = dict(members)  # label -> probe
                points = []
                for probe in ps.probe_names():
                    lab = f"{name}/{probe}"
                    if lab not in present or (g, d, lab) not in cells:
                        continue
                    e = cells[(g, d, lab)]
                    points.append({"probe": probe, "severity": ps.severity(probe),
                                   "retention": retention(e, base, used) if base and d != "none" else None,
                                   **{a: e.get(a) for a in used}})
                if points:
                    out.append({"generator": g, "defense": d, "sweep": name, "param": ps.param,
                                "baseline": {a: base.get(a) for a in used} if base else None, "points": points})
    return out


def pdb_aggregates(summary: list[dict], axes: tuple[str, ...] = AXES, te_entries: list[dict] | None = None) -> dict:
    """AvgRank and ROB per (generator, defense) from per-cell summary entries, plus the sweep curves,
    and TE when ``te_entries`` (the input of :func:`te_aggregates`) are given.

    Returns ``{"axes": [...], "rob_sets": {name: {"description", "probes"}}, "rows": [...], "sweeps": [...]}``
    (and ``"te"``: :func:`te_aggregates`'s result) with rows ``{"generator", "defense", "values", "avg_rank",
    "rank_axes", "rob": {set: value}, "r_rob", "settings", "te"}`` (``values``: the unprocessed mean per
    axis, what AvgRank ranks; ``r_rob`` over the loose
    ``settings``; ``te``: TE with the row's generator as the source, None without transfer).
    """
    used = _axes_used(summary, axes)
    cells = {(e["generator"], e["defense"], e["setting"]): e for e in summary}
    out: dict = {"axes": used, "rob_sets": {}, "rows": []}
    for g in dict.fromkeys(e["generator"] for e in summary):
        defenses = [d for d in dict.fromkeys(e["defense"] for e in summary if e["generator"] == g) if d != "none"]
        sets, loose = _probe_groups(list(dict.fromkeys(e["setting"] for e in summary if e["generator"] == g)))
        rob_sets = {n: v for n, v in sets.items() if v[0].kind == "rob"}
        for n, (ps, members) in rob_sets.items():
            seen = out["rob_sets"].setdefault(n, {"description": ps.description, "probes": []})["probes"]
            seen[:] = [p for p in ps.probe_names() if p in seen or p in dict(members).values()]
        ranks: dict[str, dict[str, float]] = {d: {} for d in defenses}
        for a in used:
            vals = {d: cells[(g, d, "none")].get(a) for d in defenses if (g, d, "none") in cells}
            for d, r in tied_ranks({d: v for d, v in vals.items() if v is not None}).items():
                ranks[d][a] = r
        for d in defenses:
            base = cells.get((g, d, "none"))

            def rob_over(labels):  # mean over the probes that were run of their retention
                if not base:
                    return None
                terms = [retention(cells[(g, d, s)], base, used) for s in labels if (g, d, s) in cells]
                return _mean([t for t in terms if t is not None])

            out["rows"].append({
                "generator": g, "defense": d, "values": {a: (base or {}).get(a) for a in used},
                "avg_rank": _mean(list(ranks[d].values())), "rank_axes": list(ranks[d]),
                "rob": {n: rob_over([lab for lab, _ in members]) for n, (_, members) in rob_sets.items()},
                "r_rob": rob_over(loose), "settings": loose,
            })
    out["sweeps"] = sweep_curves(summary, axes)
    if te_entries is not None:
        out["te"] = te_aggregates(te_entries, axes)
        te = {(r["defense"], r["source"]): r["te"] for r in out["te"]["rows"]}
        for r in out["rows"]:
            r["te"] = te.get((r["defense"], r["generator"]))
    return out


def te_aggregates(entries: list[dict], axes: tuple[str, ...] = AXES) -> dict:
    """TE per (defense, source generator) from per-(source, target) summary entries.

    Each entry: ``{"defense", "source", "target", axis: mean value, ...}``: the perturbations made
    against ``source``, evaluated on ``target`` (``source == target``: the white-box result).
    Returns ``{"axes": [...], "rows": [{"defense", "source", "te", "targets", "cidr", "n_targets_cidr"}],
    "pairs": [{"defense", "source", "target", "r_te", "ratios": {axis: clipped BB / WB}}]}`` where
    ``targets`` are those TE averaged over, ``cidr`` is PDB's raw transfer CIDR (mean of the black-box
    identity values over targets, not normalised) and ``pairs`` are the per-target scores TE averages.
    """
    used = _axes_used(entries, axes)
    quality = [a for a in used if a != IDENTITY]
    with_id = IDENTITY in used
    out: dict = {"axes": used, "rows": [], "pairs": []}
    wb: dict = {}
    for e in entries:
        if e["source"] != e["target"] or any(e.get(a) is None for a in quality):
            continue
        if with_id and e.get(IDENTITY) is None:
            continue
        wb[(e["defense"], e["target"])] = e
    scores: dict = {}
    for e in entries:
        d, s, t = e["defense"], e["source"], e["target"]
        if s == t or d == "none":
            continue
        row = scores.setdefault((d, s), {"targets": [], "scores": [], "cidr": []})
        if with_id and e.get(IDENTITY) is not None:
            row["cidr"].append(e[IDENTITY])
        w = wb.get((d, t))
        if w is None or any(e.get(a) is None for a in quality):
            continue
        ratios = {a: min(1.0, e[a] / w[a]) if w[a] > 0 else 0.0 for a in quality}
        if with_id and e.get(IDENTITY) is not None and w[IDENTITY] and w[IDENTITY] > 0:
            ratios[IDENTITY] = min(1.0, e[IDENTITY] / w[IDENTITY])
        if ratios:
            row["targets"].append(t)
            row["scores"].append(sum(ratios.values()) / len(ratios))
            out["pairs"].append({"defense": d, "source": s, "target": t, "r_te": row["scores"][-1], "ratios": ratios})
    for (d, s), row in scores.items():
        out["rows"].append({"defense": d, "source": s, "te": _mean(row["scores"]), "targets": row["targets"],
                            "cidr": _mean(row["cidr"]), "n_targets_cidr": len(row["cidr"])})
    return out


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _val(v) -> str:
    return "–" if v is None else (f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}")


def aggregates_table(agg: dict) -> str:
    """Markdown: PDB's table — per generator and defense the unprocessed value of each axis, AvgRank, one
    ROB column per named set (R_ROB for loose settings) and TE — then the R_TE matrix and one table per sweep."""
    if not agg["rows"] or not agg["axes"]:
        return ""
    loose = sorted({s for r in agg["rows"] for s in r["settings"]})
    rob_sets = list(agg.get("rob_sets", {}))
    title = f"## PDB's table (axes: {', '.join(agg['axes'])}, unprocessed means; AvgRank: their mean rank"
    if loose:
        title += f"; R_ROB over: {', '.join(loose)}"
    for n in rob_sets:
        title += f"; ROB {n} over: {', '.join(agg['rob_sets'][n]['probes'])}"
    te = "te" in agg
    if te:
        title += "; TE: the row's generator as the source, mean over its targets"
    head = ["generator", "defense"] + [f"{AXIS_NAMES.get(a, a)} ↑" for a in agg["axes"]] + ["AvgRank ↓"] \
        + (["R_ROB ↑"] if loose else []) + [f"ROB {n} ↑" for n in rob_sets] + (["TE ↑"] if te else [])
    lines = [title + ")", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in agg["rows"]:
        vals = [r["generator"], r["defense"]] + [_val(r.get("values", {}).get(a)) for a in agg["axes"]]
        vals += [_fmt(r["avg_rank"], ".2f")]
        vals += [_fmt(r["r_rob"], ".3f")] if loose else []
        vals += [_fmt(r.get("rob", {}).get(n), ".3f") for n in rob_sets]
        vals += [_fmt(r.get("te"), ".3f")] if te else []
        lines.append("| " + " | ".join(vals) + " |")
    if te:
        lines += ["", te_table(agg["te"])]
    lead = agg["axes"][0]
    by_sweep: dict = {}
    for c in agg.get("sweeps", []):
        by_sweep.setdefault((c["generator"], c["sweep"]), []).append(c)
    for (g, name), curves in by_sweep.items():
        sev = list(dict.fromkeys(p["severity"] for c in curves for p in c["points"]))
        lines += ["", f"### {g}: {name} ({curves[0]['param']}; {lead} of the output, retention in brackets)", "",
                  "| defense | unprocessed | " + " | ".join(f"{curves[0]['param']} {s}" for s in sev) + " |",
                  "|" + "---|" * (len(sev) + 2)]
        for c in curves:
            pts = {p["severity"]: p for p in c["points"]}
            cells = [_fmt((c["baseline"] or {}).get(lead), ".4f")]
            for s in sev:
                p = pts.get(s)
                cells.append("–" if p is None else _fmt(p.get(lead), ".4f")
                             + ("" if p["retention"] is None else f" ({p['retention']:.2f})"))
            lines.append(f"| {c['defense']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def te_table(te: dict) -> str:
    """Markdown: the R_TE matrix (one row per defense and source, one column per target; ``WB`` on the
    diagonal, ``–`` where a pair lacks a value) with TE(source) = the mean of the row."""
    pairs = te.get("pairs", [])
    if not pairs:
        return "### Transfer (R_TE)\n\nNo R_TE: no (source, target) pair with values on both sides.\n"
    targets = list(dict.fromkeys([r["source"] for r in te["rows"]] + [p["target"] for p in pairs]))  # sources first
    by = {(p["defense"], p["source"], p["target"]): p["r_te"] for p in pairs}
    lines = [f"### Transfer: R_TE per source → target (axes: {', '.join(te['axes'])}; mean of min(1, black box / "
             "the target's white box), unprocessed)", "",
             "| defense | source | " + " | ".join(f"→ {t}" for t in targets) + " | TE ↑ |", "|" + "---|" * (len(targets) + 3)]
    for r in te["rows"]:
        cells = ["WB" if t == r["source"] else _fmt(by.get((r["defense"], r["source"], t)), ".3f") for t in targets]
        lines.append(f"| {r['defense']} | {r['source']} | " + " | ".join(cells) + f" | {_fmt(r['te'], '.3f')} |")
    return "\n".join(lines) + "\n"
