"""A region of the frame kept still: the part a mask marks keeps keyframe 1's (or an animation's
first frame's) latents at every denoising step and its pixels after decoding.

The mask is an image of any size, stretched to the frame: white may change, black is kept,
grey is kept partly. At latent size it is the area average of the pixel mask. After decoding,
frames are mixed with the first image by the mask feathered into the changing side only, so
that pixels under pure black are exactly the first image's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..image_files import read_image
from ..models.adapter import DiffusionAdapter, StepHook
from .settings import BlendSettings


class KeptRegion:
    """How much of each pixel (and latent) stays the first image's: 1 under black, 0 under
    white, between under grey. `feather` is the width in pixels of the soft edge laid over the
    changing side."""

    def __init__(self, mask: Image.Image, width: int, height: int, feather: int) -> None:
        mask = mask.convert("L")
        if mask.size != (width, height):
            mask = mask.resize((width, height), Image.Resampling.BILINEAR)
        self.keep = 1.0 - np.asarray(mask, dtype=np.float32) / 255.0
        self.alpha = _feathered(self.keep, feather)[..., None]
        self.digest = hashlib.sha256(np.asarray(mask).tobytes()).hexdigest()[:16]
        self._latent_masks: dict[tuple, torch.Tensor] = {}

    @classmethod
    def read(cls, path: str | Path, width: int, height: int, feather: int) -> KeptRegion:
        """The kept region of the mask image in `path`; InputError naming `mask` for a file
        that is missing or not a readable image."""
        return cls(read_image(path, "mask", mode="L"), width, height, feather)

    def latent_mask(self, latents: torch.Tensor) -> torch.Tensor:
        """The kept share of each latent position (1, 1, h, w), for latents of this shape."""
        key = (tuple(latents.shape[-2:]), latents.device, latents.dtype)
        if key not in self._latent_masks:
            keep = torch.from_numpy(self.keep)[None, None]
            mask = F.adaptive_avg_pool2d(keep, latents.shape[-2:])
            self._latent_masks[key] = mask.to(latents.device, latents.dtype)
        return self._latent_masks[key]

    def hold(self, latents: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """`latents` with the kept region taken from `first` (one row, or one per row)."""
        return latents + self.latent_mask(latents) * (first - latents)

    def hook(self, inner: StepHook | None, first: Sequence[torch.Tensor] | None = None) -> StepHook:
        """A step hook that runs `inner` and then holds the kept region to `first[step]`, the
        first image's latents that entered each step (None: row 0 of the batch is the first
        image, which stays as it is)."""

        def held(step: int, latents: torch.Tensor) -> torch.Tensor:
            if inner is not None:
                latents = inner(step, latents)
            return self.hold(latents, latents[:1] if first is None else first[step])

        return held

    def composite(self, image: Image.Image, first: Image.Image) -> Image.Image:
        """`image` with the kept region (feathered) from `first`."""
        if image is first:
            return image
        a = np.asarray(image.convert("RGB"), dtype=np.float32)
        b = np.asarray(first.convert("RGB"), dtype=np.float32)
        mixed = a + self.alpha * (b - a)
        return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))


def kept_region(settings: BlendSettings, model: DiffusionAdapter) -> KeptRegion | None:
    """The kept region of resolved settings (None without a mask), feathered over half a latent
    cell's width."""
    if settings.mask is None:
        return None
    return KeptRegion.read(
        settings.mask, settings.width, settings.height, max(1, model.size_multiple // 2)
    )


def _feathered(keep: np.ndarray, width: int) -> np.ndarray:
    """`keep` with a soft edge `width` pixels wide spread over its changing side, never below
    `keep` itself."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    spread = cv2.GaussianBlur(cv2.dilate(keep, kernel), (0, 0), sigmaX=width / 2)
    return np.maximum(keep, spread)
