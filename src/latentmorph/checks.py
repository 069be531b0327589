"""Small predicates shared by the validators of user input."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .errors import InputError


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_positive(value: Any) -> bool:
    """A finite number above 0."""
    return is_number(value) and value > 0


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raises InputError naming `name` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise InputError(f"{name}: {value!r} is not allowed; use one of {', '.join(allowed)}")
