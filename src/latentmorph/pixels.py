"""Images as 8-bit RGB tensors of shape (N, 3, H, W), the form decoding gives, and as PIL
images, the form writers and the contact sheet take."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


def to_images(pixels: torch.Tensor) -> list[Image.Image]:
    """PIL images of a uint8 (N, 3, H, W) batch, copied off its device in one transfer."""
    arrays = pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return [Image.fromarray(array) for array in arrays]


def to_pixels(images: Sequence[Image.Image], device: str | torch.device = "cpu") -> torch.Tensor:
    """A uint8 (N, 3, H, W) batch on `device` of images of one size."""
    arrays = np.stack([np.asarray(image.convert("RGB")) for image in images])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).to(device)
