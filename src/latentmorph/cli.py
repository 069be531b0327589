"""The command line: `latentmorph transition`, `movie`, `animate` and `ui`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .checks import is_positive
from .choices import (
    ANIMATION_MODES,
    AUDIO_COMPONENTS,
    AUDIO_REDUCTIONS,
    BORDER_MODES,
    CURVES,
    DISTANCES,
    QUALITIES,
)
from .errors import InputError

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
    parser.add_argument(
        "--max-batch",
        type=int,
        metavar="N",
        help="at most N images per UNet batch (default: a whole level of branches, halved "
        "automatically when the device runs out of memory)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_generation_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that generate images."""
    parser.add_argument(
        "--model",
        default="demo",
        help="preset (demo, sdxl-turbo, sd-turbo, sdxl, sd15, sd21, tiny-sd, tiny-sdxl), hub id, "
        "local diffusers folder or .safetensors file (default: demo)",
    )
    parser.add_argument("--steps", type=int, help="diffusion steps (default: the model's)")
    parser.add_argument("--negative-prompt", default="", help="negative prompt (default: none)")
    parser.add_argument(
        "--prompt-weighting",
        action="store_true",
        help="read Compel weighting syntax in prompts, e.g. 'a (red)1.3 circle', 'a red++ circle'",
    )
    parser.add_argument("--width", type=int, help="width in pixels (default: the model's)")
    parser.add_argument("--height", type=int, help="height in pixels (default: the model's)")


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
        "--seeds",
        nargs=2,
        type=int,
        metavar=("A", "B"),
        help="seeds of the two keyframes (default: random, recorded in the project)",
    )
    _add_generation_options(p)
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
        choices=DISTANCES,
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


def _add_animate_parser(commands) -> None:
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
    _add_generation_options(p)
    p.add_argument(
        "--fps",
        type=_positive_float,
        help="frames per second (default: the video input's, else 24)",
    )
    p.add_argument(
        "--duration",
        type=_positive_float,
        help="seconds; the output has exactly round(duration·fps) frames and the "
        "keyframes are scaled to fit (default: end at the last keyframe)",
    )
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
        type=int,
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
    p.add_argument(
        "--colour-match",
        action="store_true",
        help="match every frame's colours to the first frame (LAB histograms)",
    )
    p.add_argument(
        "--coherence-scale",
        type=float,
        default=0.0,
        help="0..1: pull each frame's latents toward a running reference of the "
        "earlier frames' (default: 0, off)",
    )
    p.add_argument(
        "--coherence-alpha",
        type=float,
        default=0.5,
        help="0..1: weight of the new latents in the running reference (default: 0.5)",
    )
    p.add_argument(
        "--coherence-steps",
        type=int,
        default=1000,
        help="apply coherence during the first N steps of each frame (default: all)",
    )
    p.add_argument(
        "--coherence-noise",
        type=float,
        default=0.0,
        help="fresh noise added after each pull (default: 0)",
    )
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
    p.add_argument(
        "--branches",
        type=int,
        help="blend mode: images per transition, keyframes included (default: 12)",
    )
    p.add_argument(
        "--depth-strength",
        type=float,
        default=0.5,
        help="blend mode: as for transition (default: 0.5)",
    )
    _add_model_options(p)
    p.set_defaults(run=_run_animate)


def _add_ui_parser(commands) -> None:
    p = commands.add_parser(
        "ui",
        help="start the web UI",
        description="Start the web UI: explore keyframes, arrange them, render transitions and "
        "animations in the browser.",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model to load at start (default: none; choose it in the page)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument(
        "--share",
        action="store_true",
        help="also publish the UI through a public Gradio share link",
    )
    p.add_argument("--device", default=None, help="as for transition")
    p.add_argument("--dtype", default=None, help="as for transition")
    p.set_defaults(run=_run_ui)


def _run_ui(args: argparse.Namespace):
    from .ui.app import launch

    launch(
        model=args.model,
        host=args.host,
        port=args.port,
        share=args.share,
        device=args.device,
        dtype=args.dtype,
    )


def _add_train_demo_parser(commands) -> None:
    p = commands.add_parser(
        "train-demo",
        help="train the demo model from scratch",
        description="Generate the demo model's dataset and train it end to end (VAE, text "
        "encoders, UNet), deterministic for a seed: about 45 minutes on a 2-core CPU, much "
        "less on a GPU. The bundled model was made this way.",
    )
    p.add_argument("--output", type=Path, required=True, help="model folder to write")
    p.add_argument("--seed", type=int, default=0, help="seed of data and training (default: 0)")
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to train (default: auto: cuda if available, else cpu)",
    )
    p.add_argument(
        "--vae-steps",
        type=int,
        help="VAE training steps (default: as the bundled model, see its card)",
    )
    p.add_argument(
        "--unet-steps",
        type=int,
        help="UNet and text encoder training steps (default: as the bundled model)",
    )
    p.set_defaults(run=_run_train_demo)


