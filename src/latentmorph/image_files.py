"""Reading the user's image files (keyframe photos, masks, control images) within limits."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .inputs import check_input_file

MIN_IMAGE_SIDE = 8
"""Pixels of the shorter side of an input image."""
MAX_IMAGE_PIXELS = 100_000_000
"""Pixels of an input image (a 10000x10000 photo); larger headers are refused unread."""


def check_image(path: str | Path, field: str) -> Path:
    """`path` when it holds an image of allowed size, read from its header only; InputError
    naming `field` and the file for a missing file, a folder, a file that is not an image, or
    one smaller than MIN_IMAGE_SIDE or larger than MAX_IMAGE_PIXELS."""
    with _opened(path, field) as image:
        return Path(image.filename)


def read_image(path: str | Path, field: str, mode: str = "RGB") -> Image.Image:
    """The image in `path` in `mode` (RGB or L), turned as its EXIF orientation says; errors as
    `check_image`, and for pixels that cannot be decoded.

    CMYK, palette, 16-bit and alpha images are converted (16-bit values scaled to 8 bits,
    transparent pixels put on white).
    """
    with _opened(path, field) as image:
        try:
            image.load()
            return _converted(ImageOps.exif_transpose(image), mode)
        except (OSError, ValueError, SyntaxError) as error:
            raise InputError(f"{field}: {image.filename} cannot be decoded ({error})") from None


def _opened(path: str | Path, field: str) -> Image.Image:
    """The image file opened (its header read), its size checked."""
    path = check_input_file(path, field, "an image file (PNG, JPEG, WebP, ...)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(
            f"{field}: {path} is not an image that can be read; give a PNG, JPEG or WebP file"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(
            f"{field}: {path} is larger than allowed: at most {MAX_IMAGE_PIXELS:,} pixels"
        ) from None
    except OSError as error:
        raise InputError(f"{field}: {path} cannot be read ({error.strerror or error})") from None
    width, height = image.size
    problem = None
    if width * height > MAX_IMAGE_PIXELS:
        problem = f"at most {MAX_IMAGE_PIXELS:,} pixels"
    elif min(width, height) < MIN_IMAGE_SIDE:
        problem = f"at least {MIN_IMAGE_SIDE} pixels on each side"
    if problem is not None:
        image.close()
        raise InputError(f"{field}: {path} is {width}x{height} pixels; allowed: {problem}")
    return image


def _converted(image: Image.Image, mode: str) -> Image.Image:
    """`image` in `mode`, 16-bit and 32-bit grey scaled to 8 bits (PIL's own conversion clips)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        image = Image.fromarray(np.clip(values / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert(mode)


def fit_image(
    image: Image.Image, width: int, height: int, what: str
) -> tuple[Image.Image, str | None]:
    """`image` scaled to cover `width` x `height` and cropped to it around its centre, and a
    notice naming it as `what` when its size changed (None when not)."""
    if image.size == (width, height):
        return image, None
    notice = f"{what} {image.width}x{image.height} scaled and cropped to {width}x{height}"
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS), notice


def psnr(image: Image.Image, reference: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB of an RGB image against a reference of its size
    (infinite for equal images)."""
    a = np.asarray(image.convert("RGB"), dtype=np.float64)
    b = np.asarray(reference.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255**2 / mse))
