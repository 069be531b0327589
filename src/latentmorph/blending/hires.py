"""The hi-res stage: a finished transition's images upscaled by img2img with the same model.

Every image is resized by the scale, encoded, noised with one shared noise to the step where
`hires_strength` of the schedule is left, and denoised with its own text conditioning (the lerp
of the keyframes' at its fraction). Neighbours stay coherent the latent-blending way: the tree's
levels run in order, and each branch's high-resolution latents are slerped toward those of its
stage-1 parents (the nearest lower-level branches on each side, slerped at its place between
them) over the first part of the remaining steps, as parental crossfeed does. The keyframes are
pulled toward nothing, so each one upscales to the same image in every tree it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from PIL import Image

from ..interpolation import slerp
from ..models.adapter import Conditioning, DiffusionAdapter
from .crossfeed import Crossfeed
from .engine import BlendingEngine
from .tree import TransitionTree

# over the first half of the remaining steps, 0.3 decaying to 0.15 toward the parents
NEIGHBOUR_CROSSFEED = Crossfeed(power=0.3, range=0.5, decay=0.5)
# VAE encoding and decoding run in tiles above this many pixels (1024²)
TILED_PIXELS = 1024 * 1024


def hires_size(width: int, height: int, scale: float, multiple: int) -> tuple[int, int]:
    """The stage-2 size: scale× the stage-1 size, rounded to the model's multiple."""
    return tuple(max(multiple, round(n * scale / multiple) * multiple) for n in (width, height))


def hires_start(steps: int, strength: float) -> int:
    """The step stage 2 starts at: `strength` of the schedule is left (at least one step)."""
    return min(steps - 1, max(0, round(steps * (1 - strength))))


@contextmanager
def tiled_vae(model: DiffusionAdapter, pixels: int) -> Iterator[None]:
    """The model's VAE encodes and decodes in tiles (diffusers' `enable_tiling`) while inside,
    when images have more than `TILED_PIXELS` pixels and the VAE can."""
    vae = model.pipe.vae
    tile = pixels > TILED_PIXELS and hasattr(vae, "enable_tiling")
    if tile:
        vae.enable_tiling()
    try:
        yield
    finally:
        if tile:
            vae.disable_tiling()


def upscale(
    engine: BlendingEngine,
    tree: TransitionTree,
    cond_first: Conditioning,
    cond_last: Conditioning,
    seed: int,
    crossfeed: Crossfeed = NEIGHBOUR_CROSSFEED,
) -> list[Image.Image]:
    """The tree's images, in order, through the hi-res stage of the engine's settings
    (`hires` scale, `hires_strength`), with one unit noise of `seed` shared by all; batched as
    the engine's batch limit allows."""
    model, s = engine.model, engine.settings
    width, height = hires_size(s.width, s.height, s.hires, model.size_multiple)
    start = hires_start(s.steps, s.hires_strength)
    coefficients = crossfeed.keyframe_coefficients(s.steps - start)
    noise = model.unit_noise([seed], width, height)
    branches = tree.branches
    trajectories: dict[int, list[torch.Tensor]] = {}
    images: dict[int, Image.Image] = {}
    with tiled_vae(model, width * height):
        for level in sorted({b.level for b in branches}):
            rows = [i for i, b in enumerate(branches) if b.level == level]

            def run(batch: range, rows: list[int] = rows, level: int = level) -> None:
                indices = rows[batch.start : batch.stop]
                picked = [branches[i] for i in indices]
                resized = [b.image.resize((width, height), Image.LANCZOS) for b in picked]
                clean = model.encode_images(resized)
                latents = model.noised(clean, noise.expand_as(clean), s.steps, start)
                hook = None
                if crossfeed.active and level > 0:
                    hook = _parents_hook(tree, indices, trajectories, coefficients, start)
                trajectory = engine._denoise(
                    latents,
                    Conditioning.cat([cond_first.lerp(cond_last, b.fraction) for b in picked]),
                    start,
                    [s.guidance_at(b.fraction) for b in picked],
                    hook,
                )
                for j, i in enumerate(indices):
                    trajectories[i] = [x[j : j + 1] for x in trajectory]
                images.update(zip(indices, model.decode(trajectory[-1]), strict=True))

            engine._in_batches(len(rows), run)
    return [images[i] for i in range(len(branches))]


def _parents_hook(
    tree: TransitionTree,
    indices: list[int],
    trajectories: dict[int, list[torch.Tensor]],
    coefficients,
    start: int,
):
    """Before each step, slerp the rows (branches at `indices`) toward the slerp of their
    parents' high-resolution latents at that step."""
    parents = [_parents(tree, i) for i in indices]
    f = tree.fractions
    mix = torch.tensor([(f[i] - f[a]) / (f[b] - f[a]) for i, (a, b) in zip(indices, parents)])

    def hook(step: int, latents: torch.Tensor) -> torch.Tensor:
        c = float(coefficients[step - start])
        if c <= 0:
            return latents
        k = step - start
        first = torch.cat([trajectories[a][k] for a, _ in parents])
        second = torch.cat([trajectories[b][k] for _, b in parents])
        return slerp(latents, slerp(first, second, mix.to(latents.device)), c)

    return hook


def _parents(tree: TransitionTree, index: int) -> tuple[int, int]:
    """Indices of the nearest branches on each side of branch `index` of a lower level."""
    level = tree.branches[index].level
    left = next(i for i in range(index - 1, -1, -1) if tree.branches[i].level < level)
    right = next(i for i in range(index + 1, len(tree)) if tree.branches[i].level < level)
    return left, right