def _run_train_demo(args: argparse.Namespace):
    import shlex

    from .demo.train import Settings, train_demo

    steps = {
        n: getattr(args, n) for n in ("vae_steps", "unet_steps") if getattr(args, n) is not None
    }
    for name, value in steps.items():
        if value < 1:
            raise InputError(f"{name}: {value} is not allowed; use 1 or more")
    command = shlex.join(["latentmorph", *args.argv])
    settings = Settings(**steps)
    folder = train_demo(args.output, args.seed, args.device, settings, command)
    print(f"demo model written to {folder} (model card: {folder / 'README.md'})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="latentmorph",
        description="Butter-smooth videos with latent diffusion models.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_transition_parser(commands)
    _add_movie_parser(commands)
    _add_animate_parser(commands)
    _add_ui_parser(commands)
    _add_train_demo_parser(commands)
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
        prompt_weighting=args.prompt_weighting,
        width=args.width,
        height=args.height,
        keyframe_crossfeed=args.keyframe_crossfeed,
        parental_crossfeed=args.parental_crossfeed,
        batched=not args.one_at_a_time,
        max_batch=args.max_batch,
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


def _run_animate(args: argparse.Namespace):
    from .animation.schedules import parse_prompt_schedule
    from .animation.settings import Animation, Coherence
    from .blending.settings import BlendSettings
    from .errors import InputError

    try:
        text = args.prompts.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{args.prompts}: cannot be read ({error})") from None
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
        ),
        device=args.device,
        dtype=args.dtype,
    )
    return _render(animation, args.output, args)


def _run_movie(args: argparse.Namespace):
    from .project_files import load_project

    project = load_project(args.project)
    project.device = args.device or project.device
    project.dtype = args.dtype or project.dtype
    if args.max_batch is not None:
        _override_max_batch(project, args.max_batch)
    return _render(project, args.output or args.project.with_suffix(".mp4"), args)


def _override_max_batch(project, max_batch: int) -> None:
    """Sets the batch cap of a loaded movie project or animation."""
    from .animation.settings import Animation

    if isinstance(project, Animation):
        project.blend = project.blend.replace(max_batch=max_batch)
    else:
        project.settings = project.settings.replace(max_batch=max_batch)


def _render(project, output, args: argparse.Namespace):
    """Renders a movie project or an animation, printing notices and the summary line."""
    from .animation.render import AnimationRenderer
    from .animation.settings import Animation
    from .models.loading import load_pipeline
    from .movie.writers import check_output_path
    from .render import MovieRenderer

    check_output_path(output)
    _hide_loading_bars()
    model = load_pipeline(project.model, project.device, project.dtype, args.allow_pickle)
    if isinstance(project, Animation):
        renderer = AnimationRenderer(project, model, progress=not args.quiet)
        if renderer.onsets is not None:
            times = ", ".join(f"{t:.2f}" for t in renderer.onsets.times)
            frames = ", ".join(str(f) for f in renderer.onsets.frames)
            print(
                f"latentmorph: audio onsets at {times} s; prompt keyframes at frames {frames}",
                file=sys.stderr,
            )
    else:
        renderer = MovieRenderer(project, model, progress=not args.quiet)
    for notice in renderer.notices:
        print(f"latentmorph: note: {notice}", file=sys.stderr)
    summary = renderer.write(output)
    print(summary.line())


def _prefer_passive_threads() -> None:
    """Lets idle OpenMP threads sleep instead of spinning, unless the environment says otherwise:
    without this, torch on a few cores stalls whenever another process competes for them. It
    takes effect only when set before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _quiet_libraries() -> None:
    """Silences the libraries' import-time chatter (optional backends, casting notes)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


class _NoteHandler(logging.Handler):
    """Prints the library's logged warnings as `latentmorph: note: ...` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"latentmorph: note: {record.getMessage()}", file=sys.stderr)


def _show_notes() -> None:
    logger = logging.getLogger("latentmorph")
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        logger.addHandler(_NoteHandler())
        logger.propagate = False


def _hide_loading_bars() -> None:
    """Hides the libraries' bars for loading weights from disk (downloads keep theirs)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input)."""
    from .errors import LatentmorphError

    _prefer_passive_threads()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    _quiet_libraries()
    _show_notes()
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
