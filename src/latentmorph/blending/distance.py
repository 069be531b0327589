"""Perceptual distances between images, used to place branches and to time filler frames."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..checks import check_choice
from ..choices import DISTANCES
from ..errors import InputError

log = logging.getLogger(__name__)
Distance = Callable[[Sequence[Image.Image], Sequence[Image.Image]], list[float]]

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
"""File name of the AlexNet weights that LPIPS loads through torchvision (its own linear layers
ship inside the `lpips` package)."""


def pixel_distance(a: Sequence[Image.Image], b: Sequence[Image.Image]) -> list[float]:
    """Distance of each pair from colour at coarse scale and edges at fine scale (no weights).

    Colour differences are taken on 16×16 thumbnails, edge differences on 64×64 grey images,
    so it sees both a change of palette and a change of structure.
    """
    return [float(np.abs(_features(x) - _features(y)).mean()) for x, y in zip(a, b, strict=True)]


def _features(image: Image.Image) -> np.ndarray:
    rgb = image.convert("RGB")
    colour = np.asarray(rgb.resize((16, 16), Image.BILINEAR), dtype=np.float32) / 255
    grey = np.asarray(rgb.convert("L").resize((64, 64), Image.BILINEAR), dtype=np.float32) / 255
    edges = np.concatenate([np.diff(grey, axis=0).ravel(), np.diff(grey, axis=1).ravel()])
    return np.concatenate([colour.ravel(), 2 * edges])


def lpips_distance(device: str | torch.device = "cpu") -> Distance:
    """LPIPS (AlexNet) distance computed on `device`; torchvision downloads AlexNet's weights
    into torch hub's cache when they are missing. Raises if the package or the weights are not
    available."""
    import lpips

    model = lpips.LPIPS(net="alex", verbose=False).eval().to(device)

    def measure(a: Sequence[Image.Image], b: Sequence[Image.Image]) -> list[float]:
        def tensor(images: Sequence[Image.Image]) -> torch.Tensor:
            arrays = [np.asarray(i.convert("RGB"), dtype=np.float32) / 127.5 - 1 for i in images]
            return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(device)

        with torch.no_grad():
            return model(tensor(a), tensor(b)).flatten().tolist()

    return measure


def alexnet_weights_path() -> Path:
    """Where torchvision keeps the AlexNet weights LPIPS needs: torch hub's checkpoint cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS


def get_distance(name: str = "auto", device: str | torch.device = "cpu") -> Distance:
    """The distance named `name`: `pixel`, `lpips`, or `auto`.

    `auto` is LPIPS when the package is installed and its weights are already in torch hub's
    cache, else pixel (with a note saying how to get the weights when the package is
    installed): it never downloads. `lpips` downloads missing weights (about 230 MB, with a
    progress bar). LPIPS runs on `device`.
    """
    check_choice("distance", name, DISTANCES)
    if name == "pixel":
        return pixel_distance
    try:
        import lpips  # noqa: F401
    except ImportError:
        if name == "lpips":
            raise InputError("distance: lpips is not installed; pip install lpips") from None
        log.info(
            "lpips is not installed; using the pixel distance (for LPIPS: pip install lpips, "
            "then run once with --distance lpips to download its weights)"
        )
        return pixel_distance
    weights = alexnet_weights_path()
    if not weights.is_file():
        if name == "auto":
            log.warning(
                "LPIPS's weights are not downloaded (%s); using the pixel distance (for LPIPS: "
                "run once with --distance lpips to download them, about 230 MB)",
                weights,
            )
            return pixel_distance
        log.warning("downloading LPIPS's AlexNet weights (about 230 MB) to %s", weights.parent)
    try:
        return lpips_distance(device)
    except Exception as error:  # weights unreadable or not downloadable
        if name == "lpips":
            raise InputError(f"distance: lpips could not load its weights ({error})") from None
        log.warning("lpips could not load (%s); using the pixel distance", error)
    return pixel_distance
