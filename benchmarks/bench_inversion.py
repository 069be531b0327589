"""Image keyframes: how closely each way of giving an image a trajectory reproduces it, and how
even transitions between image keyframes are.

Usage: python benchmarks/bench_inversion.py [--device cpu] [--photo PATH]

On the bundled demo model, for the 8 prompt pairs of bench_quality.py:
- reconstruction (PSNR in dB against the input image) of the keyframe images the model made
  from those prompts, and of a photo (`--photo`, fitted to 64x64; default: a photo-like image
  drawn in code): the VAE round trip alone; each image denoised again from step k of its
  trajectory, for the trajectory found by inversion (`blending.inversion`, 2 and 4 evaluations a
  step) and for the image noised to step k with a seed other than the one that made it
  (img2img at strength 1 - k/steps);
- evenness, jump and credibility (bench_quality's metrics) of the 8 transitions with the model's
  keyframe images given as image keyframes, against the same transitions from prompts.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import numpy as np
from diffusers.utils import logging as diffusers_logging
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from bench_quality import PAIRS, measure, summary_row  # noqa: E402

from latentmorph.blending.engine import BlendingEngine  # noqa: E402
from latentmorph.blending.inversion import invert  # noqa: E402
from latentmorph.blending.settings import BlendSettings  # noqa: E402
from latentmorph.image_files import fit_image, psnr, read_image  # noqa: E402
from latentmorph.models.loading import load_pipeline  # noqa: E402

STARTS = (0, 5, 10, 15)
OTHER_SEED = 1000
"""Added to a keyframe's seed for the noise of the noising way (an image comes with no seed)."""


def drawn_photo(size: int = 64) -> Image.Image:
    """A photo-like image: smooth light, an object with soft edges, grain."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    sky = np.stack([0.4 + 0.5 * y, 0.6 + 0.3 * y, 0.9 - 0.2 * x], axis=-1)
    blob = np.exp(-(((x - 0.55) ** 2 + (y - 0.45) ** 2) / 0.02))[..., None]
    image = sky * (1 - blob) + np.array([0.8, 0.5, 0.2]) * blob + rng.normal(0, 0.03, sky.shape)
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))


def reconstructions(model, settings: BlendSettings, image: Image.Image, prompt: str, seed: int):
    """{way: [PSNR from each of STARTS]} and the VAE round trip's PSNR."""
    s = settings
    cond = model.encode([prompt])
    clean = model.encode_images([image])

    def again(latents, start: int) -> float:
        final = model.denoise(latents, cond, s.steps, start, guidance_scale=s.guidance_scale)[-1]
        return psnr(model.decode(final)[0], image)

    def step(latents, i):
        return model.denoise(latents, cond, s.steps, i, i + 1, s.guidance_scale)[-1]

    ways = {}
    for evaluations in (2, 4):
        trajectory = invert(clean, s.steps, step, evaluations)
        ways[f"inversion, {evaluations} evaluations"] = [again(trajectory[k], k) for k in STARTS]
    noise = model.unit_noise([seed + OTHER_SEED], s.width, s.height)
    ways["noised"] = [again(model.noised(clean, noise, s.steps, k), k) for k in STARTS]
    return ways, psnr(model.decode(clean)[0], image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--photo", type=Path, default=None, help="a photo to reconstruct")
    parser.add_argument("--branches", type=int, default=16)
    args = parser.parse_args()
    diffusers_logging.set_verbosity_error()
    model = load_pipeline("demo", args.device)
    settings, _ = BlendSettings(branches=args.branches).resolve(model)
    s = settings
    print(
        f"demo model, {s.steps} steps, {s.width}x{s.height}, {s.branches} branches, {args.device}"
    )
    print(f"date: {datetime.date.today()}\n")

    keyframe_images = []
    for first, last, seeds in PAIRS:
        engine = BlendingEngine(model, settings)
        conds = engine.encode([first, last])
        keyframes = engine.keyframes(conds, list(seeds))
        keyframe_images.append([k.image for k in keyframes])

    photo = drawn_photo(s.width)
    if args.photo is not None:
        photo = fit_image(read_image(args.photo, "--photo"), s.width, s.height, "--photo")[0]
    print("| image | way | " + " | ".join(f"from step {k}" for k in STARTS) + " |")
    print("|---|---|" + "---|" * len(STARTS))
    rows: dict[str, list[list[float]]] = {}
    round_trips = []
    for (first, _, seeds), images in zip(PAIRS, keyframe_images, strict=True):
        ways, round_trip = reconstructions(model, settings, images[0], first, seeds[0])
        round_trips.append(round_trip)
        for way, figures in ways.items():
            rows.setdefault(way, []).append(figures)
    blank = " |" * (len(STARTS) - 1)
    print(f"| 8 generated | VAE round trip | {statistics.mean(round_trips):.1f} |{blank}")
    for way, figures in rows.items():
        means = [statistics.mean(f[i] for f in figures) for i in range(len(STARTS))]
        print(f"| 8 generated | {way} | " + " | ".join(f"{m:.1f}" for m in means) + " |")
    ways, round_trip = reconstructions(model, settings, photo, "", 0)
    name = args.photo.name if args.photo is not None else "drawn photo"
    print(f"| {name} | VAE round trip | {round_trip:.1f} |{blank}")
    for way, figures in ways.items():
        print(f"| {name} | {way} | " + " | ".join(f"{f:.1f}" for f in figures) + " |")

    print("\n| keyframes | images | evenness | jump | detour | credibility | UNet calls |", end="")
    print(" image-steps |")
    print("|---|---|---|---|---|---|---|---|")
    by_prompt, by_image = [], []
    for (first, last, seeds), images in zip(PAIRS, keyframe_images, strict=True):
        for given, results in ((None, by_prompt), (images, by_image)):
            engine = BlendingEngine(model, settings)
            conds = engine.encode([first, last])
            latents = {}
            if given is not None:
                latents = {i: model.encode_images([image]) for i, image in enumerate(given)}
            (tree,) = engine.transitions(engine.begin(conds, list(seeds), images=latents), conds)
            results.append(measure(tree.images, engine.stats.unet_calls, engine.stats.image_steps))
    print(summary_row("prompts", by_prompt))
    print(summary_row("the same images as image keyframes", by_image))


if __name__ == "__main__":
    main()
