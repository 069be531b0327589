"""`latentmorph ui`: start the web UI."""

from __future__ import annotations

import argparse

from ..choices import DTYPES
from ..limits import PORT
from .options import Commands, device_name, host_name, limited


def add_parser(commands: Commands) -> None:
    """Adds the command and its options."""
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
        type=host_name,
        default="127.0.0.1",
        help="interface to bind (default: 127.0.0.1, this machine only)",
    )
    p.add_argument(
        "--port", type=limited(PORT), default=7860, help="port, 1 to 65535 (default: 7860)"
    )
    p.add_argument(
        "--share",
        action="store_true",
        help="also publish the UI through a public Gradio share link",
    )
    p.add_argument("--device", type=device_name, default=None, help="as for transition")
    p.add_argument("--dtype", choices=DTYPES, default=None, help="as for transition")
    p.add_argument("--offload", action="store_true", help="as for transition")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Serves the web UI until it is stopped."""
    from ..ui.app import launch

    launch(
        model=args.model,
        host=args.host,
        port=args.port,
        share=args.share,
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
    )
