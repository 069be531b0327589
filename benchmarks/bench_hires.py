"""Smoothness of the hi-res stage: evenness of neighbour distances before and after upscaling.

Usage: python benchmarks/bench_hires.py [--branches 16] [--scale 2] [--device cpu]

On the bundled demo model, for the 8 transitions of bench_quality.py, computes each tree at the
model's size, upscales it with the hi-res stage (`blending.hires`) with and without the pull
toward the stage-1 parents, and prints the evenness (max / mean CIELAB ΔE between neighbouring
images, as bench_quality.py measures it) of each, per transition and as mean / worst.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import torch
from bench_quality import PAIRS, lab_distance
from diffusers.utils import logging as diffusers_logging

from latentmorph.blending.crossfeed import Crossfeed
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.hires import NEIGHBOUR_CROSSFEED, upscale
from latentmorph.blending.settings import BlendSettings
from latentmorph.models.loading import load_pipeline

WAYS = {"hi-res, parents pull": NEIGHBOUR_CROSSFEED, "hi-res, no pull": Crossfeed()}


def evenness(images) -> float:
    gaps = [lab_distance(a, b) for a, b in zip(images[:-1], images[1:], strict=True)]
    return max(gaps) / statistics.mean(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=16)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    diffusers_logging.disable_progress_bar()
    model = load_pipeline("demo", device=args.device)
    settings, _ = BlendSettings(branches=args.branches, hires=args.scale).resolve(model)
    print(
        f"date: {datetime.date.today()}, demo model, {settings.width}x{settings.height} ×"
        f"{settings.hires:g}, {settings.steps} steps, hires_strength {settings.hires_strength}, "
        f"plan {settings.branching_plan().describe()}, parents pull {NEIGHBOUR_CROSSFEED}, "
        f"torch {torch.__version__}"
    )
    results: dict[str, list[float]] = {}
    print("\n| transition | stage 1 | " + " | ".join(WAYS) + " |")
    print("|---|---|" + "---|" * len(WAYS))
    for first, last, seeds in PAIRS:
        engine = BlendingEngine(model, settings)
        conds = engine.encode([first, last])
        (tree,) = engine.transitions(engine.begin(conds, list(seeds)), conds)
        row = {"stage 1": evenness(tree.images)}
        for way, crossfeed in WAYS.items():
            images = upscale(engine, tree, conds[0], conds[1], seeds[0], crossfeed)
            row[way] = evenness(images)
        for way, value in row.items():
            results.setdefault(way, []).append(value)
        cells = " | ".join(f"{v:.2f}" for v in row.values())
        print(f"| {first} → {last} (seeds {seeds[0]}, {seeds[1]}) | {cells} |", flush=True)
    cells = " | ".join(f"{statistics.mean(v):.2f} / {max(v):.2f}" for v in results.values())
    print(f"| mean / worst | {cells} |")


if __name__ == "__main__":
    main()
