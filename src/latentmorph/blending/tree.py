"""The transition tree: branches ordered by their fraction between the two keyframes."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch
from PIL import Image


@dataclass(eq=False)
class Branch:
    """One diffusion trajectory: injected at step `start` of level `level` (keyframes: level 0).

    `latents[k]` entered step start + k; the last item is the final latents.
    """

    fraction: float
    level: int
    start: int
    latents: list[torch.Tensor]
    image: Image.Image
    parents: tuple[Branch, Branch] | None = None

    def at(self, step: int) -> torch.Tensor:
        """The latents that entered `step` (or the final latents for step == steps)."""
        return self.latents[step - self.start]


class TransitionTree:
    """Branches in transition order, with the perceptual distance of each adjacent pair."""

    def __init__(self, first: Branch, last: Branch, distance: float) -> None:
        self.branches = [first, last]
        self.distances = [distance]

    def __len__(self) -> int:
        return len(self.branches)

    @property
    def fractions(self) -> list[float]:
        return [b.fraction for b in self.branches]

    @property
    def images(self) -> list[Image.Image]:
        return [b.image for b in self.branches]

    def widest_gaps(self, count: int) -> list[int]:
        """Indices of the left branch of the `count` adjacent pairs that differ most."""
        order = sorted(range(len(self.distances)), key=lambda i: (-self.distances[i], i))
        return sorted(order[:count])

    def parents(self, gap: int, level: int) -> tuple[Branch, Branch]:
        """Nearest branches on each side of a gap that belong to a level before `level`."""
        left = next(b for b in reversed(self.branches[: gap + 1]) if b.level < level)
        right = next(b for b in self.branches[gap + 1 :] if b.level < level)
        return left, right

    def insert(self, branch: Branch, left_distance: float, right_distance: float) -> None:
        """Adds a branch with its distances to its left and right neighbours."""
        i = bisect.bisect(self.fractions, branch.fraction)
        self.branches.insert(i, branch)
        self.distances[i - 1 : i] = [left_distance, right_distance]
