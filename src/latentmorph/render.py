"""Rendering a project: keyframes once, one transition tree per segment, frames streamed out."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from .blending.engine import Beginning, BlendingEngine, segment_windows
from .blending.plan import BranchingPlan
from .blending.sheet import TreeOutline, check_sheet_path, outline, write_sheet
from .blending.tree import Branch, TransitionTree
from .control_inputs import ControlImages
from .errors import InputError
from .keyframe_images import KeyframeImages
from .models.adapter import Conditioning, DiffusionAdapter
from .models.loading import load_pipeline
from .movie.distributed import WorkerModel, import_ray, on_ray
from .movie.parts import PartsFolder, parts_folder, segment_key
from .movie.timing import keyframe_positions, segment_frames
from .movie.writers import check_output_path, open_writer
from .project import Project, ProjectFileBeside, check_project_path

Grower = Callable[
    [Beginning, Sequence[Conditioning], Sequence[int] | None], Iterator[TransitionTree]
]
"""Grows the trees of segments (all when None) in order from the keyframes' beginning."""


@dataclass(frozen=True)
class Summary:
    """What a render did."""

    output: Path
    project_file: Path
    frames: int
    images: int
    unet_calls: int
    image_steps: int
    seconds: float
    sheet: Path | None = None
    resumed: int = 0
    keyframe_psnr: dict[int, float] = field(default_factory=dict)
    """PSNR in dB of each keyframe given as an image against that image, by keyframe index."""

    def psnr_text(self) -> str:
        """The keyframe images' PSNR: `keyframe image PSNR 1: 36.0 dB, 2: 12.1 dB`."""
        psnr = ", ".join(f"{i + 1}: {v:.1f} dB" for i, v in self.keyframe_psnr.items())
        return f"keyframe image PSNR {psnr}"

    def line(self) -> str:
        sheet = f", sheet: {self.sheet}" if self.sheet is not None else ""
        resumed = f", segments from parts: {self.resumed}" if self.resumed else ""
        psnr = f", {self.psnr_text()}" if self.keyframe_psnr else ""
        return (
            f"{self.images} images computed, {self.unet_calls} UNet steps "
            f"({self.image_steps} image-steps), {self.frames} frames in {self.seconds:.1f} s "
            f"-> {self.output} (project: {self.project_file}{sheet}{resumed}{psnr})"
        )


