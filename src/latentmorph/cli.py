"""The command line: `latentmorph transition`, `latentmorph movie`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .checks import is_positive

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports errors on one line and exits 2."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not is_positive(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; use a number > 0")
    return value


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default=None, help="cuda, mps, cpu or auto (default: auto: cuda, mps, cpu)"
    )
    parser.add_argument(
        "--dtype",
        default=None,
        help="float16, bfloat16, float32 or auto (default: auto: float16 on cuda, else float32)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow loading pickle checkpoints (.ckpt, .bin); they can run code when loaded",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_transition_parser(commands) -> None:
    p = commands.add_parser(
        "transition",
        help="make a transition video between two prompts",
        description="Make a latent-blending transition video between two prompts. "
        "Unset options take the model's defaults.",
    )
    p.add_argument("prompt_a", help="prompt of the first keyframe")
    p.add_argument("prompt_b", help="prompt of the last keyframe")
    p.add_argument(
        "-o",
        "--output",
        default="transition.mp4",
        help="output: .mp4, .webm, .gif, or a folder of PNGs (no extension); the project file "
        "is saved beside it as .yaml (default: transition.mp4)",
    )
    p.add_argument(
        "--model",
        default="demo",
        help="preset (demo, sdxl-turbo, sd-turbo, sdxl, sd15, sd21, tiny-sd, tiny-sdxl), hub id, "
        "local diffusers folder or .safetensors file (default: demo)",
    )
    p.add_argument(
        "--seeds",
        nargs=2,
        type=int,
        metavar=("A", "B"),
        help="seeds of the two keyframes (default: random, recorded in the project)",
    )
    p.add_argument("--steps", type=int, help="diffusion steps (default: the model's)")
    count = p.add_mutually_exclusive_group()
    count.add_argument(
        "--branches", type=int, help="images computed, both keyframes included (default: 12)"
    )
    count.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="choose the number of branches to fit this many seconds",
    )
    count.add_argument(
        "--quality",
        choices=("lowest", "low", "medium", "high", "ultra"),
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
        type=float,
        default=0.5,
        help="0..1: how deep into the diffusion the first branches are injected; "
        "higher keeps more structure of the keyframes (default: 0.5)",
    )
    p.add_argument(
        "--guidance-scale", type=float, help="classifier-free guidance scale (default: the model's)"
    )
    p.add_argument(
        "--guidance-damper",
        type=float,
        default=0.7,
        help="0..1: guidance in the middle of the transition is "
        "1 + (g - 1)·damper; 1 keeps it constant (default: 0.7)",
    )
    p.add_argument("--negative-prompt", default="", help="negative prompt (default: none)")
    p.add_argument("--width", type=int, help="width in pixels (default: the model's)")
    p.add_argument("--height", type=int, help="height in pixels (default: the model's)")
    p.add_argument("--duration", type=_positive_float, default=10.0, help="seconds (default: 10)")
    p.add_argument(
        "--fps", type=_positive_float, default=30.0, help="frames per second (default: 30)"
    )
    p.add_argument(
        "--keyframe-crossfeed",
        nargs=3,
        type=float,
        metavar=("POWER", "RANGE", "DECAY"),
        help="pull keyframe 2 toward keyframe 1 (default: 0 0 0, off)",
    )
    p.add_argument(
        "--parental-crossfeed",
        nargs=3,
        type=float,
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
        choices=("auto", "pixel", "lpips"),
        default="auto",
        help="perceptual image distance (default: auto: lpips when its weights load, else pixel)",
    )
    _add_model_options(p)
    p.set_defaults(run=_run_transition)


def _add_movie_parser(commands) -> None:
    p = commands.add_parser(
        "movie",
        help="render a movie through all keyframes of a project file",
        description="Render a movie through the keyframes of a project file (YAML). Every "
        "output's project file can be rendered again this way to reproduce it.",
    )
    p.add_argument("project", type=Path, help="project file (.yaml)")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="output: .mp4, .webm, .gif or a PNG folder (default: the project "
        "file's name with .mp4)",
    )
    _add_model_options(p)
    p.set_defaults(run=_run_movie)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="latentmorph",
        description="Butter-smooth videos with latent diffusion models.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_transition_parser(commands)
    _add_movie_parser(commands)
    return parser


def _version() -> str:
    from . import __version__

    return f"latentmorph {__version__}"


def _run_transition(args: argparse.Namespace):
    from .blending.settings import BlendSettings
    from .project import Keyframe, Project

    seeds = args.seeds or (None, None)
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
        width=args.width,
        height=args.height,
        keyframe_crossfeed=args.keyframe_crossfeed,
        parental_crossfeed=args.parental_crossfeed,
        batched=not args.one_at_a_time,
        distance=args.distance,
    )
    project = Project(
        keyframes=[Keyframe(args.prompt_a, seeds[0]), Keyframe(args.prompt_b, seeds[1])],
        model=args.model,
        fps=args.fps,
        duration=args.duration,
        settings=settings,
        device=args.device,
        dtype=args.dtype,
    )
    return _render(project, args.output, args)


def _run_movie(args: argparse.Namespace):
    from .project import Project

    project = Project.load(args.project)
    if args.device or args.dtype:
        project.device = args.device or project.device
        project.dtype = args.dtype or project.dtype
    return _render(project, args.output or args.project.with_suffix(".mp4"), args)


def _render(project, output, args: argparse.Namespace):
    from .models.loading import load_pipeline
    from .movie.writers import check_output_path
    from .render import MovieRenderer

    check_output_path(output)
    model = load_pipeline(project.model, project.device, project.dtype, args.allow_pickle)
    renderer = MovieRenderer(project, model, progress=not args.quiet)
    for notice in renderer.notices:
        print(f"latentmorph: note: {notice}", file=sys.stderr)
    summary = renderer.write(output)
    print(summary.line())


def _quiet_libraries() -> None:
    """Silences the libraries' import-time chatter (optional backends, casting notes)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input)."""
    from .errors import LatentmorphError

    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        args.run(args)
    except LatentmorphError as error:
        print(f"latentmorph: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("latentmorph: interrupted; nothing was left under the output name", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
