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
    lines.append("")
    if meta.get("aggregates"):
        lines.append(aggregates_table(meta["aggregates"]))
    return "\n".join(lines)
