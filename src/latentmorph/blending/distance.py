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

    Colour: the mean CIELAB ΔE (1976) between 16×16 thumbnails; structure: the mean difference
    of the lightness edges of 64×64 versions (in L* units). So it sees both a change of palette
    and a change of structure, in units close to perceived difference.
    """
    return [_compare(_features(x), _features(y)) for x, y in zip(a, b, strict=True)]


def _features(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    rgb = image.convert("RGB")
    colour = cielab(np.asarray(rgb.resize((16, 16), Image.BILINEAR)))
    lightness = cielab(np.asarray(rgb.resize((64, 64), Image.BILINEAR)))[..., 0]
    edges = np.concatenate([np.diff(lightness, axis=0).ravel(), np.diff(lightness, axis=1).ravel()])
    return colour, edges


def _compare(x: tuple[np.ndarray, np.ndarray], y: tuple[np.ndarray, np.ndarray]) -> float:
    colour = np.linalg.norm(x[0] - y[0], axis=-1).mean()
    return float(colour + np.abs(x[1] - y[1]).mean())


def cielab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white) of 8-bit sRGB pixels: L* in 0..100, a* and b* about -128..127."""
    c = rgb.astype(np.float32) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65_WHITE
    delta = 6 / 29
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


_SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]],
    dtype=np.float32,
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


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
