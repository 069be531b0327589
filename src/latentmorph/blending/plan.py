"""Branching plans: at which steps new branches are injected, and how many."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import limits
from ..checks import check_choice, is_number, show
from ..choices import QUALITIES
from ..errors import InputError

# (steps, branches for a movie of `frames` frames) of each quality, lowest to ultra
QUALITY_PRESETS: dict[str, tuple[int, Callable[[int], int]]] = dict(
    zip(
        QUALITIES,
        (
            (12, lambda frames: 5),
            (15, lambda frames: frames // 16),
            (30, lambda frames: frames // 8),
            (60, lambda frames: frames // 4),
            (100, lambda frames: frames // 2),
        ),
        strict=True,
    )
)
MAX_BRANCHES = limits.MAX_BRANCHES
PLAN_ITEM = re.compile(r"^(\d+)@(?:(s)(\d+)|(\d*\.?\d+))$")


@dataclass(frozen=True)
class Level:
    """Branches injected at step `start`, bringing the tree to `total` images."""

    start: int
    total: int


@dataclass(frozen=True)
class BranchingPlan:
    """The levels of a transition tree over a `steps`-step schedule; keyframes are level 0."""

    steps: int
    levels: tuple[Level, ...] = ()

    def __post_init__(self) -> None:
        previous = Level(-1, 2)
        for level in self.levels:
            if not 0 <= level.start < self.steps:
                raise InputError(
                    f"plan: injection step {level.start} is not allowed; "
                    f"use 0 to {self.steps - 1} for {self.steps} steps"
                )
            if level.start <= previous.start or level.total <= previous.total:
                raise InputError(
                    "plan: injection steps and image counts must both strictly increase, "
                    "and the first count must exceed 2"
                )
            if level.total > MAX_BRANCHES:
                raise InputError(
                    f"plan: {level.total} images is not allowed; use at most {MAX_BRANCHES} "
                    "(the two keyframes count)"
                )
            previous = level

    @property
    def branches(self) -> int:
        """Images in the finished tree, keyframes included."""
        return self.levels[-1].total if self.levels else 2

    def branch_steps(self, keyframes: int = 2) -> int:
        """UNet evaluations per image (batch items × steps) to run this plan."""
        total, previous = keyframes * self.steps, 2
        for level in self.levels:
            total += (level.total - previous) * (self.steps - level.start)
            previous = level.total
        return total

    def describe(self) -> str:
        """The plan in the `COUNT@sSTEP ...` form that `parse` reads."""
        return " ".join(f"{level.total}@s{level.start}" for level in self.levels)

    @classmethod
    def auto(cls, steps: int, branches: int, depth_strength: float) -> BranchingPlan:
        """Levels spread from round(steps·depth_strength) to about 90% of the steps, with
        image counts growing geometrically from the two keyframes to `branches`."""
        check_steps(steps)
        check_branches(branches)
        check_fraction("depth_strength", depth_strength)
        if branches == 2:
            return cls(steps)
        first = min(steps - 1, round(steps * depth_strength))
        last = max(first, min(steps - 1, round(steps * 0.9) - 1))
        count = min(last - first + 1, max(1, math.ceil(math.log2(branches - 1))))
        starts = np.rint(np.linspace(first, last, count)).astype(int)
        targets = np.geomspace(2, branches, count + 1)[1:]
        levels, previous = [], 2
        for i, (start, target) in enumerate(zip(starts, targets, strict=True)):
            total = min(max(round(target), previous + 1), branches - (count - 1 - i))
            levels.append(Level(int(start), int(total)))
            previous = total
        return cls(steps, tuple(levels))

    @classmethod
    def manual(
        cls,
        steps: int,
        totals: Sequence[int],
        strengths: Sequence[float] | None = None,
        starts: Sequence[int] | None = None,
    ) -> BranchingPlan:
        """Image counts per level (keyframes included) with injection strengths or step indices."""
        check_steps(steps)
        if (strengths is None) == (starts is None):
            raise InputError("plan: give either injection strengths or injection steps")
        if strengths is not None:
            for s in strengths:
                check_fraction("plan injection strength", s)
            starts = [min(steps - 1, round(steps * s)) for s in strengths]
        if len(starts) != len(totals):
            raise InputError("plan: one injection per image count is needed")
        return cls(steps, tuple(Level(int(a), int(t)) for a, t in zip(starts, totals, strict=True)))

    @classmethod
    def parse(cls, text: str, steps: int) -> BranchingPlan:
        """Reads `COUNT@STRENGTH` or `COUNT@sSTEP` items, e.g. `4@0.3 8@0.5 20@0.9` or `5@s2`."""
        if not isinstance(text, str):
            raise InputError(
                f"plan: {show(text)} is not allowed; use text such as '4@0.3 8@0.5 20@0.9'"
            )
        starts = []
        totals = []
        for item in text.replace(",", " ").split():
            match = PLAN_ITEM.match(item)
            if not match:
                raise InputError(
                    f"plan: {show(item)} is not allowed; use COUNT@STRENGTH (e.g. 8@0.5) "
                    "or COUNT@sSTEP (e.g. 8@s10)"
                )
            count, step_marker, step, strength = match.groups()
            if any(len(number.lstrip("0")) > 9 for number in (count, step or "")):
                raise InputError(
                    f"plan: {show(item)} is not allowed; image counts are at most "
                    f"{MAX_BRANCHES} and injection steps less than the steps"
                )
            totals.append(int(count))
            if step_marker:
                starts.append(int(step))
            else:
                if float(strength) > 1:
                    raise InputError(
                        f"plan: injection strength {strength} in {show(item)} is not allowed; "
                        "use a number from 0 to 1"
                    )
                starts.append(min(steps - 1, round(steps * float(strength))))
        if not totals:
            raise InputError("plan: empty; give at least one COUNT@STRENGTH item")
        return cls.manual(steps, totals, starts=starts)


def quality_settings(quality: str, frames: int, name: str = "quality") -> tuple[int, int]:
    """(steps, branches) of a quality preset for a transition of `frames` frames; InputError
    naming `name` when that is more than MAX_BRANCHES branches."""
    check_choice(name, quality, QUALITIES)
    steps, branches = QUALITY_PRESETS[quality]
    count = max(3, branches(frames))
    if count > MAX_BRANCHES:
        raise InputError(
            f"{name}: {quality!r} gives {count} branches for a transition of {frames} frames; "
            f"allowed: at most {MAX_BRANCHES} branches: use a lower quality, shorter "
            "transitions or a number of branches"
        )
    return steps, count


def plan_for_budget(
    steps: int,
    depth_strength: float,
    seconds: float,
    step_seconds: float,
    image_seconds: float,
) -> BranchingPlan:
    """The automatic plan with the most branches whose estimated cost fits in `seconds`.

    `step_seconds` is the measured time of one UNet step for one image, `image_seconds` that of
    decoding one image and measuring its distances. Keyframes are assumed already computed.
    """
    best = BranchingPlan(steps)
    for branches in range(3, MAX_BRANCHES + 1):
        plan = BranchingPlan.auto(steps, branches, depth_strength)
        cost = (plan.branch_steps() - 2 * steps) * step_seconds
        cost += (branches - 2) * image_seconds
        if cost > seconds:
            break
        best = plan
    return best


def check_steps(steps: int) -> None:
    limits.check_steps(steps)


def check_branches(branches: int) -> None:
    if not isinstance(branches, int) or isinstance(branches, bool) or branches < 2:
        raise InputError(
            f"branches: {branches!r} is not allowed; use a whole number of at least 2 "
            "(the two keyframes count)"
        )
    if branches > MAX_BRANCHES:
        raise InputError(f"branches: {branches} is not allowed; use at most {MAX_BRANCHES}")


def check_fraction(field: str, value: float) -> None:
    if not is_number(value) or not 0 <= value <= 1:
        raise InputError(f"{field}: {value!r} is not allowed; use a number from 0 to 1")
