"""Process-wide model caches hold normal tensors: a detector first loaded inside ``torch.inference_mode``
(a swap metric's alignment does that) still takes gradients later (TSDF's poisoning backpropagates
through the same shared RetinaFace)."""

import torch

from pdbench.faces.detectors import shared_detector


def test_shared_detector_first_loaded_in_inference_mode_still_takes_gradients():
    shared_detector.cache_clear()
    with torch.inference_mode():
        det = shared_detector("retinaface", "cpu")
    x = torch.zeros(1, 3, 64, 64, requires_grad=True)
    out = det.net(x)
    loss = sum(o.float().sum() for o in (out if isinstance(out, (tuple, list)) else [out]))
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
