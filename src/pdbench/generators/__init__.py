"""Deepfake generators. ``get_generator(name)`` builds one by registered name; see ``base.Generator``."""

from ..registry import Registry

GENERATORS: Registry = Registry("generator", __name__)

from .base import Generator, Target, TargetMember  # noqa: E402


def get_generator(name: str, **kwargs) -> Generator:
    """The registered generator ``name`` with its weights; a checkpoint of another architecture is one
    line naming the keys that differ (:func:`base.strict_load_error`), for every caller."""
    from .base import strict_load_error

    try:
        return GENERATORS.get(name).from_assets(**kwargs)
    except RuntimeError as e:  # load_state_dict(strict=True): wrong architecture
        raise strict_load_error(e, kwargs.get("checkpoint") or name) from None


__all__ = ["GENERATORS", "Generator", "Target", "TargetMember", "get_generator"]
