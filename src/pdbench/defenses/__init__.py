"""Proactive defenses. ``get_defense(name, **overrides)``; see ``base.Defense`` for the interface."""

from ..registry import Registry

DEFENSES: Registry = Registry("defense", __name__)

from .base import ALPHA, EPS, STEPS, Defense, project_linf  # noqa: E402


def get_defense(name: str, **kwargs) -> Defense:
    return DEFENSES.get(name)(**kwargs)


__all__ = ["DEFENSES", "Defense", "get_defense", "project_linf", "EPS", "ALPHA", "STEPS"]
