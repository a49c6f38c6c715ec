"""Type checks for numbers read from JSON / YAML (cards, training configs), where True and False are not numbers."""

from __future__ import annotations


def is_number(value) -> bool:
    """``value`` is an int or a float and not a bool (bool is an int subclass in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_whole(value) -> bool:
    """``value`` is an int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
