"""MobileFaceNet identity embedding and the identity metrics (CIDR, ID sim) on real faces."""

import random
from collections import defaultdict

import pytest
import torch

from conftest import require_asset
from pdbench.data import FaceFolder
from pdbench.faces import MobileFaceNet, get_embedder
from pdbench.metrics import MetricInputs, get_metric


def test_official_checkpoint_loads_strictly():
    from pdbench.assets import load_state_dict

    state = load_state_dict(require_asset("mobilefacenet"))["net_state_dict"]
    MobileFaceNet().load_state_dict(state, strict=True)


def _roc_auc(pos, neg):
    return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))


def test_lfw_same_person_scores_above_different_person():
    root = require_asset("lfw-gray-250") / "images"
    ds = FaceFolder(root, 250, check_files=False)
    ids = defaultdict(list)
    for i, p in enumerate(ds.files):
        ids[p.stem.rsplit("_", 1)[0]].append(i)
    rng = random.Random(0)
    multi = [k for k, v in ids.items() if len(v) >= 2]
    pos = [tuple(rng.sample(ids[k], 2)) for k in rng.sample(multi, 100)]
    names = list(ids)
    neg = []
    while len(neg) < 100:
        a, b = rng.sample(names, 2)
        neg.append((rng.choice(ids[a]), rng.choice(ids[b])))
    idx = sorted({i for pr in pos + neg for i in pr})
    where = {j: k for k, j in enumerate(idx)}
    emb = get_embedder("lfw")
    with torch.inference_mode():
        x = ds.load(idx)
        f = torch.cat([emb(x[i:i + 50]) for i in range(0, len(idx), 50)])
    sim = lambda pr: float(f[where[pr[0]]] @ f[where[pr[1]]])  # noqa: E731
    auc = _roc_auc([sim(p) for p in pos], [sim(p) for p in neg])
    print(f"LFW (grayscale, centre crop) ROC-AUC over 100+100 pairs: {auc:.4f}")
    assert auc > 0.95


def test_identity_metrics_by_construction(celeba_test_batch):
    x, _, _ = celeba_test_batch
    x = x[:6]
    other = x.roll(1, dims=0)  # someone else's face
    same = MetricInputs(x, x, x[None].clone(), x[None].clone())
    swapped = MetricInputs(x, x, x[None].clone(), other[None].clone())
    assert torch.allclose(get_metric("id_sim")(same), torch.ones(6), atol=1e-4)
    assert float(get_metric("id_sim")(swapped).mean()) < 0.5
    # G(x) = x exactly gives L_ID(x, G(x)) = 0, so any identity loss of G(x_adv) counts fully
    assert float(get_metric("cidr")(swapped).mean()) > 0.9
    assert float(get_metric("cidr")(same).max()) == 0.0


def test_embedding_is_differentiable(celeba_test_batch):
    x = celeba_test_batch[0][:2].clone().requires_grad_(True)
    f = get_embedder("celeba")(x)
    (f[0] @ f[1]).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
