"""Is a trained attribute editor a real one? Where its edits act, and how well it reconstructs.

On aligned faces (CelebA crops), regions are fixed boxes in relative coordinates: *hair* is the top
quarter of the crop plus the outer 15 % columns down to 70 % of the height; *face* is the central box
(rows 35–90 %, columns 30–70 %) holding eyes, nose and mouth; inside it, *eyes* (rows 44–60 %,
columns 28–72 %) and *mouth* (rows 68–86 %, columns 32–68 %) are bands around where dlib finds them
on CelebA's crops (mean eye height 52 %, mouth 76 %). A hair-colour edit should change the hair region
much more than the face; gender and age edits should change the face; eyeglasses the eyes, a
moustache or an open mouth the mouth.

:func:`identity_report` asks whether the deepfake still shows the person: the cosine of MobileFaceNet
embeddings (CelebA box) between a photo and its unprotected edit G(x, c). An editor that has already
lost the person makes identity metrics of a defense (CIDR, ID similarity) meaningless.
"""

from __future__ import annotations

import torch

from ..errors import InputError


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


@torch.inference_mode()
def attention_report(G, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Where an attention-blending generator (AttentionGAN: ``G.attention(x, c)`` returns its mask A in
    [0, 1], 1 = generated, 0 = copied from the photo, and its content C) generates, per official edit and
    unedited: the mean of A over the image and in the hair and face regions; ``content_hair`` /
    ``content_face``, the mean |C − x| there (how far what A lets through is from the photo); and, per edit,
    ``vs_unedited``, the mean |A(x, c) − A(x, c_org)| (0: the edit uses the same mask as no edit — an
    edit-independent attention)."""
    masks = region_masks(*x.shape[-2:])
    n = x.shape[0]

    def stats(c: torch.Tensor) -> tuple[dict, torch.Tensor]:
        _, a, content = G.attention(x, c)
        a, err = a[:, 0], (content - x).abs().mean(1)
        return {"mean": float(a.mean()), **{k: float(a[:, masks[k]].mean()) for k in ("hair", "face")},
                **{f"content_{k}": float(err[:, masks[k]].mean()) for k in ("hair", "face")}}, a

    unedited, a_org = stats(G.unedited(labels, n))
    out: dict = {"edits": {}, "unedited": unedited}
    for name, c in zip(G.condition_names, G.conditions(labels, n)):
        st, a = stats(c)
        out["edits"][name] = {**st, "vs_unedited": float((a - a_org).abs().mean())}
    return out


@torch.inference_mode()
def identity_report(G, x: torch.Tensor, labels: torch.Tensor, batch: int = 16) -> dict:
    """Mean cosine similarity of MobileFaceNet embeddings (``pdbench.faces.identity``, CelebA box): photo vs
    G(x, c) for each official edit (``edits``, and their mean ``mean_edit``), photo vs the reconstruction
    G(x, c_org), and photo vs another face of the batch (``other_face``: the level of a stranger)."""
    from ..faces.identity import get_embedder
    from ..metrics.base import in_chunks

    emb = get_embedder("celeba", x.device)
    n = x.shape[0]
    embed = lambda imgs: in_chunks(emb, imgs.clamp(-1, 1), size=batch)  # noqa: E731
    run = lambda c: in_chunks(G.generate, x, c.to(x.device), size=batch)  # noqa: E731
    e_x = embed(x)
    cos = {name: float((e_x * embed(run(c))).sum(1).mean()) for name, c in zip(G.condition_names, G.conditions(labels, n))}
    return {"edits": cos, "mean_edit": sum(cos.values()) / len(cos),
            "reconstruction": float((e_x * embed(run(G.unedited(labels, n)))).sum(1).mean()),
            "other_face": float((e_x * e_x.roll(1, 0)).sum(1).mean())}


@torch.inference_mode()
def fid_report(G, x_a: torch.Tensor, x_b: torch.Tensor, labels_b: torch.Tensor | None, batch: int = 50) -> dict:
    """FIDs of a generator's outputs against real faces (the model cards' protocol, ``fid_generators.py``):
    two disjoint sets of n held-out faces A and B; ``real_vs_real`` FID(A, B), the floor that n alone
    gives; ``edited`` FID(A, G(B, c)) with each face of B edited once, the official edits taken in turn;
    ``reconstruction`` FID(A, G(B, c_org)). FID is biased upward at small n: compare only equal n."""
    from ..metrics.base import in_chunks
    from ..metrics.fid import features, fid_from_features

    device = x_b.device
    n = x_b.shape[0]
    labels_b = None if labels_b is None else labels_b.to(device)
    cs = G.conditions(labels_b, n).to(device)  # (K, n, C): the official edits
    ar = torch.arange(n, device=device)
    edited = in_chunks(G.generate, x_b, cs[ar % cs.shape[0], ar], size=batch).clamp(-1, 1)
    recon = in_chunks(G.generate, x_b, G.unedited(labels_b, n).to(device), size=batch).clamp(-1, 1)
    f_a, f_b = features(x_a, device), features(x_b, device)
    return {"n": n, "real_vs_real": round(fid_from_features(f_a, f_b), 2),
            "edited": round(fid_from_features(f_a, features(edited, device)), 2),
            "reconstruction": round(fid_from_features(f_a, features(recon, device)), 2)}


def held_out_fid(G, root, n: int, check_files: bool = True) -> dict:
    """:func:`fid_report` on the model cards' sets (``benchmarks/fid_generators.py``): 2n held-out faces of
    the CelebA asset at ``root`` (the last 1,000, never trained on; seed 0), preprocessed as ``G``'s weights
    want, alternately into real set A and set B; on ``G``'s device."""
    from ..data import FaceFolder

    device = next(G.parameters()).device
    ds = FaceFolder(root / "images", G.resolution, attr_file=root / "list_attr_celeba_first20k.txt",
                    check_files=check_files, crop=G.crop)
    _, test = ds.split(1000)
    idx = ds.select(2 * n, seed=0, pool=test)
    a_idx, b_idx = idx[0::2], idx[1::2]
    return fid_report(G, ds.load(a_idx), ds.load(b_idx).to(device), ds.labels(G.attributes, b_idx).to(device))


HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair")


def stargan_classifier():
    """The attribute head of pdbench's trained StarGAN critic (asset ``stargan-celeba-64-pdbench-critic``,
    trained on the same 9,000 CelebA faces, never on the held-out ones) as a classifier of 64 px faces:
    x (N, 3, 64, 64) -> logits (N, 5) over StarGAN's Black_Hair, Blond_Hair, Brown_Hair, Male, Young."""
    from ..generators.base import checkpoint_state, load_frozen
    from ..generators.stargan import ATTRS, StarGANDiscriminator

    state, path, _ = checkpoint_state(None, "stargan-celeba-64-pdbench-critic")
    depth = len({k.split(".")[1] for k in state if k.startswith("main.") and k.endswith(".weight")})
    net = StarGANDiscriminator(64, int(state["main.0.weight"].shape[0]), len(ATTRS), depth)
    net = load_frozen(net, state, path)
    return lambda x: net(x)[1]


@torch.inference_mode()
def hair_accuracy(G, x: torch.Tensor, labels: torch.Tensor, classify=None) -> dict:
    """Attribute accuracy of each hair-colour edit (an edit named ``to_<colour>``): the fraction of
    edited faces G(x, c) whose most likely hair colour, by :func:`stargan_classifier`, is the target;
    ``real``: the same for the photos themselves with a single-colour label (how well the classifier
    reads real hair), ``unedited``: how often G(x, c_org) already shows each target colour (chance)."""
    classify = classify or stargan_classifier()
    n = x.shape[0]
    pick = lambda imgs: classify(imgs.clamp(-1, 1))[:, :3].argmax(1)  # noqa: E731
    out: dict = {"edits": {}, "unedited": {}}
    same = pick(G.generate(x, G.unedited(labels, n)))
    for name, c in zip(G.condition_names, G.conditions(labels, n)):
        colour = name.removeprefix("to_")
        if colour in HAIR_COLOURS:
            k = HAIR_COLOURS.index(colour)
            out["edits"][name] = float((pick(G.generate(x, c)) == k).float().mean())
            out["unedited"][name] = float((same == k).float().mean())
    return out


@torch.inference_mode()
def real_hair_accuracy(x: torch.Tensor, hair: torch.Tensor, classify=None) -> tuple[float, int]:
    """(accuracy, count) of the classifier on real faces whose labels (N, 3 hair colours) name exactly one."""
    classify = classify or stargan_classifier()
    one = hair.sum(1) == 1
    if not bool(one.any()):
        return float("nan"), 0
    got = classify(x[one])[:, :3].argmax(1)
    return float((got == hair[one].argmax(1)).float().mean()), int(one.sum())


