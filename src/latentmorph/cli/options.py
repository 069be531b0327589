"""The parser and the options that several commands share."""

from __future__ import annotations

import argparse

from ..checks import is_positive

EXIT_USAGE = 2

Commands = argparse._SubParsersAction
"""The collection of subcommands that each command adds its parser to."""


class UsageParser(argparse.ArgumentParser):
    """An argument parser that reports errors on one line and exits 2."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def positive_float(text: str) -> float:
    """A number > 0 given on the command line."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not is_positive(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; use a number > 0")
    return value


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options for where and how the model runs, and the progress bars."""
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


def add_generation_options(parser: argparse.ArgumentParser) -> None:
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
