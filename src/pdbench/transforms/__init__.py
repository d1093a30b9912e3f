"""Practical settings: what happens to a protected photo before a deepfake generator sees it."""

from ..registry import Registry

TRANSFORMS: Registry = Registry("transform", __name__)

from .base import Transform, parse_setting  # noqa: E402


def expand_settings(settings: list) -> list:
    """The config's ``settings:`` as transforms, each probe-set name (``pdb-code``, ``sweep-jpeg``, …)
    replaced by its probes (see :mod:`pdbench.transforms.probe_sets`)."""
    from .probe_sets import expand

    return expand(settings)


__all__ = ["TRANSFORMS", "Transform", "expand_settings", "parse_setting"]
