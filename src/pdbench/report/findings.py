"""Findings computed from a run's numbers: PDB's five kinds of finding and each defense's break-even purification.

Every finding is a sentence generated from the run's results.json (``meta``), with the numbers it
rests on, or "not enough data (needs …)" where the run lacks what it needs:

* ``rank_change`` — do the defense rankings change across generators? Kendall τ-b between the
  per-generator AvgRank orders (:func:`kendall_tau`), for every pair of generators, over the
  defenses both ranked (needs ≥ 2 generators and ≥ 2 common defenses).
* ``tradeoff`` — robustness vs white-box strength: Pearson r between the white-box MSE (setting
  ``none``) and ROB across the (generator, defense) pairs (needs a ROB: a ``rob`` probe set such as
  ``pdb-paper``, or loose settings for R_ROB; and ≥ 3 pairs).
* ``transfer`` — transfer retention: the share of R_TE values, one per (defense, source → target),
  below 0.5 (needs a ``transfer`` block: perturbations made against one generator and evaluated on
  another), with the lowest and highest.
* ``metric_agreement`` — do pixel metrics and identity disruption agree? Pearson r of MSE and of
  LPIPS against CIDR across the run's (generator, defense ≠ none, setting) cells (≥ 3 cells).
* ``strongest_least_robust`` — per generator, is the defense with the best AvgRank also the one
  with the lowest ROB?

Beyond PDB, ``break_even``: for each (generator, defense, sweep) the mildest severity of the sweep
(JPEG quality, blur σ, noise std, downscale factor) at which the mean MSE(G(x), G(T(x_adv))) falls
below the success threshold 0.05 (:data:`pdbench.metrics.pixel.MSE_SUCCESS`), and what that
purification costs the attacker's input: the mean PSNR (dB) between T(x) and x, the sweep's own
transform applied to the run's clean dataset photos (the first :data:`PSNR_IMAGES` of them, at the
generator's resolution). Since ‖x_adv − x‖∞ ≤ ε, T(x) stands for the purified photo minus the
perturbation: it is the damage the purification itself does. Where the dataset cannot be opened the
cost is reported missing, with the reason.
"""

from __future__ import annotations

import math

from ..metrics.pixel import MSE_SUCCESS
from .pdb import AXES, tied_ranks

PSNR_IMAGES = 32  # clean photos the purification cost is measured on
TE_LOW = 0.5  # PDB: an R_TE below this keeps less than half the white-box disruption