class MovieRenderer:
    """Renders a project's movie; keyframe trajectories are computed once and shared."""

    def __init__(
        self,
        project: Project,
        model: DiffusionAdapter | None = None,
        progress: bool = True,
    ) -> None:
        self.started = time.perf_counter()
        self.project = project.with_seeds()
        self.positions = keyframe_positions(self.project.durations, self.project.fps)
        self.control = ControlImages.read(project.settings.controlnet, len(project.keyframes))
        self.images = KeyframeImages.read(self.project.keyframes)
        self.model = model or load_pipeline(project.model, project.device, project.dtype)
        settings, self.notices = self.images.sized(project.settings, self.model).resolve(
            self.model, project.segment_frames
        )
        self.notices = list(self.model.notices) + self.notices
        self.notices += self.images.fit(settings.width, settings.height)
        self.notices += self.control.prepare(self.model, settings.width, settings.height)
        self.settings = settings
        self._bar = tqdm(desc="diffusion", unit="step", disable=not progress, leave=False)
        self.engine = BlendingEngine(self.model, settings, progress=self._bar.update)
        # the segments are grown here, or by workers elsewhere (see movie.distributed)
        self.grow: Grower = self.engine.transitions
        self.progress = progress
        self._beginning: Beginning | None = None
        self._conds: list[Conditioning] = []
        self._first_image: Image.Image | None = None
        self.resumed = 0

    def retime(self, duration: float, fps: float) -> None:
        """Changes the length of a one-segment movie; computed trees stay valid."""
        self.project = dataclasses.replace(self.project, duration=duration, fps=fps)
        self.positions = keyframe_positions(self.project.durations, fps)

    def keyframes(self, kept: Sequence[int] = ()) -> list[Branch]:
        """The keyframe branches, computed on first use with the first round of every segment
        (as one render does, so that every segment grows the same way); the segments `kept`
        (read from parts) grow no further, which the progress bar's total counts."""
        if self._beginning is None:
            kfs = self.project.keyframes
            grown = len(kfs) - 1 - len(kept)
            plan = None if self.settings.time_budget else self.settings.branching_plan()
            self._set_total(plan, grown)
            seeds = [kf.seed for kf in kfs]
            conds = self.control.conditioned(
                self.model, self.engine.encode([kf.prompt for kf in kfs])
            )
            self._conds, pinned = self.engine.with_kept_image(
                conds, seeds, self.images.images.get(0)
            )
            self._beginning = self.engine.begin(
                self._conds, seeds, self.images.latents(self.model), pinned
            )
            self.images.measure(self._beginning.keyframes)
            first = self._beginning.first_level or {}
            steps = self.settings.steps
            done = sum(len(first[i]) * (steps - first[i][0].start) for i in kept if first.get(i))
            self._set_total(self.plan, grown, done)
        return self._beginning.keyframes

    @property
    def plan(self) -> BranchingPlan | None:
        """The branching plan (known once the keyframes are computed or a part is found)."""
        if self._beginning is not None:
            return self._beginning.plan
        return self.settings.branching_plan() if self.resumed else None

    def _set_total(self, plan: BranchingPlan | None, segments: int, extra: int = 0) -> None:
        """Sets the diffusion bar's total: the keyframes' steps, the plan's for `segments` if
        known, and `extra` image-steps."""
        extra += plan.branch_steps(0) * segments if plan is not None else 0
        extra += self.images.steps(self.settings.steps)
        if self.engine.inpaints and 0 not in self.images.images:
            extra += self.settings.steps  # keyframe 1 alone first (see `with_kept_image`)
        self._bar.total = len(self.project.keyframes) * self.settings.steps + extra
        self._bar.refresh()

    def trees(self, parts: PartsFolder | None = None) -> Iterator[TransitionTree]:
        """The transition tree of each segment in order, computed as it is asked for (a few
        neighbouring segments at a time, their levels batched together).

        With `parts`, the segments found there are read, not computed (when all are found, no
        diffusion runs), and the others grow exactly as in a render without parts: the
        keyframes' batch is the same, and each window of neighbours (`segment_windows`) with a
        segment missing grows whole; a window's parts are all saved before the first of its
        trees is given out. With a time budget the plan is fitted to times measured on the
        keyframes, so `parts` is not used."""
        segments = len(self.project.keyframes) - 1
        if parts is None or self.settings.time_budget is not None:
            self.keyframes()
            yield from self.grow(self._beginning, self._conds, None)
            return
        keys = [self.segment_key(i) for i in range(segments)]
        found = {i: tree for i, key in enumerate(keys) if (tree := parts.load(key)) is not None}
        self.resumed = len(found)
        if len(found) == segments:
            yield from (found[i] for i in range(segments))
            return
        windows = segment_windows(range(segments), self.settings.branching_plan())
        regrown = [w for w in windows if not all(i in found for i in w)]
        self.keyframes([i for w in windows if w not in regrown for i in w])
        grown = self.grow(self._beginning, self._conds, [i for w in regrown for i in w])
        for window in windows:
            if window in regrown:
                trees = [next(grown) for _ in window]
                for i, tree in zip(window, trees, strict=True):
                    if i not in found:
                        parts.save(keys[i], tree)
                        found[i] = tree
            yield from (found[i] for i in window)

    def segment_key(self, segment: int) -> str:
        """The hash of what shapes a segment's images (see `movie.parts.segment_key`)."""
        kfs = self.project.keyframes
        first = 0 if self.settings.keyframe_crossfeed.active or self.engine.kept else segment
        settings = self.settings.as_dict()
        if self.engine.kept is not None:
            settings["mask"] = self.engine.kept.digest
        if self.control.specs:
            settings["control_images"] = self.control.digest
        return segment_key(
            self.model.name,
            str(self.model.dtype),
            [
                (kf.prompt, kf.seed, self.images.digests.get(i))
                for i, kf in enumerate(kfs[first : segment + 2], start=first)
            ],
            settings,
        )

    def still(self, image: Image.Image) -> Image.Image:
        """`image` with the kept region of the mask, if any, from keyframe 1's image (the first
        image asked for)."""
        if self.engine.kept is None:
            return image
        if self._first_image is None:
            self._first_image = image
        return self.engine.kept.composite(image, self._first_image)

    def recorded_project(self) -> Project:
        """The project as rendered: seeds drawn, defaults resolved, the plan written out."""
        settings = self.settings
        if self.plan is not None and self.plan.levels:
            settings = settings.replace(plan=self.plan.describe(), branches=None, time_budget=None)
        elif self.plan is not None:
            settings = settings.replace(plan=None, branches=2, time_budget=None)
        return dataclasses.replace(self.project, settings=settings, model=self.model.name)

    def recorded_data(self) -> dict:
        """The project file's data: the recorded project, with the PSNR of each keyframe given
        as an image (when computed in this render)."""
        data = self.recorded_project().to_dict()
        for i, value in self.images.psnr.items():
            data["keyframes"][i]["psnr"] = round(value, 2)
        return data

    def write(
        self,
        output: str | Path,
        trees: Iterable[TransitionTree] | None = None,
        sheet: str | Path | None = None,
        parts: PartsFolder | None = None,
        keep_parts: bool = False,
    ) -> Summary:
        """Writes the movie and its project file beside it; `trees` may be given pre-computed.

        With `sheet` (a .png path), also writes the contact sheet of every segment's tree. With
        `parts`, finished segments are kept there and read back instead of computed again (see
        `trees`); the folder is removed after the movie is written unless `keep_parts`.
        """
        output = check_output_path(output, self.project.fps, self.project.inputs())
        sheet = check_sheet_path(sheet) if sheet is not None else None
        outlines: list[TreeOutline] = []
        fps = self.project.fps
        size = (self.settings.width, self.settings.height)
        frames = self.positions[-1] + 1
        segments = len(self.positions) - 1
        with ProjectFileBeside(output, self.project.inputs()) as project_file, ExitStack() as stack:
            writer = stack.enter_context(open_writer(output, fps, size))
            bar = stack.enter_context(
                tqdm(total=frames, desc="encoding", unit="frame", disable=not self.progress)
            )
            for i, tree in enumerate(trees if trees is not None else self.trees(parts)):
                slots = self.positions[i + 1] - self.positions[i] + 1
                last = i == segments - 1
                fillers = self.settings.fillers
                for frame in segment_frames(tree.images, tree.distances, slots, last, fillers):
                    writer.write(self.still(frame))
                    bar.update()
                if sheet is not None:
                    outlines.append(outline(tree))
            project_file.stage(self.recorded_data())
        self._bar.close()
        if sheet is not None:
            write_sheet(outlines, self.settings.steps, sheet)
        if parts is not None and not keep_parts:
            parts.remove()
        stats = self.engine.stats
        return Summary(
            output=output,
            project_file=project_file.path,
            frames=writer.frames_written,
            images=stats.images,
            unet_calls=stats.unet_calls,
            image_steps=stats.image_steps,
            seconds=time.perf_counter() - self.started,
            sheet=sheet,
            resumed=self.resumed,
            keyframe_psnr=dict(self.images.psnr),
        )


