"""`latentmorph movie`: render a project file again, a movie of keyframes or an animation."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from .options import Commands, add_fillers_option, add_model_options, run_settings
from .rendering import add_sheet_option


def add_parser(commands: Commands) -> None:
    """Adds the command and its options."""
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
    add_sheet_option(p)
    add_fillers_option(p)
    add_model_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Renders the project file with the renderer of its kind; the options override its own."""
    from ..project import Project
    from ..project_files import load_project
    from .rendering import render_animation, render_movie

    project = load_project(args.project)
    project.device = args.device or project.device
    project.dtype = args.dtype or project.dtype
    output = args.output or args.project.with_suffix(".mp4")
    overrides = run_settings(args)
    if args.max_batch is not None:
        overrides["max_batch"] = args.max_batch
    if isinstance(project, Project):
        project.settings = project.settings.replace(**overrides)
        render_movie(project, output, args)
    else:
        if args.sheet is not None:
            raise InputError(
                f"sheet: {args.sheet!r} is not allowed for an animation; only a movie of "
                "keyframes has a contact sheet"
            )
        project.blend = project.blend.replace(**overrides)
        render_animation(project, output, args)
