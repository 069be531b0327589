"""2D camera motion between animation frames, and colour coherence across frames.

Coordinates follow OpenCV: x grows to the right, y grows downwards, and the centre of pixel
(col, row) sits at (col, row). The image centre is therefore ((width - 1) / 2, (height - 1) / 2).

A `Motion` moves the content of a frame; a point p of the input lands at

    p' = centre + zoom * R(angle) @ (p - centre) + (translation_x, translation_y)

where R(angle) turns counter-clockwise as seen on screen: zoom > 1 zooms in (content grows),
a positive angle turns the content counter-clockwise, +translation_x moves it right and
+translation_y moves it down, all per frame and in pixels of the output frame.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np
from PIL import Image

from latentmorph.checks import check_choice, is_number
from latentmorph.choices import BORDER_MODES
from latentmorph.errors import InputError

# How `warp` fills the area the moved content no longer covers (BORDER_MODES):
# replicate: repeat the nearest edge pixel; reflect: mirror the content about the edge pixel
# (the edge itself is not repeated); zero: black, and fully transparent where there is alpha.
_CV2_BORDERS = {
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "zero": cv2.BORDER_CONSTANT,
}
_WARP_MODES = ("L", "LA", "RGB", "RGBA", "F")


@dataclass(frozen=True)
class Motion:
    """One frame's 2D camera move about the image centre (see the module docstring).

    zoom: scale factor per frame, > 1 zooms in; angle: degrees per frame, counter-clockwise;
    translation_x / translation_y: pixels per frame, + moves the content right / down.
    """

    zoom: float = 1.0
    angle: float = 0.0
    translation_x: float = 0.0
    translation_y: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not is_number(value):
                allowed = "use a finite number"
                raise InputError(f"motion {field.name} {value!r} is not allowed: {allowed}")
        if self.zoom <= 0:
            raise InputError(f"motion zoom {self.zoom!r} is not allowed: use a number above 0")

    @property
    def is_identity(self) -> bool:
        """Whether the move leaves every pixel where it is."""
        return self == Motion()


def affine_matrix(motion: Motion, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 float64 matrix mapping input to output pixel coordinates for an image of
    `size` (width, height), as used by `warp`."""
    width, height = size
    centre = ((width - 1) / 2, (height - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, motion.angle, motion.zoom)
    matrix[:, 2] += (motion.translation_x, motion.translation_y)
    return matrix


def warp(image: Image.Image, motion: Motion, border: str = "replicate") -> Image.Image:
    """`image` moved by `motion` (bilinear), same size and mode, the uncovered area filled
    as `border` says (one of BORDER_MODES)."""
    check_choice("border", border, BORDER_MODES)
    if image.mode not in _WARP_MODES:
        raise InputError(
            f"image mode {image.mode!r} cannot be warped: use one of {', '.join(_WARP_MODES)}"
        )
    if motion.is_identity:
        return image.copy()
    warped = cv2.warpAffine(
        np.asarray(image),
        affine_matrix(motion, image.size),
        image.size,
        flags=cv2.INTER_LINEAR,
        borderMode=_CV2_BORDERS[border],
        borderValue=0,
    )
    return Image.fromarray(warped)


def match_colours(image: Image.Image, reference: Image.Image) -> Image.Image:
    """`image` with the distribution of each LAB channel matched to that of `reference`.

    Keeps the size and mode of `image` (alpha is kept as it is); the two sizes may differ.
    """
    lab = _to_lab(image)
    reference_lab = _to_lab(reference)
    matched = np.stack(
        [_match_histogram(lab[..., c], reference_lab[..., c]) for c in range(3)], axis=-1
    )
    rgb = cv2.cvtColor(matched.astype(np.float32), cv2.COLOR_LAB2RGB)
    result = Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    if image.mode == "RGBA":
        result.putalpha(image.getchannel("A"))
        return result
    return result if image.mode == "RGB" else result.convert(image.mode)


def _to_lab(image: Image.Image) -> np.ndarray:
    """Float LAB (L in 0..100) of the image's RGB colours."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def _match_histogram(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`source` with each value replaced by the reference value at the same quantile."""
    _, inverse, counts = np.unique(source, return_inverse=True, return_counts=True)
    reference_values, reference_counts = np.unique(reference, return_counts=True)
    mapped = np.interp(_quantiles(counts), _quantiles(reference_counts), reference_values)
    return mapped[inverse.reshape(source.shape)]


def _quantiles(counts: np.ndarray) -> np.ndarray:
    """Mid-rank quantile of each distinct value, given how often each occurs (sorted)."""
    return (np.cumsum(counts) - counts / 2) / counts.sum()
