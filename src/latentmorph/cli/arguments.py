"""Checks of the parsed command line that no single flag's type can make: limits that involve
several flags, before anything is loaded. Errors name the flags as the user wrote them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..inputs import check_input_file, check_not_input
from ..limits import MAX_GIF_FPS, MAX_GUIDANCE, check_length


def check_arguments(args: argparse.Namespace) -> None:
    """Raises InputError for a combination of flags that cannot work."""
    _check_length(args)
    _check_gif_rate(args)
    _check_inputs(args)
    if args.command == "animate":
        if args.audio is not None:
            check_input_file(args.audio, "--audio", "an audio file (or a video with sound)")
        if args.init_video is not None:
            check_input_file(args.init_video, "--init-video", "a video file")
    if args.command == "animate" and isinstance(args.guidance_scale, str):
        from ..animation.schedules import parse_parameter_schedule

        parse_parameter_schedule(args.guidance_scale, "--guidance-scale", 0.0, MAX_GUIDANCE)


def _fps(args: argparse.Namespace) -> float | None:
    """The frame rate the command renders at, when the command line decides it."""
    fps = getattr(args, "fps", None)
    if fps is None and args.command == "animate" and not args.init_video:
        from ..animation import DEFAULT_FPS

        return DEFAULT_FPS
    return fps


def _check_length(args: argparse.Namespace) -> None:
    duration, fps = getattr(args, "duration", None), _fps(args)
    if duration is not None and fps is not None:
        check_length(duration, fps, "--duration")


def _check_gif_rate(args: argparse.Namespace) -> None:
    output, fps = getattr(args, "output", None), _fps(args)
    gif = output is not None and Path(str(output)).suffix.lower() == ".gif"
    if gif and fps is not None and fps > MAX_GIF_FPS:
        raise InputError(
            f"--fps: {fps:g} is not allowed with the .gif output {output}; GIF allows at "
            f"most {MAX_GIF_FPS} frames per second (use .mp4 or .webm for more)"
        )


def _check_inputs(args: argparse.Namespace) -> None:
    """Refuses an output that would overwrite an input file."""
    if args.command == "animate":
        inputs = [("prompt schedule file", args.prompts), ("--audio file", args.audio)]
        inputs.append(("--init-video file", args.init_video))
    elif args.command == "movie":
        inputs = [("project file", args.project)]
    else:
        return
    output = args.output or args.project.with_suffix(".mp4")
    check_not_input(output, inputs, "-o/--output" if args.output else "output")
