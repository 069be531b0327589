"""Checks of the parsed command line that no single flag's type can make: limits that involve
several flags, text values parsed in full (schedules, plans), before anything is loaded.
Errors name the flags as the user wrote them."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError
from ..inputs import check_input_file, check_not_input
from ..limits import MAX_GIF_FPS, check_length

SCHEDULE_FLAGS = {
    "guidance_scale": "--guidance-scale",
    "strength": "--strength",
    "zoom": "--zoom",
    "angle": "--angle",
    "translation_x": "--translation-x",
    "translation_y": "--translation-y",
}
"""The animation's parameter schedules and the flags that give them."""


def check_arguments(args: argparse.Namespace) -> None:
    """Raises InputError for a combination of flags that cannot work."""
    _check_text(args)
    _check_length(args)
    _check_gif_rate(args)
    _check_inputs(args)
    if getattr(args, "mask", None) is not None:
        from ..image_files import read_image

        read_image(args.mask, "--mask", mode="L")
    if args.command == "transition":
        _check_branching(args)
    if args.command == "animate":
        _check_schedules(args)
        if args.audio is not None:
            check_input_file(args.audio, "--audio", "an audio file (or a video with sound)")
        if args.init_video is not None:
            check_input_file(args.init_video, "--init-video", "a video file")


FIELD = re.compile(r"([a-z_][a-z_.]*|keyframes\[[01]\]\.(?:prompt|seed|image))(?=: )")
"""The setting an error message starts with: `depth_strength: ...`, `keyframes[0].seed: ...`."""
KEYFRAME_FLAGS = {
    "keyframes[0].prompt": "prompt_a",
    "keyframes[1].prompt": "prompt_b",
    "keyframes[0].seed": "--seeds",
    "keyframes[1].seed": "--seeds",
    "keyframes[0].image": "prompt_a",
    "keyframes[1].image": "prompt_b",
}
"""The transition's two keyframes as the command line gives them."""


def flag_for(field: str, parser: argparse.ArgumentParser) -> str | None:
    """The flag (or positional argument) of `parser` that gives the setting `field`."""
    if field in KEYFRAME_FLAGS:
        return KEYFRAME_FLAGS[field]
    dest = field.replace(".", "_")
    for action in parser._actions:
        if action.dest == dest and action.dest != "help":
            return max(action.option_strings, key=len, default=action.dest)
    return None


@contextmanager
def flags_named(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Names the command line's flags instead of the settings' fields in the InputErrors raised
    inside: `--depth-strength: ...` for `depth_strength: ...`; other messages stay."""
    try:
        yield
    except InputError as error:
        match = FIELD.match(str(error))
        flag = flag_for(match[1], parser) if match else None
        if flag is None or flag == match[1]:
            raise
        raise type(error)(flag + str(error)[match.end(1) :]) from None


def _check_text(args: argparse.Namespace) -> None:
    """Prompts and the model are non-empty."""
    if args.command == "transition":
        for name in ("prompt_a", "prompt_b"):
            if not getattr(args, name).strip():
                raise InputError(f"{name}: missing; give a non-empty prompt")
    model = getattr(args, "model", None)
    if model is not None and not model.strip():
        raise InputError("--model: missing; give a preset, hub id, folder or .safetensors file")


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
        frames = check_length(duration, fps, "--duration")
        if args.command == "transition" and frames < 2:
            raise InputError(
                f"--duration: {duration:g} s at {fps:g} fps gives {frames} frame(s); a "
                "transition needs at least 2"
            )


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
    elif args.command == "movie" and len(args.project) == 1:
        inputs = [("project file", args.project[0])]
    else:
        return  # each project file of a batch is checked when its turn comes
    output = args.output or inputs[0][1].with_suffix(".mp4")
    check_not_input(output, inputs, "-o/--output" if args.output else "output")


def _check_branching(args: argparse.Namespace) -> None:
    """The plan parses and the quality preset gives a number of branches that is allowed."""
    from ..blending.plan import BranchingPlan, quality_settings

    if args.plan is not None:
        BranchingPlan.parse(args.plan, args.steps or 1000)
    if args.quality is not None:
        frames = round(args.duration * args.fps) - 1  # the frames after the first keyframe
        quality_settings(args.quality, frames, "--quality")


def _check_schedules(args: argparse.Namespace) -> None:
    """The parameter schedules, frequencies and curve points parse and are in range."""
    from ..animation.schedules import parse_curve, parse_frequencies, parse_parameter_schedule
    from ..animation.settings import SCHEDULE_RANGES

    for name, flag in SCHEDULE_FLAGS.items():
        text = getattr(args, name)
        if text is not None:
            low, high = SCHEDULE_RANGES[name]
            parse_parameter_schedule(text, flag, low, high)
    parse_frequencies(args.frequencies, "--frequencies")
    if args.curve_points is not None:
        parse_curve(args.curve_points, "--curve-points")
    elif args.curve == "curve":
        raise InputError("--curve: 'curve' needs --curve-points, e.g. '0: (0.0), 50: (1.0)'")
    if (args.audio_keyframes or args.audio_timing) and not args.audio:
        raise InputError("--audio-keyframes/--audio-timing: need an audio file (--audio)")
