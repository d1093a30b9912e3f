"""Five-point alignment: the similarity estimate is exact, and the warp puts landmarks on the template."""

import math

import torch

from pdbench.faces.align import ARCFACE_112, MOBILEFACENET_112x96, align, similarity


def test_similarity_recovers_a_known_transform():
    ang, s, t = 0.3, 1.7, torch.tensor([12.0, -5.0])
    rot = torch.tensor([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    src = torch.rand(2, 5, 2) * 100
    dst = src[0] @ (s * rot).T + t
    m = similarity(src[:1], dst)[0]
    assert torch.allclose(m[:2, :2].float(), s * rot, atol=1e-4) and torch.allclose(m[:2, 2].float(), t, atol=1e-3)
    assert torch.equal(MOBILEFACENET_112x96[:, 1], ARCFACE_112[:, 1])


def test_warp_moves_each_landmark_onto_the_template():
    """Bright dots at five landmark positions land on the template's points (within half a pixel)."""
    h = w = 160
    ang = -0.25
    rot = torch.tensor([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    pts = (ARCFACE_112 - 56) @ (1.3 * rot).T + torch.tensor([80.0, 75.0])
    for k in range(5):
        yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
        dot = torch.exp(-((xx - pts[k, 0]) ** 2 + (yy - pts[k, 1]) ** 2) / (2 * 2.0 ** 2))
        out = align(dot.expand(1, 3, h, w), pts[None])  # background 0, so only the dot carries mass
        v = out[0, 0]
        cy = float((v.sum(1) * torch.arange(112)).sum() / v.sum())
        cx = float((v.sum(0) * torch.arange(112)).sum() / v.sum())
        assert abs(cx - ARCFACE_112[k, 0]) < 0.5 and abs(cy - ARCFACE_112[k, 1]) < 0.5, (k, cx, cy)


def test_alignment_is_differentiable():
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    pts = ARCFACE_112[None] * 0.5
    align(x, pts).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