def render_project(
    project: Project,
    output: str | Path,
    model: DiffusionAdapter | None = None,
    progress: bool = True,
    sheet: str | Path | None = None,
    resume: bool = False,
    fresh: bool = False,
    keep_parts: bool = False,
    ray: bool | str = False,
) -> Summary:
    """Renders a project to `output` (mp4, webm, gif or a PNG folder) with its project file, and
    with `sheet` (a .png path) the contact sheet of its segments' trees.

    With `resume`, each finished segment is kept in the parts folder beside the output
    (`movie.mp4` -> `movie.parts/`) and those found there intact are read, not computed, so a
    render stopped part-way goes on where it stopped; `fresh` ignores what is there and
    `keep_parts` keeps the folder after a complete render. With `ray`, the segments are grown on
    a Ray cluster (True: a local one, or the one this process is connected to; a string: its
    address; see `movie.distributed`).
    """
    if not resume and (fresh or keep_parts):
        raise InputError(
            f"{'fresh' if fresh else 'keep_parts'}: only with resume=True (the parts folder is "
            "kept only when resuming)"
        )
    if ray is not False:
        import_ray("ray")
    output = check_output_path(output, project.fps, project.inputs())
    check_project_path(output, project.inputs())
    if sheet is not None:
        check_sheet_path(sheet)
    renderer = MovieRenderer(project, model, progress)
    parts = PartsFolder(parts_folder(output), fresh) if resume else None
    with ExitStack() as stack:
        if ray is not False:
            stack.enter_context(on_ray(renderer, ray, WorkerModel.of(renderer), "ray"))
        return renderer.write(output, sheet=sheet, parts=parts, keep_parts=keep_parts)