def _fmt(v, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def kendall_tau(a: list[float], b: list[float]) -> float | None:
    """Kendall τ-b of two paired score lists (ties handled as scipy.stats.kendalltau does); None when
    fewer than 2 pairs or one list is all ties."""
    n = len(a)
    if n != len(b):
        raise ValueError("kendall_tau: lists of different length")
    conc = disc = tie_a = tie_b = pairs = 0
    for i in range(n):
        for j in range(i + 1, n):
            pairs += 1
            da, db = (a[i] > a[j]) - (a[i] < a[j]), (b[i] > b[j]) - (b[i] < b[j])
            tie_a += da == 0
            tie_b += db == 0
            if da and db:
                conc += da == db
                disc += da != db
    den = math.sqrt((pairs - tie_a) * (pairs - tie_b))
    return (conc - disc) / den if den else None


def pearson(x: list[float], y: list[float]) -> float | None:
    """Pearson r; None with fewer than 3 points or a constant list."""
    if len(x) != len(y):
        raise ValueError("pearson: lists of different length")
    n = len(x)
    if n < 3:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def _agreement(r: float) -> str:
    return ("agree strongly" if r >= 0.7 else "agree moderately" if r >= 0.4 else "agree weakly" if r >= 0.2 else
            "hardly agree" if r > -0.2 else "disagree (they move in opposite directions)")


def rob_choice(agg: dict) -> tuple[str | None, str]:
    """Which ROB the findings and the plots use: the first named ROB set of the run, else R_ROB over its
    loose settings. Returns (key, label): key ``"r_rob"`` or a set name, None when the run has no ROB."""
    rows = agg.get("rows", [])
    for name in agg.get("rob_sets", {}):
        if any(r.get("rob", {}).get(name) is not None for r in rows):
            return name, f"ROB {name}"
    if any(r.get("r_rob") is not None for r in rows):
        return "r_rob", "R_ROB"
    return None, "ROB"


def rob_value(row: dict, key: str | None):
    if key is None:
        return None
    return row.get("r_rob") if key == "r_rob" else row.get("rob", {}).get(key)


def te_rows(meta: dict) -> list[dict]:
    """TE rows (``te_aggregates`` format) wherever the run put them: aggregates["te"] or meta["te"]."""
    te = (meta.get("aggregates") or {}).get("te") or meta.get("te") or {}
    return [r for r in te.get("rows", []) if r.get("te") is not None]


def _cells(meta: dict, setting: str | None = None) -> dict:
    return {(e["generator"], e["defense"]): e for e in meta.get("summary", []) if setting is None or e["setting"] == setting}


def _finding(kind: str, title: str, sentence: str, enough: bool, **data) -> dict:
    return {"kind": kind, "title": title, "sentence": sentence, "enough": enough, "data": data}


def avg_ranks(agg: dict) -> dict[str, dict[str, float]]:
    """{generator: {defense: AvgRank}} from PDB's aggregates, in the run's order (defenses without one left out)."""
    by_g: dict = {}
    for r in agg.get("rows", []):
        if r.get("avg_rank") is not None:
            by_g.setdefault(r["generator"], {})[r["defense"]] = r["avg_rank"]
    return by_g


def pair_tau(by_g: dict[str, dict[str, float]], a: str, b: str) -> tuple[list[str], float | None]:
    """The defenses generators ``a`` and ``b`` both ranked (in ``a``'s order) and the Kendall τ-b of their
    AvgRanks over them (None with fewer than 2 common defenses, or when τ is undefined)."""
    common = [d for d in by_g[a] if d in by_g[b]]
    if len(common) < 2:
        return common, None
    return common, kendall_tau([by_g[a][d] for d in common], [by_g[b][d] for d in common])


def _rank_change(meta: dict) -> dict:
    title = "Rankings across generators"
    agg = meta.get("aggregates", {})
    by_g = avg_ranks(agg)
    wb = _cells(meta, "none")
    gens = list(by_g)
    pairs = []
    for i in range(len(gens)):
        for j in range(i + 1, len(gens)):
            a, b = gens[i], gens[j]
            common, tau = pair_tau(by_g, a, b)
            if len(common) < 2:
                continue
            per_axis = {}  # the same question on each axis's white-box values (AvgRank can tie where axes disagree)
            for ax in agg.get("axes", []):
                va = [wb.get((a, d), {}).get(ax) for d in common]
                vb = [wb.get((b, d), {}).get(ax) for d in common]
                if None not in va and None not in vb:
                    per_axis[ax] = kendall_tau(va, vb)
            pairs.append({"a": a, "b": b, "defenses": common, "per_axis": per_axis, "tau": tau})
    pairs = [p for p in pairs if p["tau"] is not None or any(t is not None for t in p["per_axis"].values())]
    if not pairs:
        need = (f"≥ 2 generators; this run ranks {len(gens)}" if len(gens) < 2 else
                "two generators ranking ≥ 2 common defenses without ties")
        return _finding("rank_change", title, f"Not enough data (needs {need}).", False, pairs=[])

    def text(p):
        axes = ", ".join(f"{ax.upper()} τ = {_fmt(t, '.2f')}" for ax, t in p["per_axis"].items())
        head = f"AvgRank τ = {p['tau']:.2f}" if p["tau"] is not None else "AvgRanks tie"
        return f"{p['a']} vs {p['b']} over {len(p['defenses'])} defenses: {head}" + (f" (per axis: {axes})" if axes else "")

    taus = [p["tau"] for p in pairs if p["tau"] is not None]
    axis_taus = [t for p in pairs for t in p["per_axis"].values() if t is not None]
    low = min(taus) if taus else min(axis_taus)
    verdict = ("do not change" if low == 1 else "change") + " across generators"
    if not taus:
        verdict += " on at least one axis" if low < 1 else " on any axis"
    s = (f"Defense rankings {verdict}: Kendall τ between the per-generator orders ({'; '.join(text(p) for p in pairs)}; "
         f"1 = same order, −1 = reversed)")
    mean = sum(taus) / len(taus) if taus else None
    if len(taus) > 1:
        s += f"; mean AvgRank τ = {mean:.2f}, lowest {min(taus):.2f}"
    return _finding("rank_change", title, s + ".", True, pairs=pairs, mean_tau=mean, min_tau=min(taus) if taus else None)


def _tradeoff(meta: dict) -> dict:
    title = "Robustness vs white-box strength"
    agg = meta.get("aggregates", {})
    key, label = rob_choice(agg)
    if key is None:
        return _finding("tradeoff", title, "Not enough data (needs a ROB: a ROB probe set such as pdb-paper or "
                        "pdb-code in settings, or settings besides none for R_ROB).", False)
    wb = _cells(meta, "none")
    pts = [(r["generator"], r["defense"], wb[(r["generator"], r["defense"])]["mse"], rob_value(r, key))
           for r in agg.get("rows", []) if wb.get((r["generator"], r["defense"]), {}).get("mse") is not None
           and rob_value(r, key) is not None]
    r = pearson([p[2] for p in pts], [p[3] for p in pts])
    if r is None:
        return _finding("tradeoff", title, f"Not enough data (needs ≥ 3 (generator, defense) pairs with MSE and "
                        f"{label} that vary; this run has {len(pts)}).", False, rob=label, points=pts)
    kind = ("stronger white-box defenses are less robust (a trade-off)" if r <= -0.2 else
            "stronger white-box defenses are also more robust (no trade-off)" if r >= 0.2 else
            "white-box strength says little about robustness")
    s = (f"Across {len(pts)} (generator, defense) pairs, Pearson r between white-box MSE and {label} is {r:.2f}: "
         f"{kind}.")
    return _finding("tradeoff", title, s, True, rob=label, r=r, points=pts)


def te_pairs(meta: dict) -> list[dict]:
    """R_TE per (defense, source → target) (``te_aggregates``' pairs); where a run only kept TE per source
    (no pairs), those rows stand for the pairs."""
    te = (meta.get("aggregates") or {}).get("te") or meta.get("te") or {}
    pairs = [p for p in te.get("pairs", []) if p.get("r_te") is not None]
    return pairs or [{"defense": r["defense"], "source": r["source"], "target": None, "r_te": r["te"]} for r in te_rows(meta)]


def _transfer(meta: dict) -> dict:
    title = "Transfer retention"
    pairs = te_pairs(meta)
    if not pairs:
        return _finding("transfer", title, "Not enough data (needs TE: perturbations made against one generator "
                        "and evaluated on another).", False)
    low = [p for p in pairs if p["r_te"] < TE_LOW]
    share = len(low) / len(pairs)
    s = (f"{len(low)} of {len(pairs)} R_TE values ({share:.0%}) are below {TE_LOW}: "
         + ("most defenses lose over half their disruption on unseen generators." if share > 0.5 else
            "most defenses keep at least half their disruption on unseen generators."))
    worst = min(pairs, key=lambda p: p["r_te"])
    best = max(pairs, key=lambda p: p["r_te"])
    if len(pairs) > 1:  # one value per (defense, source → target)
        s += (f" Lowest: {worst['defense']} {worst['source']} → {worst['target'] or 'its targets'} ({worst['r_te']:.3f}); "
              f"highest: {best['defense']} {best['source']} → {best['target'] or 'its targets'} ({best['r_te']:.3f}).")
    return _finding("transfer", title, s, True, share_below=share, n=len(pairs), threshold=TE_LOW,
                    pairs=[{k: p[k] for k in ("defense", "source", "target", "r_te")} for p in pairs])


def _metric_agreement(meta: dict) -> dict:
    title = "Pixel metrics vs identity disruption"
    cells = [e for e in meta.get("summary", []) if e["defense"] != "none"]
    out, parts, missing = {}, [], []
    for m in ("mse", "lpips"):
        pts = [(e[m], e["cidr"]) for e in cells if e.get(m) is not None and e.get("cidr") is not None]
        r = pearson([p[0] for p in pts], [p[1] for p in pts])
        if r is None:
            missing.append(m.upper() if not pts else f"{m.upper()} (only {len(pts)} cells)")
            continue
        out[m] = {"r": r, "n": len(pts)}
        parts.append(f"{m.upper()} and CIDR {_agreement(r)}: Pearson r = {r:.2f} over {len(pts)} cells")
    if not parts:
        return _finding("metric_agreement", title, "Not enough data (needs cidr and mse or lpips over ≥ 3 protected "
                        "cells).", False)
    s = "; ".join(parts)
    if missing:
        s += f" ({', '.join(missing)} vs CIDR: not enough data, needs metric lpips)" if missing == ["LPIPS"] else \
            f" ({', '.join(missing)} vs CIDR: not enough data)"
    return _finding("metric_agreement", title, s + ".", True, **out)


def _strongest_least_robust(meta: dict) -> dict:
    title = "Strongest white-box defense vs least robust"
    agg = meta.get("aggregates", {})
    key, label = rob_choice(agg)
    if key is None:
        return _finding("strongest_least_robust", title, "Not enough data (needs a ROB: a ROB probe set such as "
                        "pdb-paper in settings, or settings besides none).", False)
    by_g: dict = {}
    for r in agg.get("rows", []):
        if r.get("avg_rank") is not None and rob_value(r, key) is not None:
            by_g.setdefault(r["generator"], []).append(r)
    per, parts = [], []
    for g, rows in by_g.items():
        if len(rows) < 2:
            continue
        strong = min(rows, key=lambda r: r["avg_rank"])
        weak = min(rows, key=lambda r: rob_value(r, key))
        same = strong["defense"] == weak["defense"]
        per.append({"generator": g, "strongest": strong["defense"], "least_robust": weak["defense"], "same": same})
        parts.append(f"{g}: {'yes' if same else 'no'} — {strong['defense']} has the best AvgRank "
                     f"({strong['avg_rank']:.2f}), {weak['defense']} the lowest {label} ({rob_value(weak, key):.3f})")
    if not per:
        return _finding("strongest_least_robust", title, "Not enough data (needs ≥ 2 defenses with AvgRank and ROB on "
                        "a generator).", False)
    return _finding("strongest_least_robust", title, "; ".join(parts) + ".", True, rob=label, generators=per)


def ranking_table(meta: dict) -> dict | None:
    """The defense ranking per generator and how much it changes between generators, as data: what
    summary.md (:func:`ranking_markdown`) and the HTML report show. None for a run with fewer than 2 ranked
    generators (PDB's table already shows one generator's AvgRanks).

    * ``generators``: ``[{"name", "label", "experimental"}]`` in the run's order; ``label`` is the name,
      marked "(experimental)" where the generator's weights are experimental;
    * ``rows``: per defense, in order of its mean place over the generators that ranked it,
      ``{"defense", "places": {generator: place}, "avg_ranks": {generator: AvgRank}, "mean_place"}``: its
      place among that generator's defenses by AvgRank (1 = most disruptive; equal AvgRanks share the mean
      of their places; a generator that did not rank it is left out);
    * ``tau``: ``{a: {b: {"tau", "n"}}}``, Kendall τ-b between the AvgRanks of generators a and b over the
      ``n`` defenses both ranked (:func:`pair_tau`; None where undefined), τ = 1 and ``n`` = its defenses on
      the diagonal;
    * ``mean_tau`` over the ``n_pairs`` pairs with a τ, and ``lowest`` = (τ, a, b), both None without one.
    """
    by_g = avg_ranks(meta.get("aggregates", {}))
    gens = list(by_g)
    if len(gens) < 2:
        return None
    info = meta.get("generators", {})
    exp = {g: bool((info.get(g) or {}).get("experimental")) for g in gens}
    place = {g: tied_ranks({d: -v for d, v in by_g[g].items()}) for g in gens}
    defs = list(dict.fromkeys(d for g in gens for d in by_g[g]))
    mean_place = {d: sum(place[g][d] for g in gens if d in place[g]) / sum(d in place[g] for g in gens) for d in defs}
    rows = [{"defense": d, "places": {g: place[g][d] for g in gens if d in place[g]},
             "avg_ranks": {g: by_g[g][d] for g in gens if d in by_g[g]}, "mean_place": mean_place[d]}
            for d in sorted(defs, key=lambda d: mean_place[d])]
    tau: dict = {a: {a: {"tau": 1.0, "n": len(by_g[a])}} for a in gens}
    for i, a in enumerate(gens):
        for b in gens[i + 1:]:
            common, t = pair_tau(by_g, a, b)
            tau[a][b] = tau[b][a] = {"tau": t, "n": len(common)}
    vals = [(tau[a][b]["tau"], a, b) for i, a in enumerate(gens) for b in gens[i + 1:] if tau[a][b]["tau"] is not None]
    return {"generators": [{"name": g, "label": f"{g}{' (experimental)' if exp[g] else ''}", "experimental": exp[g]}
                           for g in gens],
            "rows": rows, "tau": tau, "n_pairs": len(vals),
            "mean_tau": sum(v for v, _, _ in vals) / len(vals) if vals else None, "lowest": min(vals) if vals else None}


RANKING_TITLE = "Defense ranking per generator"
RANKING_HOW = "place by AvgRank on PDB's axes, unprocessed: 1 = most disruptive; AvgRank in brackets"
TAU_TITLE = "Kendall τ-b between the generators' rankings"
TAU_HOW = "AvgRank over the defenses both ranked; 1 = same order, 0 = unrelated, −1 = reversed"


def ranking_sentences(rt: dict) -> list[str]:
    """The lines under the τ matrix: the mean and the lowest τ, and the experimental weights' warning."""
    if rt["lowest"] is not None:
        t, a, b = rt["lowest"]
        out = [f"Mean τ over {rt['n_pairs']} pair(s) of generators: {rt['mean_tau']:.2f}; lowest {t:.2f} ({a} vs {b})."]
    else:
        out = ["No τ: no two generators rank ≥ 2 common defenses without ties."]
    if any(g["experimental"] for g in rt["generators"]):
        out.append("Experimental weights (marked): their places are not fit for reporting.")
    return out


def ranking_markdown(meta: dict) -> str:
    """Markdown of :func:`ranking_table`: one column per generator with each defense's place and its AvgRank
    in brackets, rows in order of the mean place, then the τ-b matrix with the mean and the lowest τ.
    Empty for a run with fewer than 2 ranked generators."""
    rt = ranking_table(meta)
    if rt is None:
        return ""
    gens = [g["name"] for g in rt["generators"]]
    lines = [f"## {RANKING_TITLE} ({RANKING_HOW})", "",
             "| defense | " + " | ".join(g["label"] for g in rt["generators"]) + " | mean place |",
             "|" + "---|" * (len(gens) + 2)]
    for r in rt["rows"]:
        cells = [f"{r['places'][g]:g} ({r['avg_ranks'][g]:.2f})" if g in r["places"] else "–" for g in gens]
        lines.append(f"| {r['defense']} | " + " | ".join(cells) + f" | {r['mean_place']:.2f} |")
    lines += ["", f"### {TAU_TITLE} ({TAU_HOW})", "", "| | " + " | ".join(gens) + " |", "|" + "---|" * (len(gens) + 1)]
    for a in gens:
        lines.append(f"| {a} | " + " | ".join("1" if a == b else _fmt(rt["tau"][a][b]["tau"], ".2f") for b in gens) + " |")
    for s in ranking_sentences(rt):
        lines += ["", s]
    return "\n".join(lines) + "\n"


SWEEP_WORDS = {"quality": "JPEG quality", "sigma": "blur σ", "std": "noise std", "factor": "downscale ×"}


def severity_text(param: str, sev) -> str:
    word = SWEEP_WORDS.get(param, param)
    return f"{word}{sev:g}" if word.endswith("×") else f"{word} {sev:g}"


def measure_purification(meta: dict, n: int = PSNR_IMAGES) -> tuple[dict, str | None]:
    """Mean PSNR(T(x), x) in dB for every probe of every sweep in the run, per generator (its resolution and
    crop), on the first ``n`` of the run's dataset photos: ``({generator: {sweep: {probe: dB}}}, None)``,
    or ``({}, reason)`` when the photos cannot be opened."""
    try:
        from ..bench.runner import open_dataset, select_images
        from ..errors import PdbenchError
        from ..metrics.functional import psnr
        from ..registry import spec_label
        from ..transforms.probe_sets import probes

        cfg = meta.get("config", {})
        sweeps = list(dict.fromkeys(c["sweep"] for c in meta.get("aggregates", {}).get("sweeps", [])))
        out: dict = {}
        seen: dict = {}  # (resolution, crop) -> PSNRs: generators that see the photos alike share them
        for gspec in cfg.get("generators", []):
            gspec = {"name": gspec} if isinstance(gspec, str) else gspec
            g = spec_label(gspec)
            gi = meta.get("generators", {}).get(g)
            if not gi or not sweeps:
                continue
            view = (gi["resolution"], gi["crop"] if "crop" in gi else _default_crop(gspec["name"]))
            if view not in seen:
                folder = open_dataset(cfg["dataset"], *view)
                x = folder.load(select_images(folder, cfg["dataset"])[:n])
                seen[view] = {s: {p.probe: float(psnr(p(x), x).mean()) for p in probes(s)} for s in sweeps}
            out[g] = seen[view]
        return out, None
    except (PdbenchError, OSError, KeyError, ImportError) as e:
        return {}, f"{type(e).__name__}: {e}".splitlines()[0]


def _break_even(meta: dict, cost: dict) -> list[dict]:
    out = []
    for c in meta.get("aggregates", {}).get("sweeps", []):
        if c["defense"] == "none" or not c["points"] or "mse" not in c["points"][0]:
            continue
        base = (c.get("baseline") or {}).get("mse")
        row = {"generator": c["generator"], "defense": c["defense"], "sweep": c["sweep"], "param": c["param"],
               "baseline_mse": base, "severity": None, "probe": None, "mse": None, "psnr": None}
        if base is not None and base < MSE_SUCCESS:
            row.update(status="unprocessed", mse=base)
            row["sentence"] = f"already below the threshold unprocessed (MSE {base:.3f})"
        else:
            hit = next((p for p in c["points"] if p["mse"] is not None and p["mse"] < MSE_SUCCESS), None)
            if hit is None:
                last = c["points"][-1]
                row.update(status="holds", mse=last["mse"])
                row["sentence"] = (f"still disrupts at the strongest probe, {severity_text(c['param'], last['severity'])} "
                                   f"(MSE {_fmt(last['mse'])})")
            else:
                psnr_db = cost.get(c["generator"], {}).get(c["sweep"], {}).get(hit["probe"])
                row.update(status="breaks", severity=hit["severity"], probe=hit["probe"], mse=hit["mse"], psnr=psnr_db)
                price = f"PSNR {psnr_db:.1f} dB to the clean photo" if psnr_db is not None else "cost not measured"
                row["sentence"] = (f"breaks at {severity_text(c['param'], hit['severity'])} (MSE {hit['mse']:.3f} < "
                                   f"{MSE_SUCCESS}; {price})")
        out.append(row)
    return out


def compute(meta: dict, measure: bool = True) -> dict:
    """All findings of a run (results.json's ``meta``) as JSON-ready data.

    ``measure``: open the run's dataset to measure what each sweep's purification costs (PSNR), unless
    ``meta["findings"]`` (results.json) already holds those values; with False, or when the photos cannot
    be opened, the cost is reported missing with the reason.
    """
    agg = meta.get("aggregates", {})
    cost, why = {}, None
    if agg.get("sweeps"):
        stored = (meta.get("findings") or {}).get("purification_psnr") or {}
        if all(c["sweep"] in stored.get(c["generator"], {}) for c in agg["sweeps"]):
            cost = stored  # measured when the run's findings were first computed (results.json keeps them)
        elif measure:
            cost, why = measure_purification(meta)
        else:
            why = "not measured (findings computed with measure=False)"
    items = [_rank_change(meta), _tradeoff(meta), _transfer(meta), _metric_agreement(meta), _strongest_least_robust(meta)]
    return {"axes": agg.get("axes", [a for a in AXES if any(a in e for e in meta.get("summary", []))]),
            "success_mse": MSE_SUCCESS, "items": items, "break_even": _break_even(meta, cost),
            "purification_psnr": cost, "purification_note": why,
            "purification_method": f"mean PSNR(T(x), x) over the run's clean photos (at most {PSNR_IMAGES})"}


def findings_markdown(meta: dict, found: dict | None = None) -> str:
    """The findings as a Markdown section (for summary.md); ``found`` from :func:`compute`, computed if None."""
    f = found if found is not None else compute(meta)
    lines = ["## Findings (computed from this run's numbers)", ""]
    lines += [f"- **{it['title']}.** {it['sentence']}" for it in f["items"]]
    lines += ["", f"### Break-even purification (mildest sweep severity with mean MSE < {f['success_mse']}; cost: "
              f"{f['purification_method']})", ""]
    if not f["break_even"]:
        lines.append("Not enough data (needs a severity sweep in settings: sweep-jpeg, sweep-blur, sweep-noise or "
                     "sweep-scale, and the mse metric).")
    else:
        if f.get("purification_note"):
            lines += [f"Purification cost missing: {f['purification_note']}.", ""]
        lines += ["| generator | defense | sweep | break-even | MSE there | PSNR of purified (dB) |", "|---|---|---|---|---|---|"]
        for b in f["break_even"]:
            at = severity_text(b["param"], b["severity"]) if b["status"] == "breaks" else \
                "already below unprocessed" if b["status"] == "unprocessed" else "never (holds at the strongest)"
            lines.append(f"| {b['generator']} | {b['defense']} | {b['sweep']} | {at} | {_fmt(b['mse'])} | "
                         f"{_fmt(b['psnr'], '.1f')} |")
    return "\n".join(lines) + "\n"


def _default_crop(name: str) -> float:
    """The crop of architecture ``name``'s default preprocessing record (runs written before results.json
    recorded each generator's crop)."""
    from ..generators.base import PREPROCESSING

    return float(PREPROCESSING.get(name).crop) if name in PREPROCESSING else 1.0
