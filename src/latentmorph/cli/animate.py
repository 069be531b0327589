"""`latentmorph animate`: a keyframed animation from a prompt schedule file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..choices import (
    ANIMATION_MODES,
    AUDIO_COMPONENTS,
    AUDIO_REDUCTIONS,
    BORDER_MODES,
    CURVES,
)
from ..limits import BRANCHES, DURATION, FPS, FRACTION, NOISE, SEED, STEPS
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


def add_parser(commands: Commands) -> None:
    """Adds the command and its options."""
    p = commands.add_parser(
        "animate",
        help="render a keyframed animation from a prompt schedule file",
        description="Render an animation from a prompt schedule file (one 'FRAME: prompt' per "
        "line). Schedules take Deforum's format '0:(1.0), 30:(1.05)' or a plain number.",
    )
    p.add_argument("prompts", type=Path, help="prompt schedule file")
    p.add_argument(
        "-o",
        "--output",
        default="animation.mp4",
        help="output: .mp4, .webm, .gif or a PNG folder (default: animation.mp4)",
    )
    add_generation_options(p)
    _add_timing_options(p)
    _add_diffusion_options(p)
    _add_motion_options(p)
    _add_interpolation_options(p)
    _add_consistency_options(p)
    _add_input_options(p)
    _add_blend_options(p)
    add_fillers_option(p)
    add_mask_option(p)
    add_control_options(
        p,
        "control image of the --controlnet (the same for every frame), or control video "
        "(.mp4, .webm, .mov, .mkv, .avi, .m4v: its frame k guides frame k, its last frame held "
        "past its end)",
    )
    add_model_options(p)
    p.set_defaults(run=run)


def _add_timing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fps",
        type=limited(FPS),
        help="frames per second (default: the video input's, else 24)",
    )
    p.add_argument(
        "--duration",
        type=limited(DURATION),
        help="seconds; the output has exactly round(duration·fps) frames and the "
        "keyframes are scaled to fit (default: end at the last keyframe)",
    )


def _add_diffusion_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode",
        choices=ANIMATION_MODES,
        default="auto",
        help="blend: latent-blending transitions between prompt keyframes; walk: "
        "every frame generated from interpolated noise and prompt; auto: blend "
        "unless motion, video input, coherence, a non-linear curve, audio timing "
        "or a guidance schedule need walk (default: auto)",
    )
    p.add_argument(
        "--seed",
        type=limited(SEED),
        help="seed of keyframe 1; keyframe i uses seed + i (default: random, recorded)",
    )
    p.add_argument(
        "--guidance-scale",
        metavar="SCHEDULE",
        help="guidance scale schedule (default: the model's)",
    )
    p.add_argument(
        "--strength",
        metavar="SCHEDULE",
        default="0.6",
        help="img2img strength schedule, 0..1, for motion and video input (default: 0.6)",
    )


def _add_motion_options(p: argparse.ArgumentParser) -> None:
    for name, default, text in (
        ("zoom", "1.0", "zoom factor per frame, > 1 zooms in"),
        ("angle", "0", "rotation per frame in degrees, counter-clockwise"),
        ("translation-x", "0", "pixels per frame, + moves the picture right"),
        ("translation-y", "0", "pixels per frame, + moves the picture down"),
    ):
        p.add_argument(
            f"--{name}",
            metavar="SCHEDULE",
            default=default,
            help=f"2D motion: {text} (default: {default})",
        )
    p.add_argument(
        "--border",
        choices=BORDER_MODES,
        default="replicate",
        help="how motion fills uncovered borders (default: replicate)",
    )


def _add_interpolation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--curve",
        choices=CURVES,
        default="linear",
        help="interpolation curve between prompt keyframes (default: linear)",
    )
    p.add_argument(
        "--frequencies",
        default="1.0",
        help="frequencies of the sine curve, e.g. '1.0, 2.0' (default: 1.0)",
    )
    p.add_argument(
        "--curve-points",
        metavar="CURVE",
        help="keyframed curve for --curve curve, values 0..1, e.g. "
        "'0: (0.0), 50: (1.0), 60: (0.5)'",
    )
    p.add_argument(
        "--fixed-noise",
        action="store_true",
        help="one noise for all keyframes: only the prompt changes",
    )


def _add_consistency_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--colour-match",
        action="store_true",
        help="match every frame's colours to the first frame (LAB histograms)",
    )

    p.add_argument(
        "--coherence-scale",
        type=limited(FRACTION),
        default=0.0,
        help="0..1: pull each frame's latents toward a running reference of the "
        "earlier frames' (default: 0, off)",
    )
    p.add_argument(
        "--coherence-alpha",
        type=limited(FRACTION),
        default=0.5,
        help="0..1: weight of the new latents in the running reference (default: 0.5)",
    )
    p.add_argument(
        "--coherence-steps",
        type=limited(STEPS),
        default=1000,
        help="apply coherence during the first N steps of each frame (default: all)",
    )
    p.add_argument(
        "--coherence-noise",
        type=limited(NOISE),
        default=0.0,
        help="fresh noise added after each pull (default: 0)",
    )


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audio",
        type=str,
        help="audio file (wav, flac, mp3, m4a, a video's soundtrack, ...): muxed into mp4 and webm "
        "outputs",
    )
    p.add_argument(
        "--audio-keyframes",
        choices=AUDIO_COMPONENTS,
        help="place prompt keyframes on the onsets of this part of the audio, the "
        "prompts in file order, repeating; the onset times are printed",
    )
    p.add_argument(
        "--audio-timing",
        choices=AUDIO_COMPONENTS,
        help="move between keyframes at the pace of this part of the audio's energy, "
        "so changes land on beats",
    )
    p.add_argument(
        "--audio-reduce",
        choices=AUDIO_REDUCTIONS,
        default="max",
        help="how audio timing reduces the mel bands of a frame (default: max)",
    )
    p.add_argument(
        "--init-video",
        type=str,
        help="video whose frames are the img2img init frames (read as a stream)",
    )


def _add_blend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--branches",
        type=limited(BRANCHES),
        help="blend mode: images per transition, keyframes included (default: 12)",
    )
    p.add_argument(
        "--depth-strength",
        type=limited(FRACTION),
        default=0.5,
        help="blend mode: as for transition (default: 0.5)",
    )


def run(args: argparse.Namespace) -> None:
    """Renders the animation and saves its project file."""
    from ..animation.schedules import parse_prompt_schedule
    from ..animation.settings import Animation, Coherence
    from ..blending.settings import BlendSettings
    from ..inputs import read_text
    from .rendering import render_animation

    text = read_text(args.prompts, "prompt schedule file")
    animation = Animation(
        prompts=parse_prompt_schedule(text, source=str(args.prompts)),
        model=args.model,
        fps=args.fps,
        duration=args.duration,
        mode=args.mode,
        seed=args.seed,
        steps=args.steps,
        negative_prompt=args.negative_prompt,
        width=args.width,
        height=args.height,
        guidance_scale=args.guidance_scale,
        strength=args.strength,
        zoom=args.zoom,
        angle=args.angle,
        translation_x=args.translation_x,
        translation_y=args.translation_y,
        border=args.border,
        curve=args.curve,
        frequencies=args.frequencies,
        curve_points=args.curve_points,
        fixed_noise=args.fixed_noise,
        colour_match=args.colour_match,
        coherence=Coherence(
            args.coherence_scale, args.coherence_alpha, args.coherence_steps, args.coherence_noise
        ),
        audio=args.audio,
        audio_keyframes=args.audio_keyframes,
        audio_timing=args.audio_timing,
        audio_reduce=args.audio_reduce,
        init_video=args.init_video,
        blend=BlendSettings(
            branches=args.branches,
            depth_strength=args.depth_strength,
            prompt_weighting=args.prompt_weighting,
            max_batch=args.max_batch,
            controlnet=control_settings(args, None),
            **run_settings(args),
        ),
        device=args.device,
        dtype=args.dtype,
        source=args.prompts,
    )
    render_animation(animation, args.output, args)
