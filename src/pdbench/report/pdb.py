"""PDB's aggregate scores from per-cell means: the robustness ratio R_ROB and AvgRank.

* **R_ROB** (PDB code): for each practical setting T other than ``none``, the mean over the
  disruption axes of clip(D(G(T(x_adv))) / D(G(x_adv)), 0, 1); then the mean over settings.
* **AvgRank** (PDB): among the defenses of one generator, without post-processing, the mean of each
  defense's rank on the disruption axes (1 = most disruptive). ROB and TE are not ranked.

PDB's axes are MSE, LPIPS, CIDR and BRISQUE; pdbench uses those of them the run measured and says
which. The ``none`` defense is left out of both.
"""

from __future__ import annotations

AXES = ("mse", "lpips", "cidr", "brisque")


def pdb_aggregates(summary: list[dict], axes: tuple[str, ...] = AXES) -> dict:
    used = [a for a in axes if any(a in e for e in summary)]
    cells = {(e["generator"], e["defense"], e["setting"]): e for e in summary}
    gens = list(dict.fromkeys(e["generator"] for e in summary))
    out: dict = {"axes": used, "rows": []}
    for g in gens:
        defenses = [d for d in dict.fromkeys(e["defense"] for e in summary if e["generator"] == g) if d != "none"]
        settings = [s for s in dict.fromkeys(e["setting"] for e in summary if e["generator"] == g) if s != "none"]
        ranks: dict[str, list[float]] = {d: [] for d in defenses}
        for a in used:
            vals = {d: cells[(g, d, "none")].get(a) for d in defenses if (g, d, "none") in cells}
            order = sorted((v, d) for d, v in vals.items() if v is not None)[::-1]
            for r, (_, d) in enumerate(order, start=1):
                ranks[d].append(r)
        for d in defenses:
            base = cells.get((g, d, "none"), {})
            per_setting = []
            for s in settings:
                e = cells.get((g, d, s))
                if not e:
                    continue
                ratios = [min(1.0, max(0.0, e[a] / base[a])) for a in used if base.get(a) and a in e]
                if ratios:
                    per_setting.append(sum(ratios) / len(ratios))
            out["rows"].append({
                "generator": g, "defense": d,
                "avg_rank": sum(ranks[d]) / len(ranks[d]) if ranks[d] else None,
                "r_rob": sum(per_setting) / len(per_setting) if per_setting else None,
                "settings": settings,
            })
    return out


def aggregates_table(agg: dict) -> str:
    if not agg["rows"] or not agg["axes"]:
        return ""
    settings = sorted({s for r in agg["rows"] for s in r["settings"]})
    lines = [f"## PDB aggregates (axes: {', '.join(agg['axes'])}; R_ROB over: {', '.join(settings) or '–'})", "",
             "| generator | defense | AvgRank ↓ | R_ROB ↑ |", "|---|---|---|---|"]
    for r in agg["rows"]:
        rank = "–" if r["avg_rank"] is None else f"{r['avg_rank']:.2f}"
        rob = "–" if r["r_rob"] is None else f"{r['r_rob']:.3f}"
        lines.append(f"| {r['generator']} | {r['defense']} | {rank} | {rob} |")
    return "\n".join(lines) + "\n"
