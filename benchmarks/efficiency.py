"""How far a transition run is from the compute bound: its FLOPs (counted with torch's
FlopCounterMode: one UNet call per batch size, one VAE decode) against the device's dense peak."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.utils.flop_counter import FlopCounterMode

DENSE_PEAKS = (
    (r"H100.*PCIe", 756.0),
    (r"H100", 989.0),
    (r"H200", 989.0),
    (r"A100", 312.0),
    (r"\bL4\b", 121.0),
    (r"RTX 4090", 165.0),
)
"""Dense (no sparsity) fp16/bf16 tensor-core TFLOP/s of known GPUs, by a pattern of their
`torch.cuda.get_device_name()`; the first match counts."""


def dense_peak(device: torch.device) -> float | None:
    """The device's dense fp16/bf16 peak in TFLOP/s; None off cuda or for a GPU not listed."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for pattern, peak in DENSE_PEAKS if re.search(pattern, name)), None)


@contextmanager
def unet_calls(model) -> Iterator[Counter]:
    """Counts the UNet calls made through `model.denoise` meanwhile, by (images in the batch,
    guided): guided batches (a guidance scale above 1) run twice the rows."""
    calls: Counter = Counter()
    denoise = model.denoise

    def counting(latents, cond, steps, start=0, stop=None, guidance_scale=0.0, *args, **kwargs):
        guided = bool((torch.as_tensor(guidance_scale) > 1).any())
        calls[latents.shape[0], guided] += (steps if stop is None else stop) - start
        return denoise(latents, cond, steps, start, stop, guidance_scale, *args, **kwargs)

    model.denoise = counting
    try:
        yield calls
    finally:
        del model.denoise


def counted_flops(fn: Callable, *args) -> int:
    """FLOPs of what `fn(*args)` computes (matrix products, convolutions, attention)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops()


def transition_flops(model, settings, run: Callable[[], object]) -> int:
    """FLOPs of the UNet calls and decodes of a transition with resolved `settings`: `run`
    computes it eager, recording its batches, and returns the engine's stats; then one UNet
    call is counted per batch size and one decode per image."""
    with unet_calls(model) as calls:
        stats = run()
    model.configure("off", settings.vae_dtype)
    cond = model.encode(["a"])
    steps, size = settings.steps, (settings.width, settings.height)
    flops = 0
    for (images, guided), count in calls.items():
        latents = model.noise([0] * images, *size, steps)
        batch = cond.cat([cond] * images)
        guidance = 2.0 if guided else 0.0
        flops += count * counted_flops(model.denoise, latents, batch, steps, 0, 1, guidance)
    one = model.noise([0], *size, steps)
    return flops + stats.images * counted_flops(model.decode_pixels, one)
