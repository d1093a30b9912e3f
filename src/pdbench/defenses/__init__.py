"""Proactive defenses. ``get_defense(name, **overrides)``; see ``base`` for the contract (objectives +
optimiser, or a trained model) and ``DEFENSES.get(name).record`` / ``.info()`` for each method's record."""

from ..registry import Registry

DEFENSES: Registry = Registry("defense", __name__)

from .base import (ALPHA, EPS, STEPS, Defense, ModelDefense, ObjectiveDefense, Record,  # noqa: E402
                   project_linf)


def get_defense(name: str, **kwargs) -> Defense:
    return DEFENSES.get(name)(**kwargs)


__all__ = ["DEFENSES", "Defense", "ObjectiveDefense", "ModelDefense", "Record", "get_defense", "project_linf",
           "EPS", "ALPHA", "STEPS"]
