"""Small predicates shared by the validators of user input."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .errors import InputError

SHOWN_CHARACTERS = 40


def show(value: Any) -> str:
    """`value` as a message shows it: repr() of numbers and text, shortened when long (never
    a whole file's worth of user data); other values by their type."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        digits = str(value)
        if len(digits) > 20:
            return f"{digits[:6]}… ({len(digits.lstrip('-'))} digits)"
        return digits
    if isinstance(value, float):
        return repr(value) if len(repr(value)) <= 20 else f"{value:.6g}"
    if isinstance(value, str):
        if len(value) > SHOWN_CHARACTERS:
            return repr(value[:SHOWN_CHARACTERS] + "…")
        return repr(value)
    return f"a {type(value).__name__}"


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_positive(value: Any) -> bool:
    """A finite number above 0."""
    return is_number(value) and value > 0


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raises InputError naming `name` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise InputError(f"{name}: {show(value)} is not allowed; use one of {', '.join(allowed)}")
