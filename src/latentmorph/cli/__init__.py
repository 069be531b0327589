"""The command line: `latentmorph transition`, `movie`, `animate`, `ui` and `train-demo`.

Importing it loads none of torch, numpy or the media libraries; each command imports what it
uses when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import LatentmorphError
from . import animate, movie, train_demo, transition, ui
from .arguments import check_arguments, flags_named
from .environment import prepare_process
from .options import EXIT_USAGE, UsageParser, one_line
from .signals import Stopped, stopping_on_signals

COMMANDS = (transition, movie, animate, ui, train_demo)
"""The command modules, in the order the help lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; the parsed arguments' `run` runs the chosen one."""
    parser = UsageParser(
        prog="latentmorph",
        description="Butter-smooth videos with latent diffusion models.",
    )
    parser.add_argument("--version", action="version", version=f"latentmorph {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one command; a project file's fields are not the movie command's flags."""
    if command == "movie":
        return UsageParser(prog="latentmorph movie", add_help=False)
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices[command]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status: 2 for bad input, 130 after Ctrl-C, and
    128 + the signal's number after SIGTERM (143) or SIGHUP (129)."""
    prepare_process()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        with stopping_on_signals(), flags_named(command_parser(parser, args.command)):
            check_arguments(args)
            status = args.run(args) or 0
    except LatentmorphError as error:
        print(f"latentmorph: error: {one_line(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("latentmorph: interrupted; nothing was left under the output name", file=sys.stderr)
        return 130
    except Stopped as stop:
        print(
            f"latentmorph: stopped by {stop.name}; nothing was left under the output name",
            file=sys.stderr,
        )
        return stop.exit_status
    return status
