"""Markdown summary of a benchmark run (rendered from results.json, the single source of truth)."""

from __future__ import annotations

from .findings import ranking_markdown
from .pdb import aggregates_table

SHORT = {"higher=more disrupted": "↑", "lower=more disrupted": "↓", "lower=less visible": "↓ (visibility)",
         "higher=less visible": "↑ (visibility)"}


def summary_table(meta: dict, metric_names: list[str]) -> str:
    cols = list(metric_names) + ["protect_seconds_per_image"]
    info = meta.get("metrics", {})
    lines = [f"# {meta.get('name', 'benchmark')}", ""]
    note = partial_note(meta)
    if note:
        lines += [f"> **{note}**", ""]
    for g, gi in meta.get("generators", {}).items():
        lines.append(f"- generator `{g}` (weights {gi.get('weights', '?')}): {images_text(gi)} at {gi['resolution']} px, "
                     f"edits {', '.join(gi['conditions'])}")
        if gi.get("kind") == "swap":
            lines.append(f"  face swap: the protected photo is the swap's **{gi.get('protected_role') or '?'}**")
        if gi.get("official_edits"):
            lines.append(f"  only these of its official edits ({', '.join(gi['official_edits'])})")
        if gi.get("judged_edits"):
            lines.append(f"  {gi['judged_edits']}")
        if gi.get("experimental"):
            lines.append(f"  **experimental weights, not fit for reporting:** {gi['experimental']}")
        if gi.get("grid"):
            lines.append(f"  ([image grid]({gi['grid']}): per row a photo, its deepfake (first edit), then for each defense "
                         "the protected photo and the deepfake made from it)")
    lines += ["", "Per-cell means over images (and over each image's edits). Arrows: ↑ higher = more disrupted, "
              "↓ lower = more disrupted; (visibility) columns describe the protected photo itself.", ""]
    head = ["generator", "defense", "setting"] + [
        f"{c} {SHORT.get(info.get(c, {}).get('direction', ''), '')}".strip() if c in info else "s/image" for c in cols]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for e in meta.get("summary", []):
        vals = []
        for c in cols:
            v = e.get(c)
            vals.append("–" if v is None else (f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}"))
        lines.append("| " + " | ".join([e["generator"], e["defense"], e["setting"]] + vals) + " |")
    lines += _undefined_lines(meta.get("summary", []))
    lines.append("")
    lines += _swap_lines(meta)
    lines += _transfer_lines(meta, cols)
    if meta.get("aggregates"):
        lines.append(aggregates_table(meta["aggregates"]))
        ranking = ranking_markdown(meta)
        if ranking:
            lines += ["", ranking]
    return "\n".join(lines)


def images_text(gi: dict) -> str:
    """A generator's image count: "N images", or in a partial summary (``gi["finished"]``) the images with
    a finished cell of the N planned, and per defense."""
    done = gi.get("finished")
    if done is None:
        return f"{gi['n_images']} images"
    per = ", ".join(f"{d} {k}" for d, k in done["by_defense"].items())
    return f"{done['images']} of {gi['n_images']} planned images finished ({per})"


def partial_note(meta: dict) -> str | None:
    """The line that marks the summary of a run that stopped early (``meta["partial"]``), else None; it
    also says what became of an earlier complete run's results.json / results.csv (``results_files``)."""
    p = meta.get("partial")
    if not p:
        return None
    return (f"Partial results: {p['finished']} of {p['cells']} cells finished; rerun the same command to resume "
            f"(stopped: {p['stopped']}). The finished cells are reused and this summary is replaced by the complete "
            "one; every mean, rank and finding here covers the finished cells only."
            + (f" {p['results_files']}" if p.get("results_files") else ""))


def _cell(v) -> str:
    return "–" if v is None else (f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}")


SWAP_INTRO = ("Each protected photo is one side of a swap with a photo of a different person. Each value: the clean "
              "photo's swap → the protected photo's swap, both judged against the clean source and target. Closer to "
              "source: the share of swaps whose identity is nearer the source's than the target's (a protection "
              "works when it falls); landmark NME and background L1 compare the swap with the target; – where the judge "
              "found no face (a swap with no face counts as not closer to the source).")


def swap_table(meta: dict) -> dict | None:
    """The face swaps' identity and keep metrics per cell (what summary.md and the HTML report show), or None
    for a run without a ``swap`` block: ``{"head", "keys", "rows"}`` with ``head`` the column names, ``keys``
    the summary keys of the value columns (closer to source and cosine to the source per identity judge,
    landmark NME, background L1) and ``rows`` ``{"generator", "role", "defense", "setting", "values"}``,
    ``values`` a (clean swap, protected swap) pair of means per key (None where undefined)."""
    sw = meta.get("swap")
    if not sw:
        return None
    gens = meta.get("generators", {})
    swappers = [g for g, gi in gens.items() if gi.get("kind") == "swap" and gi.get("judges")]
    judges = sw.get("judges", [])
    head = ["generator", "protected photo", "defense", "setting"] + [f"closer to source ({j}) ↓" for j in judges] + \
        [f"cos to source ({j}) ↓" for j in judges] + ["landmark NME ↑", "background L1 ↑"]
    keys = [f"swap_closer_{j}" for j in judges] + [f"swap_cos_source_{j}" for j in judges] + \
        ["swap_landmark_nme", "swap_background_l1"]
    rows = [{"generator": e["generator"], "role": gens[e["generator"]].get("protected_role") or "?",
             "defense": e["defense"], "setting": e["setting"], "values": [(e.get("clean_" + k), e.get(k)) for k in keys]}
            for e in meta.get("summary", []) if e["generator"] in swappers]
    return {"head": head, "keys": keys, "rows": rows}


def swap_value(clean, protected) -> str:
    """One swap cell: the clean swap's mean → the protected swap's."""
    return f"{_cell(clean)} → {_cell(protected)}"


def _swap_lines(meta: dict) -> list[str]:
    """:func:`swap_table` as summary.md's face swap section."""
    st = swap_table(meta)
    if st is None:
        return []
    lines = ["## Face swaps", "", SWAP_INTRO, "", "| " + " | ".join(st["head"]) + " |", "|" + "---|" * len(st["head"])]
    for r in st["rows"]:
        lines.append("| " + " | ".join([r["generator"], r["role"], r["defense"], r["setting"]]
                                       + [swap_value(*v) for v in r["values"]]) + " |")
    return lines + [""]


def _transfer_lines(meta: dict, cols: list[str]) -> list[str]:
    """The transfer block's means: each source's perturbations judged on each other target generator."""
    tr = meta.get("transfer")
    if not tr:
        return []
    cols = [c for c in cols if c != "protect_seconds_per_image"]
    lines = [f"## Transfer: perturbations made against a source, judged on another generator (from {', '.join(tr['from'])} "
             f"to {', '.join(tr['to'])})", "",
             "Per-cell means as above, on the target generator (its own preprocessing and edits); the white-box rows "
             "(source = target) are the table above.", "",
             "| source | target | defense | setting | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 4)]
    for e in tr.get("summary", []):
        lines.append(f"| {e['source']} | {e['target']} | {e['defense']} | {e['setting']} | "
                     + " | ".join(_cell(e.get(c)) for c in cols) + " |")
    return lines + _undefined_lines(tr.get("summary", []), transfer=True) + [""]


def _undefined(entry: dict) -> dict:
    """A summary entry's undefined counts, but the swap metrics' (a judge that finds no face: the face
    swap table's "–")."""
    return {m: k for m, k in (entry.get("undefined") or {}).items() if not m.startswith(("swap_", "clean_swap_"))}


def _undefined_lines(summary: list[dict], transfer: bool = False) -> list[str]:
    """A note per cell where some images had no value (NaN: left out of the means)."""
    out = []
    for e in summary:
        for m, k in _undefined(e).items():
            g = f"{e['source']} → {e['target']}" if transfer else e["generator"]
            out.append(f"- {g} / {e['defense']} / {e['setting']}: `{m}` undefined for {k} of "
                       f"{e.get('n_images', '?')} image(s), left out of its mean")
    return ["", "Undefined values:"] + out if out else []


# the handful of columns the terminal shows, in this order (whichever the run measured)
COMPACT = ("mse", "dsr_mse", "l2_mask", "cidr", "id_sim", "lpips", "psnr_adv", "linf_adv")


def compact_table(meta: dict, width: int = 100) -> str:
    """A narrow plain-text table of the key columns for the terminal (the full one is in summary.md)."""
    summary = meta.get("summary", [])
    cols = [c for c in COMPACT if any(c in e for e in summary)]
    if not cols:
        cols = [c for c in (summary[0] if summary else {}) if c not in ("generator", "defense", "setting", "n_images",
                                                                         "undefined", "protect_seconds_per_image")][:6]
    several = len({e["generator"] for e in summary}) > 1
    head = (["generator"] if several else []) + ["defense", "setting"] + cols + ["s/img"]
    body = []
    for e in summary:
        vals = []
        for c in cols + ["protect_seconds_per_image"]:
            v = e.get(c)
            vals.append("–" if v is None else (f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"))
        undefined = sum(_undefined(e).values())
        body.append(([e["generator"]] if several else []) + [e["defense"], e["setting"] + ("*" if undefined else "")] + vals)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    fmt = lambda r: "  ".join(x.ljust(w) if i < len(head) - len(cols) - 1 else x.rjust(w)  # noqa: E731
                              for i, (x, w) in enumerate(zip(r, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body]
    if any(_undefined(e) for e in summary):
        lines.append("* some images had undefined values (left out of the means; see summary.md)")
    return "\n".join(lines + _te_lines(meta))


def _te_lines(meta: dict) -> list[str]:
    """R_TE per defense and source → target, for the terminal (the tables are in summary.md)."""
    te = (meta.get("aggregates") or {}).get("te")
    if not te:
        return []
    rows = {(r["defense"], r["source"]): r for r in te["rows"]}
    out = ["", f"R_TE (mean of min(1, black box / target's white box) over {', '.join(te['axes'])}; TE = mean over targets):"]
    for (d, src), r in rows.items():
        pairs = [p for p in te.get("pairs", []) if p["defense"] == d and p["source"] == src]
        te_s = "–" if r["te"] is None else f"{r['te']:.3f}"
        out.append(f"  {d}: {src} → " + ", ".join(f"{p['target']} {p['r_te']:.3f}" for p in pairs) + f"  (TE {te_s})"
                   if pairs else f"  {d}: {src} → (no target with values)  (TE {te_s})")
    return out
