"""`latentmorph train-demo`: train the demo model from scratch."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..errors import InputError
from .options import Commands


def add_parser(commands: Commands) -> None:
    """Adds the command and its options."""
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
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Trains the model and writes it with its record and model card."""
    from ..demo.train import Settings, train_demo

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
