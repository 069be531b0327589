"""Procedurally rendered captioned images: one flat shape in one colour on a flat background."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 64
SUPERSAMPLE = 4

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 170, 50),
    "blue": (35, 65, 230),
    "yellow": (250, 225, 35),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "purple": (135, 45, 180),
    "orange": (250, 135, 20),
}
SHAPES = ("circle", "square", "triangle")
# Half-extent of the shape in pixels of a 64x64 image; "medium" has no word in the caption.
SIZES: dict[str, float] = {"small": 12.0, "medium": 18.0, "large": 25.0}


@dataclass(frozen=True)
class Sample:
    """The content of one image: foreground colour, shape, size and background colour."""

    colour: str
    shape: str
    size: str
    background: str

    @property
    def caption(self) -> str:
        """The caption, e.g. "a small red circle on a blue background"."""
        size = "" if self.size == "medium" else f"{self.size} "
        return f"a {size}{self.colour} {self.shape} on a {self.background} background"


def all_samples() -> list[Sample]:
    """Every distinct sample, in a fixed order (foreground and background colours differ)."""
    return [
        Sample(colour, shape, size, background)
        for colour, shape, size, background in itertools.product(PALETTE, SHAPES, SIZES, PALETTE)
        if colour != background
    ]


def parse_caption(caption: str) -> Sample:
    """The sample a caption describes; raises ValueError for text outside the grammar."""
    words = caption.lower().split()
    if len(words) == 7:
        words = [words[0], "medium", *words[1:]]
    if len(words) != 8 or words[0] != "a" or words[4:6] != ["on", "a"] or words[7] != "background":
        raise ValueError(f"not a demo caption: {caption!r}")
    sample = Sample(colour=words[2], shape=words[3], size=words[1], background=words[6])
    if (
        sample.colour not in PALETTE
        or sample.background not in PALETTE
        or sample.shape not in SHAPES
        or sample.size not in SIZES
    ):
        raise ValueError(f"not a demo caption: {caption!r}")
    return sample


def _shape_mask(shape: str, half: float, size: int) -> np.ndarray:
    """Boolean coverage of a centred shape on a `size`x`size` grid (pixel centres)."""
    coords = (np.arange(size) + 0.5) / size * IMAGE_SIZE - IMAGE_SIZE / 2
    x, y = np.meshgrid(coords, coords)
    if shape == "circle":
        return x**2 + y**2 <= half**2
    if shape == "square":
        side = 0.85 * half
        return (np.abs(x) <= side) & (np.abs(y) <= side)
    # Upward triangle with apex at (0, -half) and base from (-half, half) to (half, half).
    return (y <= half) & (np.abs(x) <= (y + half) / 2)


def render(sample: Sample) -> np.ndarray:
    """The anti-aliased RGB image of a sample as uint8 of shape (64, 64, 3)."""
    fine = IMAGE_SIZE * SUPERSAMPLE
    mask = _shape_mask(sample.shape, SIZES[sample.size], fine).astype(np.float32)
    cover = mask.reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    fg = np.array(PALETTE[sample.colour], dtype=np.float32)
    bg = np.array(PALETTE[sample.background], dtype=np.float32)
    image = cover[..., None] * fg + (1.0 - cover[..., None]) * bg
    return np.round(image).astype(np.uint8)


def sample_stream(seed: int, count: int) -> list[Sample]:
    """`count` samples drawn uniformly (with replacement) from `all_samples()`, fixed by `seed`."""
    samples = all_samples()
    picks = np.random.default_rng(seed).integers(0, len(samples), size=count)
    return [samples[i] for i in picks]
