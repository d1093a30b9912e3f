"""Deepfake generators. ``get_generator(name)`` builds one by registered name; see ``base.Generator``
(contract v2: ``generate(x, Condition, seed)``) and ``base.PREPROCESSING`` (each weights' preprocessing)."""

from ..registry import Registry

GENERATORS: Registry = Registry("generator", __name__)

from .base import (PREPROCESSING, Condition, Generator, Preprocessing, Target, TargetMember,  # noqa: E402
                   Unsupported, preprocessing_record, register_preprocessing)


def get_generator(name: str, edits=None, **kwargs) -> Generator:
    """The registered generator ``name`` with its weights; a checkpoint of another architecture is one
    line naming the keys that differ (:func:`base.strict_load_error`), for every caller. ``edits``: run
    only these of its official edits (:meth:`Generator.select_edits`; checked before any weights load)."""
    from .base import strict_load_error

    cls = GENERATORS.get(name)
    if edits is not None:
        cls.check_edits(edits)
    try:
        G = cls.from_assets(**kwargs)
    except RuntimeError as e:  # load_state_dict(strict=True): wrong architecture
        raise strict_load_error(e, kwargs.get("checkpoint") or name) from None
    return G if edits is None else G.select_edits(edits)


__all__ = ["GENERATORS", "PREPROCESSING", "Condition", "Generator", "Preprocessing", "Target", "TargetMember",
           "Unsupported", "get_generator", "preprocessing_record", "register_preprocessing"]
