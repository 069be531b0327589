"""The Python API for one transition between two prompts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PIL import Image

from .blending.settings import BlendSettings
from .blending.sheet import check_sheet_path, write_sheet
from .blending.tree import TransitionTree
from .errors import InputError
from .models.adapter import DiffusionAdapter
from .models.loading import adapter_for
from .project import Keyframe, Project
from .render import MovieRenderer, Summary


class Transition:
    """A latent-blending transition from `prompt_a` to `prompt_b`.

    `pipe` is what `load_pipeline` returns or a diffusers SD or SDXL (text-to-image or
    inpainting), SD3 or FLUX pipeline.
    Settings are those of `BlendSettings` (steps, branches, time_budget, depth_strength, quality,
    plan, guidance_scale, guidance_damper, negative_prompt, size or width/height,
    keyframe_crossfeed, parental_crossfeed, batched, max_batch, distance, mask, controlnet);
    unset ones take the model family's defaults.
    `seeds` left out are drawn at random and recorded in `seeds` after rendering.
    `images` (two image paths, either None) makes a keyframe that image: the transition starts
    or ends on it as closely as the model reproduces it (`psnr` after rendering), and its prompt,
    which may then be "", conditions the way there.
    """

    def __init__(
        self,
        pipe,
        prompt_a: str,
        prompt_b: str,
        *,
        seeds: tuple[int, int] | None = None,
        images: tuple[str | Path | None, str | Path | None] = (None, None),
        size: tuple[int, int] | None = None,
        progress: bool = True,
        **settings,
    ) -> None:
        self.model = pipe if isinstance(pipe, DiffusionAdapter) else adapter_for(pipe)
        if seeds is not None and len(seeds) != 2:
            raise InputError(f"seeds: {seeds!r} is not allowed; give two seeds")
        seed_a, seed_b = seeds or (None, None)
        if len(images) != 2:
            raise InputError(f"images: {images!r} is not allowed; give two paths (or None)")
        image_a, image_b = (None if i is None else str(i) for i in images)
        if size is not None:
            settings["width"], settings["height"] = size
        self.project = Project(
            keyframes=[
                Keyframe(prompt_a, seed_a, image=image_a),
                Keyframe(prompt_b, seed_b, image=image_b),
            ],
            model=self.model.name,
            settings=BlendSettings(**settings),
        )
        self.progress = progress
        self.tree: TransitionTree | None = None
        self._renderer: MovieRenderer | None = None

    @property
    def seeds(self) -> tuple[int, int] | None:
        """The seeds used, once rendered."""
        if self._renderer is None:
            return None
        a, b = self._renderer.project.keyframes
        return a.seed, b.seed

    @property
    def psnr(self) -> dict[int, float]:
        """PSNR in dB of each keyframe given as an image (0: the first, 1: the last) against
        that image, once rendered."""
        return dict(self._renderer.images.psnr) if self._renderer is not None else {}

    def render(self) -> list[Image.Image]:
        """The computed images in transition order: keyframe 1 first, keyframe 2 last."""
        if self.tree is None:
            self._renderer = MovieRenderer(self.project, self.model, self.progress)
            self.tree = next(self._renderer.trees())
        return [self._renderer.still(image) for image in self.tree.images]

    def write(
        self,
        path: str | Path,
        duration: float = 10.0,
        fps: float = 30.0,
        sheet: str | Path | None = None,
    ) -> Summary:
        """Writes the movie (round(duration·fps) frames) and its project file beside it, and
        with `sheet` (a .png path) the transition's contact sheet."""
        if self._renderer is not None and self.tree is not None:
            self._renderer.retime(duration, fps)
            return self._renderer.write(path, [self.tree], sheet=sheet)
        project = dataclasses.replace(self.project, fps=fps, duration=duration)
        self._renderer = MovieRenderer(project, self.model, self.progress)
        return self._renderer.write(path, sheet=sheet)

    def sheet(self, path: str | Path) -> Path:
        """Writes the contact sheet of the transition (rendered first if need be) as a PNG:
        the images with the distance of every gap, and the tree of branches."""
        check_sheet_path(path)
        self.render()
        return write_sheet([self.tree], self._renderer.settings.steps, path)
