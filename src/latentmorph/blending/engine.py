"""The blending engine: keyframe trajectories and transition trees, batched through the UNet."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from ..errors import DeviceMemoryError
from ..interpolation import slerp
from ..models.adapter import Conditioning, DiffusionAdapter
from ..models.device import is_out_of_memory, release_memory
from .distance import Distance, get_distance
from .plan import BranchingPlan, Level, plan_for_budget
from .settings import BlendSettings
from .tree import Branch, TransitionTree

Progress = Callable[[int], None]
MAX_BATCH = 1 << 16
# segments of a movie grown together hold about this many images and their trajectories
WINDOW_IMAGES = 64
log = logging.getLogger(__name__)


@dataclass
class _Job:
    """A branch to compute: where it goes, what it starts from and what conditions it."""

    fraction: float
    parents: tuple[Branch, Branch]
    mix: float
    cond: Conditioning
    guidance: float


@dataclass
class EngineStats:
    """What the engine has computed so far."""

    images: int = 0
    unet_calls: int = 0
    image_steps: int = 0
    keyframe_seconds: float = 0.0
    step_seconds: float = 0.0
    image_seconds: float = 0.0


class BlendingEngine:
    """Computes keyframes and transition trees with resolved `BlendSettings`."""

    def __init__(
        self,
        model: DiffusionAdapter,
        settings: BlendSettings,
        distance: Distance | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.distance = distance or get_distance(settings.distance, model.device)
        self.progress = progress
        self.stats = EngineStats()
        self.batch_limit = (settings.max_batch or MAX_BATCH) if settings.batched else 1
        self._reported = 0

    def encode(self, prompts: Sequence[str]) -> list[Conditioning]:
        """One conditioning per prompt (encoded as one batch)."""
        s = self.settings
        cond = self.model.encode(prompts, s.negative_prompt, s.prompt_weighting)
        return [cond[i] for i in range(len(prompts))]

    def keyframes(self, conds: Sequence[Conditioning], seeds: Sequence[int]) -> list[Branch]:
        """Full trajectories of the keyframes; with keyframe crossfeed each one is pulled toward
        the one before it (within a batch the pull is applied row by row, in order)."""
        s = self.settings
        started = time.perf_counter()
        noise = self.model.noise(seeds, s.width, s.height, s.steps)
        crossfeed = s.keyframe_crossfeed
        coefficients = crossfeed.keyframe_coefficients(s.steps) if crossfeed.active else None
        trajectories: list[list[torch.Tensor]] = []

        def run(rows: range) -> None:
            hook = None
            if coefficients is not None:
                hook = self._keyframe_hook(coefficients, trajectories[-1] if trajectories else None)
            batch = self._denoise(
                noise[rows.start : rows.stop],
                Conditioning.cat([conds[i] for i in rows]),
                0,
                [s.guidance_scale] * len(rows),
                hook,
            )
            trajectories.extend([x[j : j + 1] for x in batch] for j in range(len(rows)))

        self._in_batches(len(seeds), run)
        _synchronize(self.model.device)
        denoised = time.perf_counter()
        final = torch.cat([t[-1] for t in trajectories])
        images = []
        self._in_batches(
            len(seeds), lambda rows: images.extend(self._decode(final[rows.start : rows.stop]))
        )
        if len(images) > 1:
            self.distance(images[:1], images[1:2])
        finished = time.perf_counter()
        self.stats.keyframe_seconds += finished - started
        self.stats.step_seconds = (denoised - started) / (len(seeds) * s.steps)
        self.stats.image_seconds = (finished - denoised) / len(seeds)
        return [
            Branch(float(i), 0, 0, trajectory, image)
            for i, (trajectory, image) in enumerate(zip(trajectories, images, strict=True))
        ]

    def plan(self, segments: int = 1) -> BranchingPlan:
        """The branching plan: from the settings, or fitted to the time budget from the step and
        image times measured on the keyframes (call `keyframes` first)."""
        s = self.settings
        if s.time_budget is None:
            return s.branching_plan()
        spent = self.stats.keyframe_seconds / segments
        return plan_for_budget(
            s.steps,
            s.depth_strength,
            s.time_budget - spent,
            self.stats.step_seconds,
            self.stats.image_seconds,
        )

    def transition(
        self,
        first: Branch,
        last: Branch,
        cond_first: Conditioning,
        cond_last: Conditioning,
        plan: BranchingPlan,
    ) -> TransitionTree:
        """The tree between two keyframes, grown level by level where images differ most."""
        return self._grow_trees([(first, last, cond_first, cond_last)], plan)[0]

    def transitions(
        self, keyframes: Sequence[Branch], conds: Sequence[Conditioning], plan: BranchingPlan
    ) -> Iterator[TransitionTree]:
        """The trees between consecutive keyframes, in order. Neighbouring segments grow
        together, each level of them in one batch, as many at a time as keep about
        `WINDOW_IMAGES` images (and their trajectories) in memory."""
        window = max(1, WINDOW_IMAGES // plan.branches)
        for begin in range(0, len(keyframes) - 1, window):
            segments = [
                (keyframes[i], keyframes[i + 1], conds[i], conds[i + 1])
                for i in range(begin, min(begin + window, len(keyframes) - 1))
            ]
            yield from self._grow_trees(segments, plan)

    def _grow_trees(
        self,
        segments: Sequence[tuple[Branch, Branch, Conditioning, Conditioning]],
        plan: BranchingPlan,
    ) -> list[TransitionTree]:
        trees = []
        for first, last, _, _ in segments:
            first = dataclasses.replace(first, fraction=0.0)
            last = dataclasses.replace(last, fraction=1.0)
            trees.append(TransitionTree(first, last, self.distance([first.image], [last.image])[0]))
        conds = [(cond_first, cond_last) for _, _, cond_first, cond_last in segments]
        for level_no, level in enumerate(plan.levels, start=1):
            self._grow_level(trees, conds, level_no, level)
        return trees

    def _grow_level(
        self,
        trees: list[TransitionTree],
        conds: list[tuple[Conditioning, Conditioning]],
        level_no: int,
        level: Level,
    ) -> None:
        """Adds a level's branches to every tree where its images differ most, all in one
        batch (as far as the batch limit allows)."""
        allocations = [tree.allocate(level.total - len(tree)) for tree in trees]
        jobs = [
            self._job(tree, gap, i, count, level_no, *cond)
            for tree, cond, allocation in zip(trees, conds, allocations, strict=True)
            for gap, count in allocation
            for i in range(1, count + 1)
        ]
        branches: list[Branch] = []
        self._in_batches(
            len(jobs),
            lambda rows: branches.extend(
                self._grow(jobs[rows.start : rows.stop], level_no, level.start)
            ),
        )
        # from the last job back, so that the gap indices still to fill stay valid
        for tree, allocation in reversed(list(zip(trees, allocations, strict=True))):
            for gap, count in reversed(allocation):
                new = [branches.pop() for _ in range(count)][::-1]
                chain = [tree.branches[gap], *new, tree.branches[gap + 1]]
                images = [b.image for b in chain]
                tree.fill(gap, new, self.distance(images[:-1], images[1:]))

    def _job(
        self,
        tree: TransitionTree,
        gap: int,
        index: int,
        count: int,
        level: int,
        cond_first: Conditioning,
        cond_last: Conditioning,
    ) -> _Job:
        """Branch `index` of `count` spread evenly over a gap."""
        a, b = tree.branches[gap], tree.branches[gap + 1]
        fraction = a.fraction + (b.fraction - a.fraction) * index / (count + 1)
        p1, p2 = tree.parents(gap, level)
        return _Job(
            fraction=fraction,
            parents=(p1, p2),
            mix=(fraction - p1.fraction) / (p2.fraction - p1.fraction),
            cond=cond_first.lerp(cond_last, fraction),
            guidance=self.settings.guidance_at(fraction),
        )

    def _grow(self, jobs: list[_Job], level: int, start: int) -> list[Branch]:
        """Computes a batch of branches injected at `start`."""
        mix = torch.tensor([j.mix for j in jobs])

        def parents_at(step: int) -> torch.Tensor:
            first = torch.cat([j.parents[0].at(step) for j in jobs])
            second = torch.cat([j.parents[1].at(step) for j in jobs])
            return slerp(first, second, mix)

        coefficients = self.settings.parental_crossfeed.parental_coefficients(
            self.settings.steps, start
        )
        hook = None
        if self.settings.parental_crossfeed.active:
            hook = self._crossfeed_hook(coefficients, start, parents_at)
        trajectory = self._denoise(
            parents_at(start),
            Conditioning.cat([j.cond for j in jobs]),
            start,
            [j.guidance for j in jobs],
            hook,
        )
        images = self._decode(trajectory[-1])
        return [
            Branch(
                job.fraction, level, start, [x[i : i + 1] for x in trajectory], image, job.parents
            )
            for i, (job, image) in enumerate(zip(jobs, images, strict=True))
        ]

    @staticmethod
    def _keyframe_hook(coefficients, previous: list[torch.Tensor] | None):
        """Before each step, slerp every keyframe in the batch toward the one before it (the
        first one toward `previous`, the trajectory of the keyframe before the batch, if any)."""

        def hook(step: int, latents: torch.Tensor) -> torch.Tensor:
            c = float(coefficients[step])
            if step == 0 or c <= 0:
                return latents
            target = previous[step] if previous is not None else None
            rows = []
            for row in latents.split(1):
                if target is not None:
                    row = slerp(row, target, c)
                rows.append(row)
                target = row
            return torch.cat(rows)

        return hook

    @staticmethod
    def _crossfeed_hook(coefficients, start: int, target: Callable[[int], torch.Tensor]):
        """Before each step after `start`, slerp the latents toward the target's latents."""

        def hook(step: int, latents: torch.Tensor) -> torch.Tensor:
            c = float(coefficients[step])
            if step == start or c <= 0:
                return latents
            return slerp(latents, target(step), c)

        return hook

    def _in_batches(self, count: int, run: Callable[[range], None]) -> None:
        """Calls `run` on consecutive ranges of `count` rows of at most `batch_limit` rows; when
        the device runs out of memory, halves the limit and runs that range again."""
        start = 0
        while start < count:
            rows = range(start, min(count, start + self.batch_limit))
            self._reported = 0
            try:
                run(rows)
                start = rows.stop
                continue
            except RuntimeError as error:
                if not is_out_of_memory(error):
                    raise
                if len(rows) == 1:
                    s = self.settings
                    raise DeviceMemoryError(
                        f"out of memory on {self.model.device} with one image at "
                        f"{s.width}x{s.height}; use a smaller size, a half-precision dtype or "
                        "another device"
                    ) from error
            # only here are the error and the tensors its traceback holds released
            self._halve_batches(len(rows))

    def _halve_batches(self, rows: int) -> None:
        self.batch_limit = rows // 2
        release_memory(self.model.device)
        if self.progress is not None:
            self.progress(-self._reported)
        log.warning(
            "out of memory on %s with %d images in a batch; going on with at most %d",
            self.model.device,
            rows,
            self.batch_limit,
        )

    def _report(self, images: int) -> None:
        self._reported += images
        if self.progress is not None:
            self.progress(images)

    def _denoise(self, latents, cond, start, guidance, hook) -> list[torch.Tensor]:
        steps = self.settings.steps
        trajectory = self.model.denoise(
            latents, cond, steps, start, steps, torch.tensor(guidance), hook, self._report
        )
        self.stats.unet_calls += steps - start
        self.stats.image_steps += (steps - start) * latents.shape[0]
        return trajectory

    def _decode(self, latents: torch.Tensor):
        images = self.model.decode(latents)
        self.stats.images += latents.shape[0]
        return images


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
