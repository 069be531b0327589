"""Argparse pieces for values that one flag's type cannot check alone: several numbers after
one flag, each named in the error."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..limits import FRACTION
from .options import limited


class Fractions(argparse.Action):
    """Stores the numbers after a flag (one per name in `metavar`), each from 0 to 1; the error
    names the flag and the number: `argument --keyframe-crossfeed: POWER '2' is not allowed`."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        parse = limited(FRACTION)
        numbers = []
        for name, text in zip(self.metavar, values or ()):
            try:
                numbers.append(parse(text))
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentError(self, f"{name} {error}") from None
        setattr(namespace, self.dest, numbers)
