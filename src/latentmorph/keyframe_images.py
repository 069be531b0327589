"""Keyframes given as images: read, fitted to the frame, encoded to latents, and measured."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from .blending.inversion import EVALUATIONS
from .blending.settings import BlendSettings
from .blending.tree import Branch
from .image_files import fit_image, psnr, read_image
from .models.adapter import DiffusionAdapter
from .project import Keyframe


class KeyframeImages:
    """The images of the keyframes that have one, by keyframe index, with the SHA-256 of each
    file (`digests`)."""

    def __init__(self, images: dict[int, Image.Image], digests: dict[int, str]) -> None:
        self.images = images
        self.digests = digests
        self.psnr: dict[int, float] = {}

    @classmethod
    def read(cls, keyframes: Sequence[Keyframe]) -> KeyframeImages:
        """The images of the keyframes that have one (errors name `keyframes[i].image`)."""
        images, digests = {}, {}
        for i, kf in enumerate(keyframes):
            if kf.image is not None:
                images[i] = read_image(kf.image, f"keyframes[{i}].image")
                digests[i] = hashlib.sha256(Path(kf.image).read_bytes()).hexdigest()
        return cls(images, digests)

    def sized(self, settings: BlendSettings, model: DiffusionAdapter) -> BlendSettings:
        """`settings`, with no size given, sized to the first image's aspect ratio at the
        model's usual number of pixels."""
        if not self.images or settings.width is not None or settings.height is not None:
            return settings
        width, height = self.images[min(self.images)].size
        scale = math.sqrt(model.defaults.width * model.defaults.height / (width * height))
        return settings.replace(width=round(width * scale), height=round(height * scale))

    def fit(self, width: int, height: int) -> list[str]:
        """Scales and crops every image to `width` x `height`; notices of those changed."""
        notices = []
        for i, image in self.images.items():
            self.images[i], notice = fit_image(image, width, height, f"keyframe {i + 1}'s image")
            notices += [notice] if notice else []
        return notices

    def latents(self, model: DiffusionAdapter) -> dict[int, torch.Tensor]:
        """Clean latents of each image (encoded in one batch)."""
        if not self.images:
            return {}
        indices = sorted(self.images)
        latents = model.encode_images([self.images[i] for i in indices])
        return {i: latents[j : j + 1] for j, i in enumerate(indices)}

    def steps(self, steps: int) -> int:
        """Denoiser image-steps the inversions take in a `steps`-step schedule."""
        return len(self.images) * steps * EVALUATIONS

    def measure(self, keyframes: Sequence[Branch]) -> dict[int, float]:
        """PSNR in dB of each keyframe's image against its (fitted) input image, kept in
        `psnr`."""
        self.psnr = {i: psnr(keyframes[i].image, image) for i, image in self.images.items()}
        return self.psnr