def edit_targets(G, labels: torch.Tensor, c, c_org) -> tuple[torch.Tensor, torch.Tensor]:
    """What an edit asks of each face, over ``G.attributes``: (changed (N, A) bool, target (N, A) in {0, 1}).

    Read from the generator's own encoding, whatever it is: where the condition ``c`` differs from the
    unedited one ``c_org``, the sign of the difference says whether the attribute is pushed on (+) or off
    (−) — StarGAN-family target labels (c − labels), AttGAN's ±thres/±test_int scaling, RelGAN's relative
    vectors (c − 0) and HiSD's tags (c − 0) all encode "more of the attribute" as larger. An attribute
    counts as changed for a face only where that target differs from the face's own label (HiSD's
    ``to_Black_Hair`` on a black-haired face asks for nothing new)."""
    from ..generators.base import Condition

    a = c.attrs if isinstance(c, Condition) else c
    a_org = c_org.attrs if isinstance(c_org, Condition) else c_org
    if a is None or a_org is None or a.shape != labels.shape:
        raise InputError(f"{G.name}: attribute_success needs attribute conditions of shape {tuple(labels.shape)} "
                         f"(over {', '.join(G.attributes)}), got {None if a is None else tuple(a.shape)}")
    diff = a.float().cpu() - a_org.float().cpu()
    pushed = diff.abs() > 1e-6
    target = torch.where(pushed, (diff > 0).float(), labels.float())
    return pushed & (target != labels.float()), target


