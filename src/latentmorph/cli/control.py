"""The ControlNet options of the commands that generate images."""

from __future__ import annotations

import argparse
from typing import Any

from ..choices import CONTROL_PREPROCESSORS
from ..errors import InputError
from ..limits import CONTROL_SCALE
from .options import limited


def add_control_options(parser: argparse.ArgumentParser, images_help: str) -> None:
    """--controlnet with its --control-image, --control-scale and --control-preprocess; given
    several times for several ControlNets (MultiControlNet). `images_help` says what the
    command's --control-image takes."""
    parser.add_argument(
        "--controlnet",
        action="append",
        metavar="ID_OR_PATH",
        help="guide the images with a ControlNet (hub id or local diffusers folder) made for "
        "the model's base (SD 1.x/2.x, SDXL, SD3/SD3.5 or FLUX.1); give it again for several "
        "ControlNets, each with its own --control-image (default: none)",
    )
    parser.add_argument(
        "--control-image",
        action="append",
        nargs="+",
        metavar="IMG",
        help=images_help + "; any size: scaled to cover the frame and cropped around the centre",
    )
    parser.add_argument(
        "--control-scale",
        action="append",
        type=limited(CONTROL_SCALE),
        metavar="SCALE",
        help="0..5: how strongly the ControlNet guides; once for all ControlNets or once per "
        "--controlnet (default: 1)",
    )
    parser.add_argument(
        "--control-preprocess",
        action="append",
        choices=CONTROL_PREPROCESSORS,
        help="none: the control image is given as the ControlNet reads it (a depth map, a pose, "
        "edges); canny: Canny edges of the image (OpenCV); once for all ControlNets or once per "
        "--controlnet (default: none)",
    )


def control_settings(args: argparse.Namespace, keyframes: int | None) -> list[dict[str, Any]]:
    """The `controlnet` setting the command line gives, its images checked (errors name the
    flags): one --control-image per --controlnet, each with one image for all `keyframes` or
    one per keyframe; with `keyframes` None (an animation), one image or video."""
    from ..image_files import read_image
    from ..inputs import check_input_file, is_video

    nets = args.controlnet or []
    images = args.control_image or []
    if not nets:
        for flag, value in _control_flags(args).items():
            if value:
                raise InputError(f"{flag}: given without --controlnet; give the ControlNet too")
        return []
    if len(images) != len(nets):
        raise InputError(
            f"--control-image: {len(images)} given for {len(nets)} --controlnet; give one "
            "--control-image (with its images) per --controlnet"
        )
    for paths in images:
        if keyframes is None and len(paths) != 1:
            raise InputError(
                f"--control-image: {len(paths)} files given; give one control image or video "
                "per --controlnet"
            )
        if keyframes is not None and len(paths) not in (1, keyframes):
            raise InputError(
                f"--control-image: {len(paths)} images given; give one for all keyframes or one "
                f"per keyframe ({keyframes})"
            )
        for path in paths:
            if keyframes is None and is_video(path):
                check_input_file(path, "--control-image", "a control image or video")
            else:
                read_image(path, "--control-image")
    scales = _per_controlnet("--control-scale", args.control_scale, len(nets), 1.0)
    preprocess = _per_controlnet("--control-preprocess", args.control_preprocess, len(nets), "none")
    return [
        {"model": m, "images": list(i), "scale": s, "preprocess": p}
        for m, i, s, p in zip(nets, images, scales, preprocess, strict=True)
    ]


def _control_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "--control-image": args.control_image,
        "--control-scale": args.control_scale,
        "--control-preprocess": args.control_preprocess,
    }


def _per_controlnet(flag: str, values: list | None, count: int, default: Any) -> list:
    """A flag's values for each of `count` ControlNets: given once for all, or once each."""
    if not values:
        return [default] * count
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise InputError(
            f"{flag}: given {len(values)} times for {count} --controlnet; give it once for all "
            "or once per --controlnet"
        )
    return values
