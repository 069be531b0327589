"""Filler frames: crossfade against flow, measured against true in-betweens.

Usage: python benchmarks/bench_fillers.py [--images 5] [--device cpu] [--skip-demo]

1. Moving shape: a textured disc (radius 16) on a shaded background, 128x128, moves 8, 16 or
   24 px to the right between two frames; each filler at t = 0.25, 0.5, 0.75 is compared with
   the disc rendered at the in-between position. Figures: mean absolute error (0..255, over
   pixels and channels); centroid error (px): distance between the centroids of the pixels
   that differ from the background by more than 60% of the disc's median contrast (at t = 0.5 a
   crossfade's two half-contrast discs leave only their overlap, which is centred, so this is
   told at 0.25 and 0.75); outline error (px): the largest distance between a pixel of one
   image's disc (more than 25% of the contrast: any visible trace) and the other's disc.
2. Demo model: for 8 prompt pairs, a transition of 2n + 1 computed images (adaptive placement);
   the even-numbered images are the computed images of a coarser movie, and each odd-numbered
   one is the true in-between of its neighbours there, at t = its fraction's share of the gap.
   Figure: mean CIELAB ΔE (1976) over pixels between the filler and that image, at 64x64.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import cv2
import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging
from PIL import Image
from scipy.ndimage import distance_transform_edt

from latentmorph.blending.distance import cielab
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.choices import FILLERS
from latentmorph.demo.quality import TEST_PROMPTS
from latentmorph.models.loading import load_pipeline
from latentmorph.movie.fillers import filler

SIZE, RADIUS, START = 128, 16, 40
SHIFTS = (8, 16, 24)
TIMES = (0.25, 0.5, 0.75)
PAIRS = [(TEST_PROMPTS[i], TEST_PROMPTS[i + 1], (i, i + 1)) for i in range(0, 16, 2)]


def disc_scene(x: float, size: int = SIZE, radius: int = RADIUS) -> np.ndarray:
    """A disc textured with smooth noise that moves with it, centred at (x, size / 2), on a
    background shaded left to right; uint8 RGB."""
    noise = np.random.default_rng(0).normal(0, 1, (4 * size, 4 * size)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 2.0)
    noise *= 25 / noise.std()
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    image = np.empty((size, size, 3), np.float32)
    image[:] = (40, 90, 160)
    image += (xs * 40 / size)[..., None]
    y = size / 2
    texture = cv2.remap(noise, xs - x + 2 * size, ys - y + 2 * size, cv2.INTER_LINEAR)
    inside = (xs - x) ** 2 + (ys - y) ** 2 <= radius**2
    image[inside] = np.stack([210 + texture, 80 + texture, 50 + texture], -1)[inside]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def shape_errors(image: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Mean absolute error, centroid error (px) and outline error (px) of `image` against
    `truth`, both disc scenes."""
    background = disc_scene(-10 * SIZE).astype(int)
    contrast_truth = np.abs(truth.astype(int) - background).sum(-1)
    contrast = np.abs(image.astype(int) - background).sum(-1)
    full = np.median(contrast_truth[contrast_truth > 0])

    def centroid(c: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(c > 0.6 * full)
        return np.array([xs.mean(), ys.mean()])

    seen, real = contrast > 0.25 * full, contrast_truth > 0.25 * full
    outline = max(
        distance_transform_edt(~real)[seen].max(initial=0),
        distance_transform_edt(~seen)[real].max(initial=0),
    )
    mae = float(np.abs(image.astype(int) - truth.astype(int)).mean())
    return mae, float(np.linalg.norm(centroid(contrast) - centroid(contrast_truth))), outline


def moving_shape() -> None:
    print("\n| shift (px) | t | way | mean abs error | centroid error (px) | outline error (px) |")
    print("|---|---|---|---|---|---|")
    totals: dict[str, list[tuple[float, float, float]]] = {}
    for shift in SHIFTS:
        a, b = (Image.fromarray(disc_scene(x)) for x in (START, START + shift))
        makers = {way: filler(a, b, way) for way in FILLERS}
        for t in TIMES:
            truth = disc_scene(START + t * shift)
            for way, make in makers.items():
                errors = shape_errors(np.asarray(make(t)), truth)
                totals.setdefault(way, []).append(errors)
                print(
                    f"| {shift} | {t} | {way} | {errors[0]:.2f} | {errors[1]:.1f} | "
                    f"{errors[2]:.1f} |"
                )
    print("\n| way | mean abs error, mean / worst | outline error (px), mean / worst |")
    print("|---|---|---|")
    for way, rows in totals.items():
        mae, outline = [r[0] for r in rows], [r[2] for r in rows]
        print(
            f"| {way} | {statistics.mean(mae):.2f} / {max(mae):.2f} | "
            f"{statistics.mean(outline):.1f} / {max(outline):.1f} |"
        )


def lab_distance(a: Image.Image, b: Image.Image) -> float:
    """Mean CIELAB ΔE between two images of the same size."""
    x, y = (cielab(torch.from_numpy(np.array(i.convert("RGB")))).numpy() for i in (a, b))
    return float(np.linalg.norm(x - y, axis=-1).mean())


def demo_model(images: int, device: str) -> None:
    diffusers_logging.disable_progress_bar()
    model = load_pipeline("demo", device=device)
    settings, _ = BlendSettings(branches=2 * images - 1).resolve(model)
    print(
        f"\ndemo model, {settings.steps} steps, guidance {settings.guidance_scale}, "
        f"{2 * images - 1} computed images per transition, fillers of every other one"
    )
    print("\n| transition | in-betweens | t | crossfade ΔE | flow ΔE | nearest image ΔE |")
    print("|---|---|---|---|---|---|")
    totals: dict[str, list[float]] = {}
    for first, last, seeds in PAIRS:
        engine = BlendingEngine(model, settings)
        conds = engine.encode([first, last])
        (tree,) = engine.transitions(engine.begin(conds, list(seeds)), conds)
        branches = tree.branches
        row: dict[str, list[float]] = {}
        ts = []
        for i in range(1, len(branches) - 1, 2):
            lo, mid, hi = branches[i - 1], branches[i], branches[i + 1]
            t = (mid.fraction - lo.fraction) / (hi.fraction - lo.fraction)
            ts.append(t)
            for way in FILLERS:
                made = filler(lo.image, hi.image, way)(t)
                row.setdefault(way, []).append(lab_distance(made, mid.image))
            nearest = lo.image if t < 0.5 else hi.image
            row.setdefault("nearest", []).append(lab_distance(nearest, mid.image))
        for way, values in row.items():
            totals.setdefault(way, []).extend(values)
        print(
            f"| {first} → {last} | {len(ts)} | {min(ts):.2f}..{max(ts):.2f} | "
            f"{statistics.mean(row['crossfade']):.2f} | {statistics.mean(row['flow']):.2f} | "
            f"{statistics.mean(row['nearest']):.2f} |",
            flush=True,
        )
    print("\n| way | ΔE mean | ΔE worst in-between | in-betweens it is closest on |")
    print("|---|---|---|---|")
    wins = {way: 0 for way in FILLERS}
    for values in zip(*(totals[way] for way in FILLERS), strict=True):
        wins[FILLERS[int(np.argmin(values))]] += 1
    for way, values in totals.items():
        won = f"{wins[way]} of {len(values)}" if way in wins else "-"
        print(f"| {way} | {statistics.mean(values):.2f} | {max(values):.2f} | {won} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5, help="computed images of the coarse one")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    print(f"date: {datetime.date.today()}, opencv {cv2.__version__}, torch {torch.__version__}")
    moving_shape()
    if not args.skip_demo:
        demo_model(args.images, args.device)


if __name__ == "__main__":
    main()
