"""Rendering a movie or an animation for a command: notes and onsets on stderr, then the
summary line."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..animation.render import AnimationRenderer
    from ..animation.settings import Animation
    from ..models.adapter import DiffusionAdapter
    from ..project import Project
    from ..render import MovieRenderer


SHEET_HELP = (
    "also write a PNG contact sheet: every computed image with the distance of each gap, "
    "and the tree"
)


def add_sheet_option(parser: argparse.ArgumentParser) -> None:
    """The --sheet option of the commands that render movies of keyframes."""
    parser.add_argument("--sheet", metavar="PATH", help=SHEET_HELP)


def render_movie(
    project: Project,
    output: str | Path,
    args: argparse.Namespace,
    parts: bool = False,
    ray: bool | str = False,
) -> None:
    """Renders a movie through a project's keyframes, and its contact sheet with --sheet; with
    `parts`, keeping finished segments in OUTPUT.parts/ (and honouring --fresh, --keep-parts);
    with `ray` (an address, or True for a local cluster), growing the segments on Ray."""
    from ..movie.parts import PartsFolder, parts_folder
    from ..movie.writers import check_output_path
    from ..render import MovieRenderer

    _check_outputs(project, output)
    if args.sheet is not None:
        from ..blending.sheet import check_sheet_path

        check_sheet_path(args.sheet)
    project.check_quality("--quality" if args.command == "transition" else "quality")
    model = _load_model(project, args)
    renderer = MovieRenderer(project, model, progress=not args.quiet)
    if not parts:
        _write(renderer, output, sheet=args.sheet)
        return
    folder = PartsFolder(parts_folder(check_output_path(output)), fresh=args.fresh)
    with ExitStack() as stack:
        if ray is not False:
            from ..movie.distributed import WorkerModel, on_ray

            model_of_workers = WorkerModel.of(renderer, args.allow_pickle, args.offload)
            stack.enter_context(on_ray(renderer, ray, model_of_workers))
        _write(renderer, output, sheet=args.sheet, parts=folder, keep_parts=args.keep_parts)


def render_animation(animation: Animation, output: str | Path, args: argparse.Namespace) -> None:
    """Renders an animation, printing the audio onsets it places keyframes on."""
    from ..animation.render import AnimationRenderer

    _check_outputs(animation, output)
    animation.check_media()
    model = _load_model(animation, args)
    renderer = AnimationRenderer(animation, model, progress=not args.quiet)
    if renderer.onsets is not None:
        times = ", ".join(f"{t:.2f}" for t in renderer.onsets.times)
        frames = ", ".join(str(f) for f in renderer.onsets.frames)
        print(
            f"latentmorph: audio onsets at {times} s; prompt keyframes at frames {frames}",
            file=sys.stderr,
        )
    _write(renderer, output)


def _check_outputs(project: Project | Animation, output: str | Path) -> None:
    """Checks the output path and the project file's beside it, before any work."""
    from ..movie.writers import check_output_path
    from ..project import check_project_path

    check_output_path(output, project.fps, project.inputs())
    check_project_path(output, project.inputs())


def _load_model(project: Project | Animation, args: argparse.Namespace) -> DiffusionAdapter:
    """Loads the project's model."""
    from ..models.loading import load_pipeline

    _hide_loading_bars()
    return load_pipeline(
        project.model, project.device, project.dtype, args.allow_pickle, offload=args.offload
    )


def _write(renderer: MovieRenderer | AnimationRenderer, output: str | Path, **options) -> None:
    for notice in renderer.notices:
        print(f"latentmorph: note: {notice}", file=sys.stderr)
    summary = renderer.write(output, **options)
    print(summary.line())


def _hide_loading_bars() -> None:
    """Hides the libraries' bars for loading weights from disk (downloads keep theirs)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
