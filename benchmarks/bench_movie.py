"""Times the keyframes and trees of a 5-keyframe movie, segment by segment and together.

Usage: python benchmarks/bench_movie.py [--device cpu|cuda] [--repeats N]

Segment by segment: the keyframes as one batch, then each level of each segment as one batch.
Together (what movies do): the first level of every segment runs in the keyframes' batch, then
each later level of all segments is one batch. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import torch
from diffusers.utils import logging as diffusers_logging

from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.models.loading import adapter_for, load_pipeline
from latentmorph.models.presets import TINY_DEFAULTS
from latentmorph.models.tiny import tiny_sd_pipeline

PROMPTS = [
    "a red circle on a blue background",
    "a yellow square on a green background",
    "a purple triangle on a white background",
    "a green circle on a black background",
    "a blue square on a yellow background",
]


def timed(model, grow) -> tuple[float, int]:
    """Seconds and UNet calls of `grow()`."""
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    calls = grow()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, calls


def bench(name: str, model, repeats: int) -> str:
    # one batch a level, so that the call counts compare the two ways of batching alone
    settings, _ = BlendSettings(branches=12, distance="pixel", placement="even").resolve(model)
    plan = settings.branching_plan()
    engine = BlendingEngine(model, settings)
    conds = engine.encode(PROMPTS)
    seeds = list(range(len(PROMPTS)))

    def by_segment() -> int:
        engine.stats.unet_calls = 0
        keyframes = engine.keyframes(conds, seeds)
        for i in range(len(keyframes) - 1):
            engine.transition(keyframes[i], keyframes[i + 1], conds[i], conds[i + 1], plan)
        return engine.stats.unet_calls

    def together() -> int:
        engine.stats.unet_calls = 0
        list(engine.transitions(engine.begin(conds, seeds), conds))
        return engine.stats.unet_calls

    together()  # warm-up
    pairs = [(timed(model, by_segment), timed(model, together)) for _ in range(repeats)]
    speedup = statistics.median(a[0] / b[0] for a, b in pairs)
    return (
        f"| {name} | {settings.width}² | {settings.steps} | {settings.guidance_scale} | "
        f"{plan.describe()} | {statistics.median(a[0] for a, _ in pairs):.2f} s "
        f"({pairs[0][0][1]} calls) | {statistics.median(b[0] for _, b in pairs):.2f} s "
        f"({pairs[0][1][1]} calls) | {speedup:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    diffusers_logging.disable_progress_bar()
    print(
        "| model | size | steps | guidance | plan per segment | segment by segment | together "
        "| speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|")
    tiny = adapter_for(tiny_sd_pipeline().to(args.device), TINY_DEFAULTS, "tiny SD")
    for name, model in (("tiny SD", tiny), ("demo", load_pipeline("demo", device=args.device))):
        print(bench(name, model, args.repeats), flush=True)


if __name__ == "__main__":
    main()
