"""What the detectors that run an official ONNX file in OpenCV's DNN engine share (YuNet, SCRFD)."""

from __future__ import annotations

import torch

from ...assets import ASSETS, resolve
from ...errors import AssetMissingError
from .base import FaceDetector


class OpenCVDetector(FaceDetector):
    asset = "?"  # the ONNX file's asset name

    def __init__(self, model: str):
        try:
            import cv2
        except ImportError as e:
            raise AssetMissingError(f"{type(self).__name__} needs OpenCV: `pip install opencv-contrib-python-headless` "
                                    "(or pdbench[faces])") from e
        if hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        self.cv2 = cv2
        self.model = model

    @classmethod
    def load(cls, checkpoint: str | None = None, device: str | torch.device = "cpu") -> "OpenCVDetector":
        """The asset (sha256-checked) or an ONNX file of the same model; OpenCV runs it on the CPU."""
        return cls(checkpoint or str(resolve(ASSETS.get(cls.asset).name)))
