"""Smoothness of ways to upscale a transition: evenness of neighbour distances before and after.

Usage: python benchmarks/bench_hires.py [--branches 16] [--scale 2] [--device cpu]

On the bundled demo model, for the 8 transitions of bench_quality.py, computes each tree at the
model's size and upscales its images `--scale` times in each of the ways of `WAYS`. Prints the
evenness (max / mean CIELAB ΔE between neighbouring images, as bench_quality.py measures it) of
stage 1 and of each way, per transition and as mean / worst, and how far each way moves the
images from their Lanczos enlargement (mean ΔE).

Every img2img way resizes each image (Lanczos), encodes it, noises it with one noise shared by
the whole transition to the step where `strength` of the schedule is left, and denoises it with
its own text conditioning, the tree's levels in order, each branch slerped toward the slerp of
its stage-1 parents' high-resolution latents (`pull`, a crossfeed over the remaining steps). The
ways differ in how the model predicts on latents larger than it was trained for:
- whole: at once, at the large size;
- windows: in overlapping windows of the stage-1 size, averaged with smooth weights
  (MultiDiffusion);
- dilated: on the scale² interleaved sub-grids of the latents, each a stage-1-sized view of the
  whole image (DemoFusion's dilated sampling);
and in what holds the images to their enlargement: `anchor` pulls the latents toward the image's
own noised clean latents, from that much down to 0 over the remaining steps (a cosine; DemoFusion's
skip residual), and `compensate` adds the VAE's error back (the enlargement plus the difference
between the decoded result and the decoded clean latents). This code is for measuring only.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import numpy as np
import torch
from bench_quality import PAIRS, lab_distance
from diffusers.utils import logging as diffusers_logging
from PIL import Image

from latentmorph.blending.crossfeed import Crossfeed
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.blending.tree import TransitionTree
from latentmorph.interpolation import slerp
from latentmorph.models.adapter import Conditioning, DiffusionAdapter
from latentmorph.models.loading import load_pipeline

WEAK_PULL = Crossfeed(power=0.3, range=0.5, decay=0.5)
STRONG_PULL = Crossfeed(power=0.6, range=1.0, decay=0.5)


@dataclass(frozen=True)
class Way:
    """One way to upscale by img2img (see the module's docstring); strength 0: Lanczos only."""

    strength: float = 0.0
    prediction: str = "whole"
    pull: Crossfeed = WEAK_PULL
    anchor: float = 0.0
    compensate: bool = False
    vae_tiles: bool = False
    round_trip: bool = False


WAYS = {
    "Lanczos": Way(),
    "VAE round trip": Way(round_trip=True),
    "VAE round trip, tiled": Way(round_trip=True, vae_tiles=True),
    "whole 0.4": Way(0.4),
    "windows 0.2": Way(0.2, "windows", vae_tiles=True),
    "windows 0.1": Way(0.1, "windows", vae_tiles=True),
    "dilated 0.2, anchor": Way(0.2, "dilated", anchor=1.0, vae_tiles=True),
    "dilated 0.2, anchor, comp.": Way(0.2, "dilated", anchor=1.0, compensate=True, vae_tiles=True),
    "dilated 0.2, anchor, comp., strong pull": Way(
        0.2, "dilated", STRONG_PULL, 1.0, compensate=True, vae_tiles=True
    ),
    "dilated 0.15, anchor, comp., strong pull": Way(
        0.15, "dilated", STRONG_PULL, 1.0, compensate=True, vae_tiles=True
    ),
}


def evenness(images) -> float:
    gaps = [lab_distance(a, b) for a, b in zip(images[:-1], images[1:], strict=True)]
    return max(gaps) / statistics.mean(gaps)


def windowed(predict, shape: torch.Size, window: tuple[int, int]):
    """`predict` in overlapping windows (height, width) covering latents of `shape`, each
    overlapping the next by about half, averaged with sine weights (above 0 at the edges)."""

    def starts(length: int, size: int) -> list[int]:
        count = max(1, math.ceil((length - size) * 2 / size) + 1)
        return sorted({round(s) for s in np.linspace(0, length - size, count)})

    def bump(size: int) -> torch.Tensor:
        return torch.sin(torch.pi * (torch.arange(size) + 0.5) / size)

    (height, width), (h, w) = shape[-2:], window
    boxes = [(y, x) for y in starts(height, h) for x in starts(width, w)]
    weight = bump(h)[:, None] * bump(w)
    total = torch.zeros(height, width)
    for y, x in boxes:
        total[y : y + h, x : x + w] += weight

    def predict_windowed(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mixed = torch.zeros(latents.shape, dtype=torch.float32, device=latents.device)
        for y, x in boxes:
            part = predict(latents[..., y : y + h, x : x + w], t).float()
            mixed[..., y : y + h, x : x + w] += part * weight.to(latents.device)
        return (mixed / total.to(latents.device)).to(latents.dtype)

    return predict_windowed


def dilated(predict, scale: int):
    """`predict` on the scale² interleaved sub-grids of the latents, put back in place."""

    def predict_dilated(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(latents)
        for i in range(scale):
            for j in range(scale):
                out[..., i::scale, j::scale] = predict(latents[..., i::scale, j::scale], t)
        return out

    return predict_dilated


@contextmanager
def predicting(model: DiffusionAdapter, prediction: str, scale: int) -> Iterator[None]:
    """The model's denoising predicts as `prediction` says while inside."""
    if prediction == "whole":
        yield
        return
    family_predictor = model._predictor

    def predictor(cond, guidance, latents, scheduler):
        h, w = latents.shape[-2] // scale, latents.shape[-1] // scale
        predict = family_predictor(cond, guidance, latents[..., :h, :w], scheduler)
        if prediction == "dilated":
            return dilated(predict, scale)
        return windowed(predict, latents.shape, (h, w))

    model._predictor = predictor
    try:
        yield
    finally:
        del model._predictor


@contextmanager
def vae_tiling(model: DiffusionAdapter, on: bool) -> Iterator[None]:
    """The VAE encodes and decodes in tiles of its own size while inside, when `on`."""
    if on:
        model.pipe.vae.enable_tiling()
    try:
        yield
    finally:
        if on:
            model.pipe.vae.disable_tiling()


def upscale(
    model: DiffusionAdapter,
    settings: BlendSettings,
    tree: TransitionTree,
    conds: list[Conditioning],
    seed: int,
    scale: int,
    way: Way,
) -> list[Image.Image]:
    """The tree's images, in order, `scale` times larger in `way`."""
    s = settings
    size = (s.width * scale, s.height * scale)
    enlarged = [image.resize(size, Image.LANCZOS) for image in tree.images]
    if way.strength == 0 and not way.round_trip:
        return enlarged
    with vae_tiling(model, way.vae_tiles), predicting(model, way.prediction, scale):
        if way.round_trip:
            return model.decode(model.encode_images(enlarged))
        return _img2img(model, s, tree, conds, seed, way, enlarged)


def _img2img(model, s, tree, conds, seed, way: Way, enlarged) -> list[Image.Image]:
    start = min(s.steps - 1, max(0, round(s.steps * (1 - way.strength))))
    pull = way.pull.keyframe_coefficients(s.steps - start)
    noise = model.unit_noise([seed], *enlarged[0].size)
    branches, fractions = tree.branches, tree.fractions
    trajectories: dict[int, list[torch.Tensor]] = {}
    images: dict[int, Image.Image] = {}
    for level in sorted({b.level for b in branches}):
        rows = [i for i, b in enumerate(branches) if b.level == level]
        clean = model.encode_images([enlarged[i] for i in rows])
        unit = noise.expand_as(clean)
        parents = [_parents(tree, i) for i in rows] if level > 0 else []
        mix = torch.tensor(
            [
                (fractions[i] - fractions[a]) / (fractions[b] - fractions[a])
                for i, (a, b) in zip(rows, parents)
            ]
        )

        def hook(
            step: int, latents: torch.Tensor, clean=clean, unit=unit, parents=parents, mix=mix
        ):
            k = step - start
            if k == 0:
                return latents
            if way.anchor > 0:
                c = way.anchor * (1 + math.cos(math.pi * k / (s.steps - start))) / 2
                latents = torch.lerp(latents, model.noised(clean, unit, s.steps, step), c)
            if parents and pull[k] > 0:
                first = torch.cat([trajectories[a][k] for a, _ in parents])
                second = torch.cat([trajectories[b][k] for _, b in parents])
                latents = slerp(latents, slerp(first, second, mix), float(pull[k]))
            return latents

        cond = Conditioning.cat([conds[0].lerp(conds[1], fractions[i]) for i in rows])
        guidance = torch.tensor([s.guidance_at(fractions[i]) for i in rows])
        trajectory = model.denoise(
            model.noised(clean, unit, s.steps, start), cond, s.steps, start, None, guidance, hook
        )
        for j, i in enumerate(rows):
            trajectories[i] = [x[j : j + 1] for x in trajectory]
        decoded = model.decode(trajectory[-1])
        if way.compensate:
            reference = model.decode(clean)
            decoded = [
                _compensated(enlarged[i], d, r)
                for i, d, r in zip(rows, decoded, reference, strict=True)
            ]
        images.update(zip(rows, decoded, strict=True))
    return [images[i] for i in range(len(branches))]


def _compensated(enlarged: Image.Image, result: Image.Image, reference: Image.Image):
    """The enlargement plus what denoising changed beyond the VAE's own round trip."""
    a, b, c = (np.asarray(i, dtype=np.int16) for i in (enlarged, result, reference))
    return Image.fromarray(np.clip(a + b - c, 0, 255).astype(np.uint8))


def _parents(tree: TransitionTree, index: int) -> tuple[int, int]:
    """Indices of the nearest branches on each side of branch `index` of a lower level."""
    level = tree.branches[index].level
    left = next(i for i in range(index - 1, -1, -1) if tree.branches[i].level < level)
    right = next(i for i in range(index + 1, len(tree)) if tree.branches[i].level < level)
    return left, right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=16)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    diffusers_logging.disable_progress_bar()
    model = load_pipeline("demo", device=args.device)
    settings, _ = BlendSettings(branches=args.branches).resolve(model)
    print(
        f"date: {datetime.date.today()}, demo model, {settings.width}x{settings.height} "
        f"×{args.scale}, {settings.steps} steps, plan {settings.branching_plan().describe()}, "
        f"weak pull {WEAK_PULL}, strong pull {STRONG_PULL}, torch {torch.__version__}"
    )
    evenness_of: dict[str, list[float]] = {}
    change_of: dict[str, list[float]] = {}
    print("\n| transition | stage 1 | " + " | ".join(WAYS) + " |")
    print("|---|---|" + "---|" * len(WAYS))
    for first, last, seeds in PAIRS:
        engine = BlendingEngine(model, settings)
        conds = engine.encode([first, last])
        (tree,) = engine.transitions(engine.begin(conds, list(seeds)), conds)
        row = {"stage 1": evenness(tree.images)}
        enlarged = upscale(model, settings, tree, conds, seeds[0], args.scale, Way())
        for name, way in WAYS.items():
            images = upscale(model, settings, tree, conds, seeds[0], args.scale, way)
            row[name] = evenness(images)
            change = statistics.mean(map(lab_distance, images, enlarged))
            change_of.setdefault(name, []).append(change)
        for name, value in row.items():
            evenness_of.setdefault(name, []).append(value)
        cells = " | ".join(f"{v:.2f}" for v in row.values())
        print(f"| {first} → {last} (seeds {seeds[0]}, {seeds[1]}) | {cells} |", flush=True)
    cells = " | ".join(f"{statistics.mean(v):.2f} / {max(v):.2f}" for v in evenness_of.values())
    print(f"| evenness mean / worst | {cells} |")
    cells = " | ".join(f"{statistics.mean(v):.1f}" for v in change_of.values())
    print(f"| mean ΔE from Lanczos | – | {cells} |")


if __name__ == "__main__":
    main()
