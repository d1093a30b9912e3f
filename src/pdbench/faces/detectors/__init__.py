"""Face detectors behind one interface (:class:`~.base.FaceDetector`), a registry like every stage's.

``get_detector(name)`` builds one by registered name; each returns, per image, a list of
:class:`~.base.Detection` (box in pixels, score, five landmarks where the model predicts them).
"""

from ...registry import Registry

DETECTORS: Registry = Registry("face detector", __name__)

from .base import Detection, FaceDetector  # noqa: E402


def get_detector(name: str = "retinaface", **kwargs) -> FaceDetector:
    return DETECTORS.get(name).load(**kwargs)


__all__ = ["DETECTORS", "Detection", "FaceDetector", "get_detector"]
