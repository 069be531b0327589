"""The parser and the options that several commands share."""

from __future__ import annotations

import argparse
import ipaddress
import re
import socket
from collections.abc import Callable

from ..checks import DEVICES_ALLOWED, is_device, show
from ..choices import COMPILE_MODES, DTYPES, FILLERS, VAE_DTYPES
from ..limits import BATCH, SIZE, STEPS, Limit

EXIT_USAGE = 2

Commands = argparse._SubParsersAction
"""The collection of subcommands that each command adds its parser to."""


LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""What str.splitlines() and terminals take for the end of a line."""


def one_line(text: str) -> str:
    """`text` on one line: line breaks inside (a prompt's, a file name's) written as escapes
    such as \\n, so that an error message is always exactly one line."""
    return LINE_BREAKS.sub(lambda match: repr(match[0])[1:-1], text)


class UsageParser(argparse.ArgumentParser):
    """An argument parser that reports errors on one line, as `latentmorph: error: ...`, and
    exits 2."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"latentmorph: error: {one_line(message)}\n")


def limited(limit: Limit) -> Callable[[str], float]:
    """The argparse type of a number within `limit` given on the command line; argparse's
    message names the flag."""

    def parse(text: str) -> float:
        kind = "a whole number" if limit.whole else "a number"
        try:
            # a whole number of more digits than any limit is out of range: int() of thousands
            # of digits is refused
            too_long = limit.whole and len(text.strip().lstrip("+-")) > 30
            value = float("inf") if too_long else int(text) if limit.whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{show(text)} is not {kind}; use {limit.allowed()}"
            ) from None
        if not limit.accepts(value):
            raise argparse.ArgumentTypeError(f"{show(text)} is not allowed; use {limit.allowed()}")
        return value

    return parse


HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
HOSTS_ALLOWED = "use an IP address such as 127.0.0.1 or 0.0.0.0, or a name this machine resolves"


def host_name(text: str) -> str:
    """The argparse type of --host: an IP address, or a host name that resolves."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.removesuffix(".").split(".")
    numeric = re.fullmatch(r"[\d.]+", text)
    if numeric or len(text) > 253 or not all(HOST_LABEL.fullmatch(label) for label in labels):
        raise argparse.ArgumentTypeError(
            f"{show(text)} is not an IP address or host name; {HOSTS_ALLOWED}"
        )
    try:
        socket.getaddrinfo(text, None)
    except (OSError, UnicodeError):
        raise argparse.ArgumentTypeError(
            f"{show(text)} cannot be resolved; {HOSTS_ALLOWED}"
        ) from None
    return text


def device_name(text: str) -> str:
    """The argparse type of --device: auto, cuda, mps or cpu, the last three with an index."""
    if not is_device(text):
        raise argparse.ArgumentTypeError(f"{show(text)} is not allowed; {DEVICES_ALLOWED}")
    return text


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options for where and how the model runs, and the progress bars."""
    parser.add_argument(
        "--device",
        type=device_name,
        default=None,
        help="cuda, mps, cpu or auto (default: auto: cuda, mps, cpu)",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default=None,
        help="float16, bfloat16, float32 or auto (default: auto: float16 on cuda, bfloat16 for "
        "SD3 and FLUX models, else float32)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow loading pickle checkpoints (.ckpt, .bin); they can run code when loaded",
    )
    parser.add_argument(
        "--offload",
        action="store_true",
        help="keep the pipeline's models in CPU memory and move each to the GPU only while it "
        "runs (diffusers' model CPU offload: less GPU memory, slower; cuda only)",
    )
    parser.add_argument(
        "--max-batch",
        type=limited(BATCH),
        metavar="N",
        help="at most N images per UNet batch (default: a whole level of branches, halved "
        "automatically when the device runs out of memory)",
    )
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default=None,
        help="run the UNet from captured CUDA graphs (cuda) or through torch.compile (other "
        "devices), batches padded to a few sizes; auto: on cuda, eager elsewhere and eager with "
        "a note where it fails; on: everywhere (a CPU compile takes minutes), an error where it "
        "fails (default: auto)",
    )
    parser.add_argument(
        "--vae-dtype",
        choices=VAE_DTYPES,
        default=None,
        help="dtype the VAE decodes in; a half-precision batch with NaN or inf is decoded "
        "again in float32 (default: auto: bfloat16 on cuda where supported, else float32 for "
        "VAEs that ask for it, as SDXL's, else the model's dtype)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_fillers_option(parser: argparse.ArgumentParser) -> None:
    """The --fillers option: how filler frames between computed images are made."""
    parser.add_argument(
        "--fillers",
        choices=FILLERS,
        default=None,
        help="filler frames between computed images: flow: both images warped along their "
        "optical flow (OpenCV DIS) toward the frame's time and mixed, so that what moves is "
        "shown on its way; crossfade: the pixels mixed (default: flow)",
    )


def add_mask_option(parser: argparse.ArgumentParser) -> None:
    """The --mask option: a region of the frame kept as the first image."""
    parser.add_argument(
        "--mask",
        metavar="PATH",
        default=None,
        help="mask image (any size, stretched to the frame): black keeps the first image's "
        "pixels in every frame, white may change, grey keeps them partly (default: none)",
    )


def run_settings(args: argparse.Namespace) -> dict[str, str]:
    """`compile`, `vae_dtype`, `fillers` and `mask` as far as the command line gives them
    (blending settings)."""
    given = {"compile": args.compile, "vae_dtype": args.vae_dtype, "fillers": args.fillers}
    given["mask"] = args.mask
    return {name: value for name, value in given.items() if value is not None}


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that generate images."""
    parser.add_argument(
        "--model",
        default="demo",
        help="preset (demo, sdxl-turbo, sd-turbo, sdxl, sd15, sd21, sd35-medium, sd35-large, "
        "sd35-large-turbo, flux-schnell, flux-dev, tiny-sd, tiny-sdxl, tiny-sd3, tiny-flux), hub "
        "id, local diffusers folder or .safetensors file (default: demo)",
    )
    parser.add_argument(
        "--steps", type=limited(STEPS), help="diffusion steps (default: the model's)"
    )
    parser.add_argument("--negative-prompt", default="", help="negative prompt (default: none)")
    parser.add_argument(
        "--prompt-weighting",
        action="store_true",
        help="read Compel weighting syntax in prompts, e.g. 'a (red)1.3 circle', 'a red++ circle'",
    )
    parser.add_argument(
        "--width", type=limited(SIZE), help="width in pixels (default: the model's)"
    )
    parser.add_argument(
        "--height", type=limited(SIZE), help="height in pixels (default: the model's)"
    )
