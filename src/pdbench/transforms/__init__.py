"""Practical settings: what happens to a protected photo before a deepfake generator sees it."""

from ..registry import Registry

TRANSFORMS: Registry = Registry("transform", __name__)

from .base import Transform, parse_setting  # noqa: E402

__all__ = ["TRANSFORMS", "Transform", "parse_setting"]
