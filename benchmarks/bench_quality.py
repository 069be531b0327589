"""Transition quality at equal compute: placements of latentmorph's tree against a slerp walk.

Usage: python benchmarks/bench_quality.py [--branches 16] [--device cpu]

On the bundled demo model, for 8 prompt pairs of its vocabulary, compares latentmorph's branch
placements (adaptive, even, sequential: same plan, same image-steps) with a slerp walk (every
image a full generation from slerped noise and lerped text) given as many image-steps as fit in
the same budget. Prints per-transition rows and a summary table in markdown.

Metrics, with d the CIELAB ΔE (1976) between neighbouring computed images at full size, averaged
over pixels, and D that between the two keyframe images:
- evenness: max(d) / mean(d) (1 is perfectly even)
- jump: max(d) / D
- detour: sum(d) / D (1 is a straight path)
- credibility: share of computed images that read as one clean shape on a flat background
  (`latentmorph.demo.quality.is_clean`)
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging
from PIL import Image

from latentmorph.blending.distance import cielab
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.demo.quality import TEST_PROMPTS, is_clean
from latentmorph.interpolation import slerp
from latentmorph.models.adapter import Conditioning
from latentmorph.models.loading import load_pipeline

# consecutive test prompts: every pair changes colours, most change the shape too
PAIRS = [(TEST_PROMPTS[i], TEST_PROMPTS[i + 1], (i, i + 1)) for i in range(0, 16, 2)]
PLACEMENTS = ("adaptive", "even", "sequential")


@dataclass(frozen=True)
class Result:
    """Quality figures of one transition."""

    evenness: float
    jump: float
    detour: float
    credibility: float
    images: int
    unet_calls: int
    image_steps: int


def lab_distance(a: Image.Image, b: Image.Image) -> float:
    """Mean CIELAB ΔE between two images of the same size."""
    x, y = (cielab(torch.from_numpy(np.array(i.convert("RGB")))).numpy() for i in (a, b))
    return float(np.linalg.norm(x - y, axis=-1).mean())


def measure(images: Sequence[Image.Image], unet_calls: int, image_steps: int) -> Result:
    gaps = [lab_distance(a, b) for a, b in zip(images[:-1], images[1:], strict=True)]
    whole = lab_distance(images[0], images[-1])
    return Result(
        evenness=max(gaps) / statistics.mean(gaps),
        jump=max(gaps) / whole,
        detour=sum(gaps) / whole,
        credibility=sum(map(is_clean, images)) / len(images),
        images=len(images),
        unet_calls=unet_calls,
        image_steps=image_steps,
    )


def tree_transition(model, settings: BlendSettings, prompts, seeds) -> Result:
    engine = BlendingEngine(model, settings)
    conds = engine.encode(prompts)
    (tree,) = engine.transitions(engine.begin(conds, list(seeds)), conds)
    return measure(tree.images, engine.stats.unet_calls, engine.stats.image_steps)


def slerp_walk(model, settings: BlendSettings, prompts, seeds, count: int) -> Result:
    """`count` images, each a full generation from slerped noise and lerped text, one batch."""
    s = settings
    a, b = BlendingEngine(model, s).encode(prompts)
    noise = model.noise(list(seeds), s.width, s.height, s.steps)
    t = torch.linspace(0, 1, count)
    latents = slerp(noise[:1].expand(count, -1, -1, -1), noise[1:].expand(count, -1, -1, -1), t)
    cond = Conditioning.cat([a.lerp(b, float(f)) for f in t])
    final = model.denoise(latents, cond, s.steps, 0, s.steps, s.guidance_scale)[-1]
    return measure(model.decode(final), s.steps, count * s.steps)


def summary_row(name: str, results: Sequence[Result]) -> str:
    def mean(field: str) -> float:
        return statistics.mean(getattr(r, field) for r in results)

    def worst(field: str) -> float:
        return max(getattr(r, field) for r in results)

    return (
        f"| {name} | {mean('images'):.0f} | {mean('evenness'):.2f} / {worst('evenness'):.2f} | "
        f"{mean('jump'):.2f} / {worst('jump'):.2f} | "
        f"{mean('detour'):.2f} / {worst('detour'):.2f} | "
        f"{mean('credibility'):.0%} / {min(r.credibility for r in results):.0%} | "
        f"{mean('unet_calls'):.1f} | {mean('image_steps'):.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    diffusers_logging.disable_progress_bar()
    model = load_pipeline("demo", device=args.device)
    base, _ = BlendSettings(branches=args.branches).resolve(model)
    budget = base.branching_plan().branch_steps()
    walk_images = budget // base.steps
    print(
        f"date: {datetime.date.today()}, demo model, {base.steps} steps, guidance "
        f"{base.guidance_scale}, plan {base.branching_plan().describe()} ({budget} image-steps), "
        f"slerp walk {walk_images} images, torch {torch.__version__}"
    )
    results: dict[str, list[Result]] = {}
    print("\n| transition | way | evenness | jump | detour | credibility | UNet calls |")
    print("|---|---|---|---|---|---|---|")
    for first, last, seeds in PAIRS:
        rows = {
            p: tree_transition(model, base.replace(placement=p), (first, last), seeds)
            for p in PLACEMENTS
        }
        rows["slerp walk"] = slerp_walk(model, base, (first, last), seeds, walk_images)
        for way, r in rows.items():
            results.setdefault(way, []).append(r)
            print(
                f"| {first} → {last} (seeds {seeds[0]}, {seeds[1]}) | {way} | {r.evenness:.2f} | "
                f"{r.jump:.2f} | {r.detour:.2f} | {r.credibility:.0%} | {r.unet_calls} |",
                flush=True,
            )
    print(
        "\n| way | images | evenness mean / worst | jump mean / worst | detour mean / worst "
        "| credibility mean / worst | UNet calls | image-steps |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for way, rs in results.items():
        print(summary_row(way, rs))


if __name__ == "__main__":
    main()
