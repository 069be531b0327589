"""Images and movies for the UI: candidate keyframes, and renders that can be stopped."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from ..animation.render import AnimationRenderer
from ..animation.settings import Animation
from ..blending.crossfeed import Crossfeed
from ..blending.engine import BlendingEngine
from ..blending.settings import BlendSettings
from ..models.adapter import DiffusionAdapter
from ..project import SEED_LIMIT, Project
from ..render import MovieRenderer, Summary

CANDIDATES = 4


class RenderStopped(Exception):
    """A render was stopped by the user before it finished."""


def candidate_seeds(base_seed: int | None, count: int = CANDIDATES) -> list[int]:
    """`count` different seeds: consecutive from `base_seed`, or random when it is None."""
    if base_seed is not None:
        return [(base_seed + i) % SEED_LIMIT for i in range(count)]
    seeds: list[int] = []
    while len(seeds) < count:
        seed = secrets.randbelow(SEED_LIMIT)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def keyframe_images(
    model: DiffusionAdapter, prompts: Sequence[str], seeds: Sequence[int], settings: BlendSettings
) -> list[Image.Image]:
    """The images that a movie with `settings` shows at keyframes with these prompts and seeds,
    but without its ControlNets (the model is shared by every session, and the ControlNets in
    use are the model's: a preview must not change them under a running render).

    Computed without keyframe crossfeed, which ties a keyframe to the one before it in a movie,
    and without the mask, which holds every keyframe to the first one's kept region.
    """
    alone = settings.replace(keyframe_crossfeed=Crossfeed(), mask=None, controlnet=[])
    resolved, _ = alone.resolve(model)
    engine = BlendingEngine(model, resolved)
    return [branch.image for branch in engine.keyframes(engine.encode(list(prompts)), list(seeds))]


class _StoppableMovie(MovieRenderer):
    def __init__(self, project: Project, model: DiffusionAdapter, stop: Callable[[], bool]):
        super().__init__(project, model, progress=True)
        advance = self.engine.progress

        def progress(steps: int) -> None:
            if stop():
                raise RenderStopped
            advance(steps)

        self.engine.progress = progress


class _StoppableAnimation(AnimationRenderer):
    def __init__(self, anim: Animation, model: DiffusionAdapter, stop: Callable[[], bool]):
        super().__init__(anim, model, progress=True)

        def check(steps: int) -> None:
            if stop():
                raise RenderStopped

        self.on_step = check


def render_movie(
    project: Project,
    model: DiffusionAdapter,
    output: Path,
    stop: Callable[[], bool],
    sheet: Path | None = None,
) -> Summary:
    """Renders `project` to `output` (with its project file beside it, and its contact sheet
    at `sheet`) unless stopped."""
    return _StoppableMovie(project, model, stop).write(output, sheet=sheet)


def render_animation(
    anim: Animation, model: DiffusionAdapter, output: Path, stop: Callable[[], bool]
) -> Summary:
    """Renders `anim` to `output` (with its project file beside it) unless stopped."""
    return _StoppableAnimation(anim, model, stop).write(output)
