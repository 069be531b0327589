"""A region kept still (--mask): how still it stays, and what the latent hold does before the
pixels are composited.

Usage: python benchmarks/bench_mask.py [--device cpu] [--pairs 4]

1. Movies: for the first prompt pairs of `bench_quality.py` (prompts 2i and 2i + 1 of the
   demo's test prompts), a 3-keyframe movie of the demo
   model (the pair and the next pair's first prompt; 2 s a segment at 24 fps, 12 branches, flow
   fillers) with a mask that keeps a disc at the upper left (black), keeps a band partly (grey
   128) and lets the rest change (white). Figures over every written frame: the largest change
   of a pixel in the kept disc between consecutive frames and against frame 0 (0..255), and the
   mean change of the grey band and the free part against frame 0.
2. Latent hold: for the same pairs, the computed images of one transition before compositing;
   mean absolute difference from keyframe 1 inside the disc shrunk by 8 px (away from the
   feather), with the mask and without it.
3. Animation: a walk with motion (translation 2 px a frame, strength 0.6) of 24 frames with the
   same mask; the largest change in the disc between consecutive frames.
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import numpy as np
import torch
from PIL import Image

from latentmorph.animation.render import AnimationRenderer
from latentmorph.animation.schedules import parse_prompt_schedule
from latentmorph.animation.settings import Animation
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.demo.quality import TEST_PROMPTS
from latentmorph.models.loading import load_pipeline
from latentmorph.project import Keyframe, Project
from latentmorph.render import render_project

SIZE = 64


def regions() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mask image and its kept disc, grey band and free part as boolean maps."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    disc = (x - 18) ** 2 + (y - 18) ** 2 <= 14**2
    band = (y >= 48) & ~disc
    mask = np.full((SIZE, SIZE), 255, np.uint8)
    mask[band] = 128
    mask[disc] = 0
    return mask, disc, band, ~disc & ~band


def movie_figures(model, pairs, folder: Path, mask_path: Path) -> list[tuple]:
    _, disc, band, free = regions()
    rows = []
    for i, (a, b) in enumerate(pairs):
        third = pairs[(i + 1) % len(pairs)][0]
        keyframes = [Keyframe(p, seed) for p, seed in zip((a, b, third), (1, 2, 3))]
        settings = BlendSettings(branches=12, mask=str(mask_path))
        project = Project(keyframes, model="demo", fps=24, duration=2, settings=settings)
        out = folder / f"movie{i}"
        render_project(project, out, model, progress=False)
        frames = [np.asarray(Image.open(p), np.int16) for p in sorted(out.glob("*.png"))]
        steps = max(int(np.abs(g - f)[disc].max()) for f, g in zip(frames, frames[1:]))
        drift = max(int(np.abs(f - frames[0])[disc].max()) for f in frames)
        grey = float(np.mean([np.abs(f - frames[0])[band].mean() for f in frames]))
        rest = float(np.mean([np.abs(f - frames[0])[free].mean() for f in frames]))
        rows.append((a, b, len(frames), steps, drift, grey, rest))
    return rows


def hold_figures(model, pairs, mask_path: Path) -> list[tuple]:
    _, disc, _, _ = regions()
    inner = np.asarray(Image.fromarray(disc).filter(_erode(8)))  # away from the feather
    rows = []
    for a, b in pairs:
        row = []
        for mask in (str(mask_path), None):
            settings, _ = BlendSettings(branches=12, mask=mask).resolve(model)
            engine = BlendingEngine(model, settings)
            conds = engine.encode([a, b])
            (tree,) = engine.transitions(engine.begin(conds, [1, 2]), conds)
            images = [np.asarray(i, np.int16) for i in tree.images]
            row.append(float(np.mean([np.abs(i - images[0])[inner].mean() for i in images[1:]])))
        rows.append((a, b, *row))
    return rows


def _erode(pixels: int):
    from PIL import ImageFilter

    return ImageFilter.MinFilter(2 * pixels + 1)


def walk_figure(model, mask_path: Path) -> int:
    _, disc, _, _ = regions()
    a, b = TEST_PROMPTS[:2]
    animation = Animation(
        prompts=parse_prompt_schedule(f"0: {a}\n23: {b}"),
        seed=5,
        translation_x="2",
        strength="0.6",
        blend=BlendSettings(mask=str(mask_path)),
    )
    frames = [
        np.asarray(i, np.int16) for i in AnimationRenderer(animation, model, False).render_frames()
    ]
    return max(int(np.abs(g - f)[disc].max()) for f, g in zip(frames, frames[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()
    model = load_pipeline("demo", device=args.device)
    pairs = [(TEST_PROMPTS[2 * i], TEST_PROMPTS[2 * i + 1]) for i in range(args.pairs)]
    print(f"{datetime.date.today()}, {model.device}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mask_path = folder / "mask.png"
        Image.fromarray(regions()[0]).save(mask_path)
        print(
            "| pair | frames | disc: largest change frame to frame | disc: against frame 0 "
            "| grey band: mean change | free part: mean change |"
        )
        print("|---|---|---|---|---|---|")
        for a, b, frames, steps, drift, grey, rest in movie_figures(
            model, pairs, folder, mask_path
        ):
            print(f"| {a} → {b} | {frames} | {steps} | {drift} | {grey:.1f} | {rest:.1f} |")
        print("\n| pair | disc interior vs keyframe 1, held | not held |")
        print("|---|---|---|")
        for a, b, held, free in hold_figures(model, pairs, mask_path):
            print(f"| {a} → {b} | {held:.1f} | {free:.1f} |")
        walk = walk_figure(model, mask_path)
        print(f"\nwalk with motion: disc, largest change frame to frame {walk}")


if __name__ == "__main__":
    main()
