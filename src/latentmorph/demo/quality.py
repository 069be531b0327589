"""Pixel measurements telling whether a demo-model image shows the colours and shape it was asked.

The background colour is the median of the image border, the foreground is the largest connected
region of pixels far from it; colours are named by the nearest palette entry and the shape by how
much of its bounding box the region fills (triangle 1/2, circle pi/4, square 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from latentmorph.demo.dataset import PALETTE, parse_caption

BORDER = 3
FOREGROUND_DISTANCE = 40.0
# a clean image: this share of its pixels (away from the shape's edge) within
# FOREGROUND_DISTANCE of either the background's or the shape's colour
CLEAN_SHARE = 0.95
EDGE_WIDTH = 2
# Bounding-box fill ratio limits between triangle (0.5), circle (0.785) and square (1.0).
TRIANGLE_MAX_FILL = 0.64
CIRCLE_MAX_FILL = 0.89

# Every colour appears as foreground and as background, every shape and size at least 3 times.
TEST_PROMPTS = (
    "a red circle on a blue background",
    "a green square on a white background",
    "a large blue triangle on a yellow background",
    "a small yellow circle on a black background",
    "a white triangle on a purple background",
    "a large black square on a orange background",
    "a purple circle on a green background",
    "a small orange square on a red background",
    "a large red triangle on a white background",
    "a green circle on a black background",
    "a small blue square on a orange background",
    "a yellow triangle on a purple background",
    "a large white circle on a red background",
    "a black triangle on a yellow background",
    "a purple square on a blue background",
    "a small orange triangle on a green background",
)
TEST_SEEDS = (0, 1)


@dataclass(frozen=True)
class Analysis:
    """What an image shows: colour names (None when no foreground was found) and shape."""

    colour: str | None
    background: str
    shape: str | None
    fill: float


@dataclass(frozen=True)
class Case:
    """One generated image checked against its prompt."""

    prompt: str
    seed: int
    analysis: Analysis
    colours_ok: bool
    shape_ok: bool


@dataclass(frozen=True)
class QualityReport:
    """Checked cases and the fraction with the right colours and with the right shape."""

    cases: tuple[Case, ...]

    @property
    def colour_rate(self) -> float:
        """Fraction of cases whose foreground and background colours are both right."""
        return sum(c.colours_ok for c in self.cases) / len(self.cases)

    @property
    def shape_rate(self) -> float:
        """Fraction of cases whose shape is right."""
        return sum(c.shape_ok for c in self.cases) / len(self.cases)


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette colour name nearest to an RGB triple (0-255)."""
    names = list(PALETTE)
    table = np.array([PALETTE[n] for n in names], dtype=np.float32)
    return names[int(np.argmin(((table - rgb) ** 2).sum(axis=1)))]


def _largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    best, best_size, label = 0, 0, 0
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        label += 1
        labels[start] = label
        stack, size = [start], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                if inside and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = label
                    stack.append((ny, nx))
        if size > best_size:
            best, best_size = label, size
    return labels == best if best else np.zeros_like(mask)


def _shape_from_fill(fill: float) -> str:
    if fill < TRIANGLE_MAX_FILL:
        return "triangle"
    return "circle" if fill < CIRCLE_MAX_FILL else "square"


def analyse(image: Image.Image | np.ndarray) -> Analysis:
    """Measure background colour, foreground colour and foreground shape of an RGB image."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    pixels = pixels.astype(np.float32)
    ring = np.ones(pixels.shape[:2], dtype=bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    background_rgb = np.median(pixels[ring], axis=0)
    background = nearest_colour(background_rgb)
    far = np.linalg.norm(pixels - background_rgb, axis=-1) > FOREGROUND_DISTANCE
    region = _largest_region(far & ~ring)
    if region.sum() < 4:
        return Analysis(colour=None, background=background, shape=None, fill=0.0)
    ys, xs = np.nonzero(region)
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = float(region.sum() / box)
    colour = nearest_colour(np.median(pixels[region], axis=0))
    return Analysis(colour=colour, background=background, shape=_shape_from_fill(fill), fill=fill)


def is_clean(image: Image.Image | np.ndarray) -> bool:
    """Whether an image reads as one clean shape on a flat background: a foreground is found,
    and nearly every pixel away from the shape's edge has the background's or the shape's
    colour (double exposures, ghost outlines and textures fail)."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    pixels = pixels.astype(np.float32)
    ring = np.ones(pixels.shape[:2], dtype=bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    background = np.median(pixels[ring], axis=0)
    far = np.linalg.norm(pixels - background, axis=-1) > FOREGROUND_DISTANCE
    if (far & ~ring).sum() < 16:
        return False
    shape = np.median(pixels[far & ~ring], axis=0)
    nearest = np.minimum(
        np.linalg.norm(pixels - background, axis=-1), np.linalg.norm(pixels - shape, axis=-1)
    )
    mask, cross = far.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    edge = cv2.dilate(mask, cross, iterations=EDGE_WIDTH) > cv2.erode(
        mask, cross, iterations=EDGE_WIDTH
    )
    return bool((nearest[~edge] < FOREGROUND_DISTANCE).mean() >= CLEAN_SHARE)


def check(prompt: str, seed: int, image: Image.Image | np.ndarray) -> Case:
    """Compare what an image shows with what its demo-grammar prompt asked for."""
    wanted = parse_caption(prompt)
    found = analyse(image)
    return Case(
        prompt=prompt,
        seed=seed,
        analysis=found,
        colours_ok=found.colour == wanted.colour and found.background == wanted.background,
        shape_ok=found.shape == wanted.shape,
    )


def evaluate(
    pipeline,
    prompts: Sequence[str] = TEST_PROMPTS,
    seeds: Sequence[int] = TEST_SEEDS,
    *,
    steps: int,
    guidance_scale: float,
    width: int,
    height: int,
) -> QualityReport:
    """Generate every prompt at every seed with an SDXL pipeline and check each image."""
    cases = []
    pipeline.set_progress_bar_config(disable=True)
    for prompt in prompts:
        for seed in seeds:
            image = pipeline(
                prompt,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                generator=torch.Generator().manual_seed(seed),
                width=width,
                height=height,
            ).images[0]
            cases.append(check(prompt, seed, image))
    return QualityReport(cases=tuple(cases))
