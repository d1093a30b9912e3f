"""Diagnostics of AttentionGAN's start from StarGAN (docs/results/attentiongan-fix.json), on CelebA training faces.

    python benchmarks/attentiongan_start.py content-scale [--n 32]
    python benchmarks/attentiongan_start.py mask-gradients (--start ALPHA | --checkpoint G.safetensors --critic state.pt) [--n 64]

``content-scale``: the L1 between the photo and α·s (s = the shipped StarGAN's output before its Tanh, what a
StarGAN ``--init`` makes AttentionGAN's content) for α in 0.3…1.0, and between α·s and StarGAN's own image
tanh(s), for the unedited condition and each official edit (whole image, hair and face regions).

``mask-gradients``: which term of the official generator loss (adversarial, classification λ_cls 1, cycle L1
λ_rec 10) pushes the attention mask where: the mean gradient of each term with respect to the attention logit
over the hair and face regions, for the translation pass x → c_trg and the cycle pass (positive: a gradient
step closes the mask there, copying the input), and the classification term split by attribute (over the images
whose permuted target differs from the photo). Targets are the batch's labels permuted, as in the trainer.
``--start ALPHA``: the converted start (``content_scale`` α) with the shipped StarGAN's critic; else a
checkpoint with the critic of a run's ``state.pt``.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from pdbench.assets import resolve
from pdbench.data import FaceFolder
from pdbench.generators import get_generator
from pdbench.generators.attentiongan import AttentionGANNet, blend
from pdbench.generators.base import checkpoint_state, float_state
from pdbench.generators.stargan import ATTRS, StarGANDiscriminator, StarGANNet
from pdbench.train.attentiongan import stargan_output_to_attention
from pdbench.train.evaluate import region_masks
from pdbench.train.stargan import cls_loss

ALPHAS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0)
REGIONS = ("hair", "face")


def training_faces(n: int, crop: float) -> tuple[torch.Tensor, torch.Tensor]:
    """n CelebA training faces (seed 0; the held-out 1,000 excluded) at 64 px with their attributes."""
    root = resolve("celeba-10k-89px", check=False)
    ds = FaceFolder(root / "images", 64, attr_file=root / "list_attr_celeba_first20k.txt", check_files=False, crop=crop)
    train, _ = ds.split(1000)
    idx = ds.select(n, seed=0, pool=train)
    return ds.load(idx), ds.labels(ATTRS, idx)


def l1(a: torch.Tensor, b: torch.Tensor, masks: dict) -> dict:
    d = (a - b).abs().mean(1)
    return {"all": round(float(d.mean()), 4), **{k: round(float(d[:, masks[k]].mean()), 4) for k in REGIONS}}


@torch.inference_mode()
def content_scale(n: int) -> dict:
    G = get_generator("stargan")
    x, labels = training_faces(n, G.crop)
    masks = region_masks(64, 64)
    out = {"faces": f"{n} CelebA training faces (seed 0)", "conditions": {}}
    for name, c in [("unedited", G.unedited(labels, n))] + list(zip(G.condition_names, G.conditions(labels, n))):
        s = G.net.main[:-1](torch.cat([x, c[:, :, None, None].expand(-1, -1, 64, 64)], 1))  # before the Tanh
        row = {"stargan_image_vs_photo": l1(torch.tanh(s), x, masks),
               "scales": {str(a): {"vs_photo": l1(a * s, x, masks), "vs_stargan_image": l1(a * s, torch.tanh(s), masks)}
                          for a in ALPHAS}}
        row["closest_to_photo"] = float(min(ALPHAS, key=lambda a: row["scales"][str(a)]["vs_photo"]["all"]))
        row["closest_to_stargan_image"] = float(min(ALPHAS, key=lambda a: row["scales"][str(a)]["vs_stargan_image"]["all"]))
        out["conditions"][name] = row
    return out


def mask_gradients(n: int, start: float | None, checkpoint: str | None, critic: str | None) -> dict:
    r = 64
    G = AttentionGANNet(16, len(ATTRS), 6)
    D = StarGANDiscriminator(r, 16, len(ATTRS), 5)
    if start is not None:
        g_state, _, meta = checkpoint_state(None, "stargan-celeba-64-pdbench")
        g_state = float_state(g_state)
        stargan_output_to_attention(g_state, "", content_scale=start)
        d_state = float_state(checkpoint_state(None, meta["critic"])[0])
    else:
        g_state = float_state(checkpoint_state(checkpoint, "attentiongan-celeba-64-pdbench")[0])
        d_state = torch.load(critic, map_location="cpu", weights_only=True)["D"]
    G.load_state_dict(g_state)
    D.load_state_dict(d_state)
    G.eval()
    D.eval()
    x, c_org = training_faces(n, get_generator("stargan").crop)  # AttentionGAN takes StarGAN's preprocessing
    c_trg = c_org[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    masks = region_masks(r, r)

    def passes():
        o1 = StarGANNet.forward(G, x, c_trg)  # the raw 4 channels: attention logit, content
        o1.retain_grad()
        y, a1, _ = blend(x, o1)
        o2 = StarGANNet.forward(G, y, c_org)
        o2.retain_grad()
        return o1, y, a1, o2, blend(y, o2)[0]

    def region_grad(o: torch.Tensor, rows=slice(None)) -> dict:
        g = torch.zeros_like(o[rows, 0]) if o.grad is None else o.grad[rows, 0] * r * r  # per pixel, per image mean
        return {k: round(float(g[:, masks[k]].mean()), 5) for k in REGIONS}

    out = {"start": f"content_scale {start:g} from the shipped StarGAN, its critic" if start is not None else
           f"{checkpoint}, critic of {critic}", "faces": f"{n} CelebA training faces (seed 0), targets permuted (seed 0)",
           "terms": {}, "classification_by_attribute": {}}
    for term in ("adv", "cls", "rec"):
        o1, y, a1, o2, rec = passes()
        src, cls = D(y)
        loss = {"adv": -src.mean(), "cls": cls_loss(cls, c_trg), "rec": 10 * (x - rec).abs().mean()}[term]
        G.zero_grad()
        loss.backward()
        out["terms"][term] = {"loss": round(float(loss.detach()), 4), "translation": region_grad(o1), "cycle": region_grad(o2)}
    out["mask"] = {k: round(float(a1[:, 0][:, masks[k]].mean().detach()), 4) for k in REGIONS}
    for j, name in enumerate(ATTRS):
        sel = c_trg[:, j] != c_org[:, j]
        o1, y, *_ = passes()
        _, cls = D(y)
        loss = F.binary_cross_entropy_with_logits(cls[sel, j], c_trg[sel, j], reduction="sum") / n
        G.zero_grad()
        loss.backward()
        out["classification_by_attribute"][name] = {"images": int(sel.sum()), **region_grad(o1, sel)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("content-scale", "mask-gradients"))
    ap.add_argument("--n", type=int, default=None, help="training faces (default 32 for content-scale, 64 for mask-gradients)")
    ap.add_argument("--start", type=float, default=None, help="mask-gradients at the converted start with this content_scale")
    ap.add_argument("--checkpoint", default=None, help="mask-gradients of this AttentionGAN generator ...")
    ap.add_argument("--critic", default=None, help="... with the critic of this run's state.pt")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.what == "content-scale":
        rep = content_scale(args.n or 32)
    else:
        if (args.start is None) == (args.checkpoint is None) or (args.checkpoint and not args.critic):
            ap.error("mask-gradients: give --start ALPHA, or --checkpoint G.safetensors with --critic state.pt")
        rep = mask_gradients(args.n or 64, args.start, args.checkpoint, args.critic)
    print(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