@torch.inference_mode()
def attribute_success(G, x: torch.Tensor, labels: torch.Tensor, classify, judge_accuracy: dict | None = None,
                      batch: int = 50) -> dict:
    """Does an independent classifier read each official edit as its target? Per edit (``G.condition_names``):

    the faces the edit changes (``faces``; :func:`edit_targets`, over the attributes the classifier reads),
    the attribute it is about (``attribute``: the one named by the edit, ``to_X`` / ``flip_X``, else the one
    it changes most often), ``success``: the fraction of those faces whose edited output G(x, c) is read as
    the target on every changed attribute, and ``baseline``: the same test on the unedited output G(x, c_org)
    (how often the target is read without the edit). Reading: the three hair colours are mutually exclusive
    (the one turned on must be the argmax of the three; one only turned off must not be), every other
    attribute is sigmoid > 0.5. ``judge_balanced_accuracy``: the classifier's balanced accuracy on that
    attribute on real held-out faces, from ``judge_accuracy`` (:func:`pdbench.train.classifier.accuracy_report`
    of those faces; hair colours by the argmax reading) — can the judge see the attribute at all?
    ``change``: mean |G(x, c) − G(x, c_org)| in each region of :func:`region_masks` over all the images (as
    :func:`edit_report`), and ``strength``, its largest region value (how much the edit changes the image
    where it acts). ``by_direction``: success and baseline among the faces where the edit turns its
    attribute on and those where it turns it off (a flip of Male: female→male and male→female).

    ``classify``: x (N, 3, 64, 64) in [-1, 1] -> logits over ``classify.attributes`` (e.g.
    :func:`pdbench.train.classifier.attr_classifier`); it receives exactly the images the generator produced."""
    from ..metrics.base import in_chunks

    names = list(classify.attributes)
    g_attrs = list(G.attributes)
    n = x.shape[0]
    labels = labels.float().cpu()
    cs = G.conditions(labels, n)
    c_org = G.unedited(labels, n)
    device = x.device
    col = {i: names.index(a) for i, a in enumerate(g_attrs) if a in names}  # G's attribute -> classifier column
    hair_g = [g_attrs.index(h) for h in HAIR_COLOURS if h in g_attrs]
    hair_k = [names.index(h) for h in HAIR_COLOURS if h in names]

    def run(c) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(c, torch.Tensor):
            y = in_chunks(G.generate, x, c.to(device), size=batch)
        else:  # a Condition: the generator takes it whole
            y = G.generate(x, c)
        return y, classify(y.clamp(-1, 1)).cpu()

    def matches(logits: torch.Tensor, changed: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ok = torch.ones(n, dtype=torch.bool)
        hair_argmax = logits[:, hair_k].argmax(1) if len(hair_k) == 3 else None
        for i in range(len(g_attrs)):
            ch = changed[:, i]
            if not bool(ch.any()):
                continue
            if i in hair_g and hair_argmax is not None:
                is_it = hair_argmax == HAIR_COLOURS.index(g_attrs[i])
            else:
                is_it = logits[:, col[i]] > 0
            ok &= ~ch | (is_it == target[:, i].bool())
        return ok

    y_org, base_logits = run(c_org)
    masks = region_masks(*x.shape[-2:])
    judge = (judge_accuracy or {}).get("attributes", {})
    out: dict = {"generator": G.name, "n_images": n, "edits": {}}
    for k, name in enumerate(G.condition_names):
        c = cs[k]
        changed, target = edit_targets(G, labels, c, c_org)
        unread = sorted({g_attrs[i] for i in range(len(g_attrs)) if i not in col and bool(changed[:, i].any())})
        changed = changed.clone()
        changed[:, [i for i in range(len(g_attrs)) if i not in col]] = False
        faces = changed.any(1)
        named = name.split("_", 1)[1] if "_" in name else name
        if named in g_attrs and g_attrs.index(named) in col:
            attribute = named
        else:
            counts = changed.sum(0)
            attribute = g_attrs[int(counts.argmax())] if bool(faces.any()) else None
        rec: dict = {"attribute": attribute, "faces": int(faces.sum())}
        if unread:
            rec["unread_attributes"] = unread
        y, logits = run(c)
        d = (y - y_org).abs().mean(dim=1)
        rec["change"] = {r: round(float(d[:, m].mean()), 4) for r, m in masks.items()}
        rec["strength"] = max(rec["change"].values())
        if bool(faces.any()):
            edited = matches(logits, changed, target)
            same = matches(base_logits, changed, target)
            rec["success"] = round(float(edited[faces].float().mean()), 4)
            rec["success_ci95"] = [round(v, 4) for v in wilson_interval(int(edited[faces].sum()), int(faces.sum()))]
            rec["baseline"] = round(float(same[faces].float().mean()), 4)
            if attribute in g_attrs:  # by direction: faces where the edit turns its attribute on / off
                i = g_attrs.index(attribute)
                for way, val in (("on", 1.0), ("off", 0.0)):
                    sel = changed[:, i] & (target[:, i] == val)
                    if bool(sel.any()):
                        rec.setdefault("by_direction", {})[way] = {
                            "faces": int(sel.sum()), "success": round(float(edited[sel].float().mean()), 4),
                            "baseline": round(float(same[sel].float().mean()), 4)}
        else:
            rec["success"] = rec["baseline"] = None
        j = judge.get(attribute, {}) if attribute else {}
        rec["judge_balanced_accuracy"] = j.get("balanced_accuracy_argmax", j.get("balanced_accuracy"))
        out["edits"][name] = rec
    return out


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % at z 1.96) of a rate k / n: how far a success rate measured on n faces
    can be trusted (on 16 faces a true 60 % reads 75 % often enough to matter)."""
    if n <= 0:
        return float("nan"), float("nan")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5 / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# The proposed rule "is this editor real?", the same for every editor (see real_editor).
RULE = {"min_judge_balanced_accuracy": 0.80, "min_success": 0.70, "min_margin": 0.30, "min_strength": 0.02,
        "min_faces": 100}


def real_editor(report: dict, **thresholds: float) -> tuple[bool, list[str]]:
    """The proposed rule applied to an :func:`attribute_success` report: (real?, reasons).

    An edit is *judged* when the classifier's held-out balanced accuracy on its attribute is at least
    ``min_judge_balanced_accuracy``; every judged edit must be read as its target on at least
    ``min_success`` of the faces it changes and at least ``min_margin`` above its unedited baseline; every
    edit must change the image by at least ``min_strength`` mean |Δ| where it acts (``strength``: its
    largest region). An edit measured on fewer than ``min_faces`` changed faces is not judged either (a rate
    on few faces is too uncertain: ``success_ci95`` is its Wilson interval). An editor with no judged edit is
    not shown real. ``reasons`` names each failure (and
    each edit left unjudged); ``thresholds`` override :data:`RULE`'s values (unknown names are an error)."""
    unknown = sorted(set(thresholds) - set(RULE))
    if unknown:
        raise InputError(f"real_editor: unknown threshold(s) {unknown}; the rule has {', '.join(RULE)}")
    t = {**RULE, **thresholds}
    edits = report.get("edits") or {}
    if not edits:
        raise InputError("real_editor: the report has no edits; pass attribute_success(...)'s report")
    ok, reasons, judged = True, [], 0
    for name, e in edits.items():
        strength = e.get("strength")
        if strength is None or strength < t["min_strength"]:
            ok = False
            reasons.append(f"{name}: changes the image by {strength} mean |Δ| where it acts (< {t['min_strength']})")
        acc = e.get("judge_balanced_accuracy")
        if acc is None or acc != acc or acc < t["min_judge_balanced_accuracy"]:
            reasons.append(f"{name}: not judged (the classifier's balanced accuracy on {e.get('attribute')} is {acc}, "
                           f"< {t['min_judge_balanced_accuracy']})")
            continue
        if e.get("success") is None:
            reasons.append(f"{name}: not judged (no face that the edit changes)")
            continue
        if (e.get("faces") or 0) < t["min_faces"]:
            ok = False
            reasons.append(f"{name}: not judged on {e.get('faces')} changed faces (< {t['min_faces']}): measure on more faces")
            continue
        judged += 1
        s, b = e["success"], e["baseline"]
        if s < t["min_success"]:
            ok = False
            reasons.append(f"{name}: read as its target on {s:.0%} of the edited faces (< {t['min_success']:.0%})")
        if round(s - b, 9) < t["min_margin"]:  # rounded: 0.7 - 0.4 is 0.2999… in floating point
            ok = False
            reasons.append(f"{name}: {100 * (s - b):.0f} points above its unedited baseline {b:.0%} (< {100 * t['min_margin']:.0f})")
    if not judged:
        ok = False
        reasons.append("no edit could be judged")
    return ok, reasons
