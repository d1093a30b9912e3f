"""Deepfake generators. ``get_generator(name)`` builds one by registered name; see ``base.Generator``."""

from ..registry import Registry

GENERATORS: Registry = Registry("generator", __name__)

from .base import Generator, Target, TargetMember  # noqa: E402


def get_generator(name: str, **kwargs) -> Generator:
    return GENERATORS.get(name).from_assets(**kwargs)


__all__ = ["GENERATORS", "Generator", "Target", "TargetMember", "get_generator"]
