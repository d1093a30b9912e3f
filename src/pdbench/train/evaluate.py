"""Is a trained attribute editor a real one? Where its edits act, and how well it reconstructs.

On aligned faces (CelebA crops), regions are fixed boxes in relative coordinates: *hair* is the top
quarter of the crop plus the outer 15 % columns down to 70 % of the height; *face* is the central box
(rows 35–90 %, columns 30–70 %) holding eyes, nose and mouth; inside it, *eyes* (rows 44–60 %,
columns 28–72 %) and *mouth* (rows 68–86 %, columns 32–68 %) are bands around where dlib finds them
on CelebA's crops (mean eye height 52 %, mouth 76 %). A hair-colour edit should change the hair region
much more than the face; gender and age edits should change the face; eyeglasses the eyes, a
moustache or an open mouth the mouth.
"""

from __future__ import annotations

import torch


def region_masks(h: int, w: int) -> dict[str, torch.Tensor]:
    ys = (torch.arange(h).float() + 0.5) / h
    xs = (torch.arange(w).float() + 0.5) / w
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    hair = (yy < 0.25) | (((xx < 0.15) | (xx > 0.85)) & (yy < 0.70))
    face = (yy > 0.35) & (yy < 0.90) & (xx > 0.30) & (xx < 0.70)
    eyes = (yy > 0.44) & (yy < 0.60) & (xx > 0.28) & (xx < 0.72)
    mouth = (yy > 0.68) & (yy < 0.86) & (xx > 0.32) & (xx < 0.68)
    return {"hair": hair, "face": face, "eyes": eyes, "mouth": mouth}


@torch.inference_mode()
def edit_report(G, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Per-edit mean |G(x, c) − G(x, c_org)| in the hair and face regions, plus reconstruction L1 errors.

    ``G`` is a :class:`pdbench.generators.Generator` (its official edits and its "no change" condition).
    Edits are measured against the unedited output G(x, c_org), so that what the generator changes
    everywhere (its reconstruction error) does not count as the edit.
    """
    masks = region_masks(*x.shape[-2:])
    n = x.shape[0]
    cs = G.conditions(labels, n)
    c_org = G.unedited(labels, n)
    out: dict = {"edits": {}}
    rec = []
    same = G.generate(x, c_org)
    for name, c in zip(G.condition_names, cs):
        y = G.generate(x, c)
        d = (y - same).abs().mean(dim=1)  # (N, H, W)
        out["edits"][name] = {k: float(d[:, m].mean()) for k, m in masks.items()}
        rec.append(float((G.generate(y, c_org) - x).abs().mean()))
    out["cycle_l1"] = sum(rec) / len(rec)  # G(G(x, c_trg), c_org) vs x
    out["self_l1"] = float((same - x).abs().mean())  # G(x, c_org) vs x
    return out
