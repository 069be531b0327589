"""`latentmorph movie`: render a project file again, a movie of keyframes or an animation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError, LatentmorphError
from .options import (
    Commands,
    add_fillers_option,
    add_mask_option,
    add_model_options,
    one_line,
    run_settings,
)
from .rendering import add_sheet_option


def add_parser(commands: Commands) -> None:
    """Adds the command and its options."""
    p = commands.add_parser(
        "movie",
        help="render a movie through all keyframes of a project file",
        description="Render a movie through the keyframes of a project file (YAML). Every "
        "output's project file can be rendered again this way to reproduce it. Several project "
        "files are rendered in a row; one that fails is reported and the next one goes on.",
    )
    p.add_argument("project", type=Path, nargs="+", help="project file(s) (.yaml)")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="output: .mp4, .webm, .gif or a PNG folder (default: the project "
        "file's name with .mp4); only with one project file",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="compute every segment again, ignoring the finished ones kept in OUTPUT.parts/",
    )
    p.add_argument(
        "--keep-parts",
        action="store_true",
        help="keep OUTPUT.parts/ (each finished segment's images) after a complete render",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=False,
        metavar="ADDRESS",
        help="grow the segments on a Ray cluster, one worker per GPU: the cluster at ADDRESS "
        "(ray://HOST:10001, HOST:6379, auto), else a local one (needs latentmorph[ray])",
    )
    add_sheet_option(p)
    add_fillers_option(p)
    add_mask_option(p)
    add_model_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Renders each project file in turn; one that fails prints its one line (naming the file)
    and the next goes on. Returns 2 when any failed, else 0."""
    if args.ray is not False:
        from ..movie.distributed import import_ray

        import_ray()
    if len(args.project) == 1:
        render(args, args.project[0])
        return 0
    if args.output is not None:
        raise InputError(
            f"--output: not allowed with {len(args.project)} project files; each output is "
            "named after its project file"
        )
    failed = 0
    for path in args.project:
        try:
            render(args, path)
        except LatentmorphError as error:
            failed += 1
            message = str(error)
            if not message.startswith(str(path)):
                message = f"{path}: {message}"
            print(f"latentmorph: error: {one_line(message)}", file=sys.stderr)
    return 2 if failed else 0


def render(args: argparse.Namespace, path: Path) -> None:
    """Renders one project file with the renderer of its kind; the options override its own."""
    from ..project import Project
    from ..project_files import load_project
    from .rendering import render_animation, render_movie

    project = load_project(path)
    project.device = args.device or project.device
    project.dtype = args.dtype or project.dtype
    output = args.output or path.with_suffix(".mp4")
    overrides = run_settings(args)
    if args.max_batch is not None:
        overrides["max_batch"] = args.max_batch
    if isinstance(project, Project):
        project.settings = project.settings.replace(**overrides)
        render_movie(project, output, args, parts=True, ray=args.ray)
    else:
        if args.sheet is not None:
            raise InputError(
                f"sheet: {args.sheet!r} is not allowed for an animation; only a movie of "
                "keyframes has a contact sheet"
            )
        if args.ray is not False:
            raise InputError(
                "--ray: not allowed for an animation; only a movie of keyframes is grown on Ray"
            )
        project.blend = project.blend.replace(**overrides)
        render_animation(project, output, args)
