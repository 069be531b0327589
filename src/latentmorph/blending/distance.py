"""Perceptual distances between images, used to place branches and to time filler frames."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checks import check_choice
from ..choices import DISTANCES
from ..errors import InputError

log = logging.getLogger(__name__)
Distance = Callable[[torch.Tensor, torch.Tensor], list[float]]
"""The distance of each pair of images in two batches of 8-bit RGB images (N, 3, H, W) on one
device (see `latentmorph.pixels`)."""

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
"""File name of the AlexNet weights that LPIPS loads through torchvision (its own linear layers
ship inside the `lpips` package)."""
LPIPS_BATCH = 16
"""Pairs of images LPIPS compares at once."""


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Distance of each pair from colour at coarse scale and edges at fine scale (no weights).

    Colour: the mean CIELAB ΔE (1976) between 16×16 thumbnails; structure: the mean difference
    of the lightness edges of 64×64 versions (in L* units). So it sees both a change of palette
    and a change of structure, in units close to perceived difference. Computed in batches on
    the images' device.
    """
    rows = a.shape[0]
    colour, edges = _features(torch.cat([a, b]))
    colour = torch.linalg.vector_norm(colour[:rows] - colour[rows:], dim=-1).mean(dim=1)
    return (colour + (edges[:rows] - edges[rows:]).abs().mean(dim=1)).tolist()


def _features(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CIELAB of 16×16 thumbnails (N, 256, 3) and the L* edges of 64×64 ones (N, 2·64·63),
    converted in one pass."""
    rgb = pixels.float()
    thumbnails = torch.cat([_thumbnail(rgb, size).flatten(2) for size in (16, 64)], dim=2)
    # thumbnails hold whole 8-bit values: their linear light is looked up
    linear = _LINEAR.to(rgb.device)[thumbnails.transpose(1, 2).long()]
    lab = _lab_of_linear(linear)
    lightness = lab[:, 256:, 0].reshape(-1, 64, 64)
    edges = (lightness.diff(dim=1).flatten(1), lightness.diff(dim=2).flatten(1))
    return lab[:, :256], torch.cat(edges, dim=1)


def _thumbnail(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """A size×size version of 8-bit values (N, 3, H, W) as PIL's bilinear resize makes it:
    antialiased, the width first, each pass rounded to 8 bits."""
    for shape in ((rgb.shape[-2], size), (size, size)):
        if tuple(rgb.shape[-2:]) != shape:
            resized = F.interpolate(rgb, size=shape, mode="bilinear", antialias=True)
            rgb = resized.round().clamp(0, 255)
    return rgb


def cielab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65 white) of 8-bit sRGB values (channels last): L* in 0..100, a* and b* about
    -128..127, in float32."""
    return _lab_of_linear(_linear_light(rgb.float()))


def _linear_light(rgb: torch.Tensor) -> torch.Tensor:
    """Linear light (0..1) of 8-bit sRGB values."""
    c = rgb / 255
    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab_of_linear(linear: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65 white) of linear-light sRGB (channels last)."""
    xyz = linear @ _SRGB_TO_XYZ.T.to(linear.device) / _D65_WHITE.to(linear.device)
    delta = 6 / 29
    f = torch.where(
        xyz > delta**3, xyz.clamp(min=delta**3) ** (1 / 3), xyz / (3 * delta**2) + 4 / 29
    )
    return torch.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        dim=-1,
    )


_SRGB_TO_XYZ = torch.tensor(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
)
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_LINEAR = _linear_light(torch.arange(256, dtype=torch.float32))


def lpips_distance(device: str | torch.device = "cpu") -> Distance:
    """LPIPS (AlexNet) distance computed on `device` in batches of `LPIPS_BATCH` pairs;
    torchvision downloads AlexNet's weights into torch hub's cache when they are missing.
    Raises if the package or the weights are not available."""
    import lpips

    model = lpips.LPIPS(net="alex", verbose=False).eval().to(device)

    def scaled(pixels: torch.Tensor) -> torch.Tensor:
        return pixels.to(device).float() / 127.5 - 1

    def measure(a: torch.Tensor, b: torch.Tensor) -> list[float]:
        with torch.no_grad():
            return [
                d
                for x, y in zip(a.split(LPIPS_BATCH), b.split(LPIPS_BATCH), strict=True)
                for d in model(scaled(x), scaled(y)).flatten().tolist()
            ]

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
