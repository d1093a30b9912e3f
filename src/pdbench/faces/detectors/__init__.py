"""Face detectors behind one interface (:class:`~.base.FaceDetector`), a registry like every stage's.

``get_detector(name)`` builds one by registered name; each returns, per image, a list of
:class:`~.base.Detection` (box in pixels, score, five landmarks where the model predicts them).
"""

from functools import lru_cache

from ...registry import Registry

DETECTORS: Registry = Registry("face detector", __name__)

from .base import Detection, FaceDetector  # noqa: E402


def get_detector(name: str = "retinaface", **kwargs) -> FaceDetector:
    return DETECTORS.get(name).load(**kwargs)


@lru_cache(maxsize=8)
def shared_detector(name: str = "retinaface", device: str = "cpu") -> FaceDetector:
    """One loaded detector per (name, device) for the whole process (metrics, identity alignment).

    Built outside inference mode even when first asked for inside it (a swap metric's alignment): weights
    created there would be inference tensors, unusable for the gradients of a later attack (TSDF's poisoning)."""
    import torch

    with torch.inference_mode(False):
        return get_detector(name, device=device)


__all__ = ["DETECTORS", "Detection", "FaceDetector", "get_detector", "shared_detector"]
