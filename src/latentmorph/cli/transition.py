"""`latentmorph transition`: a transition video between two prompts."""

from __future__ import annotations

import argparse

from ..choices import DISTANCES, PLACEMENTS, QUALITIES
from ..errors import InputError
from ..inputs import IMAGE_SUFFIXES, is_image_name
from ..limits import BRANCHES, DURATION, FPS, FRACTION, GUIDANCE, SEED, TIME_BUDGET
from .control import add_control_options, control_settings
from .options import (
    Commands,
    add_fillers_option,
    add_generation_options,
    add_mask_option,
    add_model_options,
    limited,
    run_settings,
)
from .rendering import add_sheet_option
from .values import Fractions


def add_parser(commands: Commands) -> None:
    """Adds the command and its options."""
    p = commands.add_parser(
        "transition",
        help="make a transition video between two prompts",
        description="Make a latent-blending transition video between two prompts. "
        "Unset options take the model's defaults.",
    )
    p.add_argument(
        "prompt_a",
        help="prompt of the first keyframe, or an image file (a name ending in "
        f"{', '.join(IMAGE_SUFFIXES)}) to start from",
    )
    p.add_argument("prompt_b", help="prompt of the last keyframe, or an image file to end on")
    p.add_argument(
        "--prompts",
        nargs="+",
        metavar="PROMPT",
        help="prompts of the keyframes given as image files, one per image, in order "
        '(default: "", no prompt)',
    )
    p.add_argument(
        "-o",
        "--output",
        default="transition.mp4",
        help="output: .mp4, .webm, .gif, or a folder of PNGs (no extension); the project file "
        "is saved beside it as .yaml (default: transition.mp4)",
    )
    p.add_argument(
        "--seeds",
        nargs=2,
        type=limited(SEED),
        metavar=("A", "B"),
        help="seeds of the two keyframes (default: random, recorded in the project)",
    )
    add_generation_options(p)
    count = p.add_mutually_exclusive_group()
    count.add_argument(
        "--branches",
        type=limited(BRANCHES),
        help="images computed, both keyframes included, 2 to 2000 (default: 12)",
    )
    count.add_argument(
        "--time-budget",
        type=limited(TIME_BUDGET),
        metavar="SECONDS",
        help="choose the number of branches to fit this many seconds",
    )
    count.add_argument(
        "--quality",
        choices=QUALITIES,
        help="preset of steps and branches for the movie's frame count",
    )
    count.add_argument(
        "--plan",
        metavar="PLAN",
        help="manual branching plan: image counts per level with injection "
        "strengths or steps, e.g. '4@0.3 8@0.5 20@0.9' or '5@s2 9@s3'",
    )
    p.add_argument(
        "--depth-strength",
        type=limited(FRACTION),
        default=0.5,
        help="0..1: how deep into the diffusion the first branches are injected; "
        "higher keeps more structure of the keyframes (default: 0.5)",
    )
    p.add_argument(
        "--guidance-scale",
        type=limited(GUIDANCE),
        help="classifier-free guidance scale (default: the model's)",
    )
    p.add_argument(
        "--guidance-damper",
        type=limited(FRACTION),
        default=0.7,
        help="0..1: guidance in the middle of the transition is "
        "1 + (g - 1)·damper; 1 keeps it constant (default: 0.7)",
    )
    p.add_argument("--duration", type=limited(DURATION), default=10.0, help="seconds (default: 10)")
    p.add_argument("--fps", type=limited(FPS), default=30.0, help="frames per second (default: 30)")
    p.add_argument(
        "--keyframe-crossfeed",
        nargs=3,
        action=Fractions,
        metavar=("POWER", "RANGE", "DECAY"),
        help="pull keyframe 2 toward keyframe 1 (default: 0 0 0, off)",
    )
    p.add_argument(
        "--parental-crossfeed",
        nargs=3,
        action=Fractions,
        metavar=("POWER", "RANGE", "DECAY"),
        help="pull each branch toward its parents (default: the model's)",
    )
    p.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="run branches one at a time instead of batched (for comparison)",
    )
    p.add_argument(
        "--distance",
        choices=DISTANCES,
        default="auto",
        help="perceptual image distance (default: auto: lpips when its weights are already "
        "downloaded, else pixel)",
    )
    p.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="adaptive",
        help="where each level's new branches go: adaptive: in rounds, bisecting every gap "
        "that differs at least 70%% as much as the largest; even: all in one batch, shared out "
        "by distance (fewest UNet calls); sequential: one at a time in the gap that differs "
        "most (most UNet calls) (default: adaptive)",
    )
    add_sheet_option(p)
    add_control_options(p, "control image of the --controlnet: one for both keyframes, or two")
    add_fillers_option(p)
    add_mask_option(p)
    add_model_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Renders the transition and saves its project file."""
    from ..blending.settings import BlendSettings
    from ..project import Project
    from .rendering import render_movie

    seeds = args.seeds or (None, None)
    keyframes = _keyframes(args.prompt_a, args.prompt_b, args.prompts, seeds)
    settings = BlendSettings(
        steps=args.steps,
        branches=args.branches,
        time_budget=args.time_budget,
        depth_strength=args.depth_strength,
        quality=args.quality,
        plan=args.plan,
        guidance_scale=args.guidance_scale,
        guidance_damper=args.guidance_damper,
        negative_prompt=args.negative_prompt,
        prompt_weighting=args.prompt_weighting,
        width=args.width,
        height=args.height,
        keyframe_crossfeed=args.keyframe_crossfeed,
        parental_crossfeed=args.parental_crossfeed,
        batched=not args.one_at_a_time,
        max_batch=args.max_batch,
        distance=args.distance,
        placement=args.placement,
        controlnet=control_settings(args, 2),
        **run_settings(args),
    )
    project = Project(
        keyframes=keyframes,
        model=args.model,
        fps=args.fps,
        duration=args.duration,
        settings=settings,
        device=args.device,
        dtype=args.dtype,
    )
    render_movie(project, args.output, args)


def _keyframes(
    first: str, last: str, prompts: list[str] | None, seeds: tuple[int | None, int | None]
) -> list:
    """The two keyframes: a text is a prompt; a name ending in an image suffix is an image,
    prompted by the next of `prompts` ("" when none are given)."""
    from ..project import Keyframe

    first, last = (text.strip() if is_image_name(text) else text for text in (first, last))
    images = [text for text in (first, last) if is_image_name(text)]
    if prompts is not None and len(prompts) != len(images):
        raise InputError(
            f"--prompts: {len(prompts)} given; give one prompt per keyframe given as an image "
            f"({len(images)})"
        )
    given = iter(prompts or [""] * len(images))
    return [
        Keyframe(next(given), seed, image=text) if is_image_name(text) else Keyframe(text, seed)
        for text, seed in zip((first, last), seeds, strict=True)
    ]
