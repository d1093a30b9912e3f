"""Markdown summary of a benchmark run (rendered from results.json, the single source of truth)."""

from __future__ import annotations

from .pdb import aggregates_table

SHORT = {"higher=more disrupted": "↑", "lower=more disrupted": "↓", "lower=less visible": "↓ (visibility)",
         "higher=less visible": "↑ (visibility)"}


def summary_table(meta: dict, metric_names: list[str]) -> str:
    cols = list(metric_names) + ["protect_seconds_per_image"]
    info = meta.get("metrics", {})
    lines = [f"# {meta.get('name', 'benchmark')}", ""]
    for g, gi in meta.get("generators", {}).items():
        lines.append(f"- generator `{g}` (weights {gi.get('weights', '?')}): {gi['n_images']} images at {gi['resolution']} px, "
                     f"edits {', '.join(gi['conditions'])}")
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
    if meta.get("aggregates"):
        lines.append(aggregates_table(meta["aggregates"]))
    return "\n".join(lines)


def _undefined_lines(summary: list[dict]) -> list[str]:
    """A note per cell where some images had no value (NaN: left out of the means)."""
    out = []
    for e in summary:
        for m, k in (e.get("undefined") or {}).items():
            out.append(f"- {e['generator']} / {e['defense']} / {e['setting']}: `{m}` undefined for {k} of "
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
        undefined = sum((e.get("undefined") or {}).values())
        body.append(([e["generator"]] if several else []) + [e["defense"], e["setting"] + ("*" if undefined else "")] + vals)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    fmt = lambda r: "  ".join(x.ljust(w) if i < len(head) - len(cols) - 1 else x.rjust(w)  # noqa: E731
                              for i, (x, w) in enumerate(zip(r, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body]
    if any(e.get("undefined") for e in summary):
        lines.append("* some images had undefined values (left out of the means; see summary.md)")
    return "\n".join(lines)
