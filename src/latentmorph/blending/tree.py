"""The transition tree: branches ordered by their fraction between the two keyframes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image


@dataclass(eq=False)
class Branch:
    """One diffusion trajectory: injected at step `start` of level `level` (keyframes: level 0).

    `latents[k]` entered step start + k; the last item is the final latents. `pixels`, when
    set, holds the image as 8-bit RGB (3, H, W) on the model's device, which distances use.
    """

    fraction: float
    level: int
    start: int
    latents: list[torch.Tensor]
    image: Image.Image
    parents: tuple[Branch, Branch] | None = None
    pixels: torch.Tensor | None = None

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

    def parents(self, gap: int, level: int) -> tuple[Branch, Branch]:
        """Nearest branches on each side of a gap that belong to a level before `level`."""
        left = next(b for b in reversed(self.branches[: gap + 1]) if b.level < level)
        right = next(b for b in self.branches[gap + 1 :] if b.level < level)
        return left, right

    def fill(self, gap: int, branches: list[Branch], distances: list[float]) -> None:
        """Puts branches (in order) into a gap, with the distances along the new chain of
        neighbours (one more than there are branches)."""
        self.branches[gap + 1 : gap + 1] = branches
        self.distances[gap : gap + 1] = distances
