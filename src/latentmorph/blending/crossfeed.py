"""Crossfeed: pulling a trajectory toward a target trajectory during its first steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import is_number
from ..errors import InputError


@dataclass(frozen=True)
class Crossfeed:
    """Coefficient schedule: `power` decaying linearly to power·`decay` over `range` of the steps.

    Before step i the latents are slerped toward the target's latents entering step i with
    coefficient c[i].
    """

    power: float = 0.0
    range: float = 0.0
    decay: float = 0.0

    def __post_init__(self) -> None:
        for field in ("power", "range", "decay"):
            value = getattr(self, field)
            if not is_number(value) or not 0.0 <= value <= 1.0:
                raise InputError(f"crossfeed {field}: {value!r} is not allowed; use 0 to 1")

    @property
    def active(self) -> bool:
        return self.power > 0 and self.range > 0

    def keyframe_coefficients(self, steps: int) -> np.ndarray:
        """Keyframe 1 → keyframe 2: power→power·decay over the first round(steps·range) steps."""
        c = np.zeros(steps)
        n = min(steps, round(steps * self.range))
        c[:n] = np.linspace(self.power, self.power * self.decay, n)
        return c

    def parental_coefficients(self, steps: int, start: int) -> np.ndarray:
        """Parents → child injected at `start`: power before it, then power→power·decay until
        round(steps·range), then 0."""
        c = np.zeros(steps)
        n = min(steps, round(steps * self.range))
        c[:start] = self.power
        if n > start:
            c[start:n] = np.linspace(self.power, self.power * self.decay, n - start)
        return c
