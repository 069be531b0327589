"""Small predicates shared by the validators of user input."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from .choices import DEVICES
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


def key_name(key: Any) -> str:
    """A mapping's key as an error message names it: itself when it is short text."""
    return key if isinstance(key, str) and len(key) <= SHOWN_CHARACTERS else show(key)


def check_keys(prefix: str, data: dict, allowed: Sequence[str]) -> None:
    """Raises InputError naming the first key of `data` that is not `allowed` (`prefix` + key)."""
    for key in data:
        if key not in allowed:
            raise InputError(
                f"{prefix}{key_name(key)}: unknown field; allowed: {', '.join(allowed)}"
            )


def check_flag(name: str, value: Any) -> bool:
    """`value` when it is true or false (not a string such as "no", nor a number)."""
    if not isinstance(value, bool):
        raise InputError(f"{name}: {show(value)} is not allowed; use true or false")
    return value


def check_text(name: str, value: Any, empty: bool = True) -> str:
    """`value` when it is text (non-empty unless `empty`)."""
    if not isinstance(value, str):
        raise InputError(f"{name}: {show(value)} is not allowed; use text")
    if not empty and not value.strip():
        raise InputError(f"{name}: missing; give non-empty text")
    return value


DEVICES_ALLOWED = (
    f"use one of {', '.join(DEVICES)}, or one of cuda, mps, cpu with an index such as cuda:1"
)


def is_device(name: Any) -> bool:
    """Whether `name` names a device: auto, cuda, mps or cpu, the last three with an optional
    index (cuda:1)."""
    kinds = "|".join(d for d in DEVICES if d != "auto")
    return isinstance(name, str) and bool(re.fullmatch(rf"auto|(?:{kinds})(?::\d{{1,3}})?", name))


def check_device(name: Any, field: str = "device") -> str:
    """`name` when it names a device; else InputError naming `field`."""
    if not is_device(name):
        raise InputError(f"{field}: {show(name)} is not allowed; {DEVICES_ALLOWED}")
    return name


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value: Any) -> bool:
    """An int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raises InputError naming `name` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise InputError(f"{name}: {show(value)} is not allowed; use one of {', '.join(allowed)}")
