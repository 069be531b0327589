"""The blending engine: keyframe trajectories and transition trees, batched through the UNet."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from textwrap import shorten

import torch
from PIL import Image

from ..errors import DeviceMemoryError
from ..interpolation import slerp
from ..models.adapter import Conditioning, DiffusionAdapter
from ..models.device import is_out_of_memory, release_memory
from ..pixels import to_images
from .distance import Distance, get_distance
from .inversion import invert
from .kept_region import kept_region
from .placement import Picks, get_placement
from .plan import BranchingPlan, Level, plan_for_budget
from .settings import BlendSettings
from .tree import Branch, TransitionTree

Progress = Callable[[int], None]
Pinned = dict[int, list[torch.Tensor]]
"""Trajectories fixed beforehand, by keyframe index: of keyframes given as images (see
`BlendingEngine.invert`), or an inpainting model's keyframe 1 (see `with_kept_image`)."""
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
class Beginning:
    """Keyframes and plan of a movie; `first_level`, when given, holds the first-level branches
    of the segments to grow by segment index (computed with the keyframes, parents not yet
    set)."""

    keyframes: list[Branch]
    plan: BranchingPlan
    first_level: dict[int, list[Branch]] | None = None


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
        model.configure(settings.compile, settings.vae_dtype)
        self.distance = distance or get_distance(settings.distance, model.device)
        self.progress = progress
        self.stats = EngineStats()
        self.placement = get_placement(settings.placement)
        self.batch_limit = (settings.max_batch or MAX_BATCH) if settings.batched else 1
        self._reported = 0
        self.kept = kept_region(settings, model)
        self._first: Branch | None = None  # keyframe 1, whose region `kept` holds

    def encode(self, prompts: Sequence[str]) -> list[Conditioning]:
        """One conditioning per prompt (encoded as one batch)."""
        s = self.settings
        for index, limit, lost in self.model.cut_prompts(prompts):
            log.warning(
                "prompt %d is longer than the model reads (%d tokens); not read: %s",
                index + 1,
                limit,
                shorten(lost, 80),
            )
        cond = self.model.encode(prompts, s.negative_prompt, s.prompt_weighting)
        return [cond[i] for i in range(len(prompts))]

    def keyframes(
        self,
        conds: Sequence[Conditioning],
        seeds: Sequence[int],
        pinned: Pinned | None = None,
    ) -> list[Branch]:
        """Full trajectories of the keyframes; with keyframe crossfeed each one is pulled toward
        the one before it (within a batch the pull is applied row by row, in order). Keyframes
        in `pinned` follow the trajectories given there and end at their last latents."""
        s = self.settings
        started = time.perf_counter()
        noise = self.model.noise(seeds, s.width, s.height, s.steps)
        crossfeed = s.keyframe_crossfeed
        coefficients = crossfeed.keyframe_coefficients(s.steps) if crossfeed.active else None
        pinned = pinned or {}
        trajectories: list[list[torch.Tensor]] = []

        def run(rows: range) -> None:
            batch_pinned = {j - rows.start: pinned[j] for j in rows if j in pinned}
            hook = self._keyframe_hook(
                coefficients, trajectories[-1] if trajectories else None, batch_pinned
            )
            hook = self._holding(hook, trajectories[0] if trajectories else None)
            batch = self._denoise(
                noise[rows.start : rows.stop],
                Conditioning.cat([conds[i] for i in rows]),
                0,
                [s.guidance_scale] * len(rows),
                hook,
            )
            batch[-1] = _pin_final(batch[-1], batch_pinned)
            trajectories.extend([x[j : j + 1] for x in batch] for j in range(len(rows)))

        self._in_batches(len(seeds), run)
        _synchronize(self.model.device)
        denoised = time.perf_counter()
        pixels, images = self._decode_in_batches(torch.cat([t[-1] for t in trajectories]))
        if len(images) > 1:
            self.distance(pixels[:1], pixels[1:2])
        finished = time.perf_counter()
        self.stats.keyframe_seconds += finished - started
        self.stats.step_seconds = (denoised - started) / (len(seeds) * s.steps)
        self.stats.image_seconds = (finished - denoised) / len(seeds)
        return [
            Branch(float(i), 0, 0, trajectory, image, pixels=pixels[i])
            for i, (trajectory, image) in enumerate(zip(trajectories, images, strict=True))
        ]

    def begin(
        self,
        conds: Sequence[Conditioning],
        seeds: Sequence[int],
        images: dict[int, torch.Tensor] | None = None,
        pinned: Pinned | None = None,
    ) -> Beginning:
        """The keyframes and the branching plan, ready for `transitions`. Keyframes given as
        `images` (clean latents by keyframe index) follow the trajectories `invert` finds for
        them and end at those latents; those in `pinned` follow the trajectories given there.

        The first round of the first level needs no distances (each segment is one gap), so when
        the plan is known beforehand (no time budget) it runs in the keyframes' batch from its
        injection step on, as far as the batch limit allows.
        """
        s = self.settings
        count = len(seeds) - 1
        segments = range(count)
        pinned = {**(pinned or {}), **(self.invert(images, conds) if images else {})}
        if s.time_budget is None and s.batched and segments:
            plan = s.branching_plan()
            if plan.levels:
                beginning = self._begin_with_first_level(conds, seeds, plan, segments, pinned)
                if beginning is not None:
                    return beginning
        return Beginning(self.keyframes(conds, seeds, pinned), self._plan(max(count, 1)))

    @property
    def inpaints(self) -> bool:
        """Whether the model's denoiser takes the kept region and keyframe 1's image (a mask is
        given and the model inpaints)."""
        return self.kept is not None and self.model.inpainting

    def with_kept_image(
        self,
        conds: Sequence[Conditioning],
        seeds: Sequence[int],
        image: Image.Image | None = None,
    ) -> tuple[list[Conditioning], Pinned]:
        """When the model inpaints the kept region, each keyframe's conditioning with the mask
        and keyframe 1's image (`image`; None: keyframe 1 computed first, alone, and pinned to
        that trajectory, returned for `begin`); otherwise the conditionings as they are."""
        if not self.inpaints:
            return list(conds), {}
        pinned: Pinned = {}
        if image is None:
            (first,) = self.keyframes(conds[:1], seeds[:1])
            image, pinned = first.image, {0: first.latents}
        return [self.model.with_masked_image(c, self.kept.keep, image) for c in conds], pinned

    def invert(self, images: dict[int, torch.Tensor], conds: Sequence[Conditioning]) -> Pinned:
        """Trajectories ending at the clean latents of keyframes given as images (by keyframe
        index), with the keyframes' conditioning and guidance, in batches of at most
        `batch_limit` images (see `blending.inversion`); their time counts as the keyframes'."""
        started = time.perf_counter()
        indices = sorted(images)
        pinned: Pinned = {}

        def run(rows: range) -> None:
            batch = indices[rows.start : rows.stop]
            cond = Conditioning.cat([conds[i] for i in batch])
            guidance = [self.settings.guidance_scale] * len(batch)

            def step(latents: torch.Tensor, i: int) -> torch.Tensor:
                return self._denoise(latents, cond, i, guidance, None, stop=i + 1)[-1]

            clean = torch.cat([images[i] for i in batch])
            trajectory = invert(clean, self.settings.steps, step)
            pinned.update({i: [x[j : j + 1] for x in trajectory] for j, i in enumerate(batch)})

        self._in_batches(len(indices), run)
        self.stats.keyframe_seconds += time.perf_counter() - started
        return pinned

    def _begin_with_first_level(
        self,
        conds: Sequence[Conditioning],
        seeds: Sequence[int],
        plan: BranchingPlan,
        segments: Sequence[int],
        pinned: Pinned,
    ) -> Beginning | None:
        """The beginning with the first round of the first level grown in the keyframes' batch;
        None when that batch is over the limit or the device runs out of memory (the limit is
        then halved)."""
        ((_, fractions),) = self.placement([0.0, 1.0], [1.0], plan.levels[0].total - 2)
        rows = len(seeds) + len(segments) * len(fractions)
        if rows > self.batch_limit:
            return None
        counted = dataclasses.replace(self.stats)
        self._reported = 0
        try:
            keyframes, first_level = self._keyframes_with_first_level(
                conds, seeds, plan.levels[0].start, fractions, segments, pinned
            )
            return Beginning(keyframes, plan, first_level)
        except RuntimeError as error:
            if not is_out_of_memory(error):
                raise
        vars(self.stats).update(vars(counted))  # the stats object may be shared: reset in place
        self._halve_batches(rows)
        return None

    def _keyframes_with_first_level(
        self,
        conds: Sequence[Conditioning],
        seeds: Sequence[int],
        start: int,
        segment_fractions: list[float],
        segments: Sequence[int],
        pinned: Pinned,
    ) -> tuple[list[Branch], dict[int, list[Branch]]]:
        """The keyframes (those in `pinned` following their trajectories), and first-level
        branches at `segment_fractions` of each of `segments` (without parents), computed in one
        batch from injection step `start` on."""
        s = self.settings
        count, keys = len(segment_fractions), len(seeds)
        fractions = segment_fractions * len(segments)
        left = torch.tensor(list(segments), device=self.model.device).repeat_interleave(count)
        mix = torch.tensor(fractions, device=self.model.device)
        children = [conds[i].lerp(conds[i + 1], f) for i, f in zip(left.tolist(), fractions)]
        crossfeed = s.keyframe_crossfeed
        coefficients = crossfeed.keyframe_coefficients(s.steps) if crossfeed.active else None
        keyframe_hook = self._keyframe_hook(coefficients, None, pinned)
        parental = s.parental_crossfeed.parental_coefficients(s.steps, start)

        def between(rows: torch.Tensor) -> torch.Tensor:
            return slerp(rows[left], rows[left + 1], mix)

        def hook(step: int, latents: torch.Tensor) -> torch.Tensor:
            if step == start:  # the keyframe pull of this step is already applied
                return latents
            rows, branches = latents[:keys], latents[keys:]
            if keyframe_hook is not None:
                rows = keyframe_hook(step, rows)
            if s.parental_crossfeed.active and parental[step] > 0:
                branches = slerp(branches, between(rows), float(parental[step]))
            return torch.cat([rows, branches])

        noise = self.model.noise(seeds, s.width, s.height, s.steps)
        cond = Conditioning.cat(list(conds))
        guidance = [s.guidance_scale] * keys
        head = self._denoise(
            noise, cond, 0, guidance, self._holding(keyframe_hook, None), stop=start
        )
        rows = head[-1] if keyframe_hook is None else keyframe_hook(start, head[-1])
        tail = self._denoise(
            torch.cat([rows, between(rows)]),
            Conditioning.cat([cond, *children]),
            start,
            guidance + [s.guidance_at(f) for f in fractions],
            self._holding(hook, None),
        )
        tail[-1] = _pin_final(tail[-1], pinned)
        pixels, images = self._decode_in_batches(tail[-1])
        keyframes = [
            Branch(
                float(i),
                0,
                0,
                [x[i : i + 1] for x in (*head[:-1], *tail)],
                images[i],
                pixels=pixels[i],
            )
            for i in range(keys)
        ]
        grown = [
            Branch(f, 1, start, [x[j : j + 1] for x in tail], images[j], pixels=pixels[j])
            for j, f in enumerate(fractions, start=keys)
        ]
        return keyframes, {
            segment: grown[i * count : (i + 1) * count] for i, segment in enumerate(segments)
        }

    def _plan(self, segments: int) -> BranchingPlan:
        """The branching plan: from the settings, or fitted to the time budget from the step and
        image times measured on the keyframes (computed first)."""
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
        """The tree between two keyframes, grown level by level where images differ most (a
        kept region is held to `first`)."""
        self._first = first
        return self._grow_trees([(first, last, cond_first, cond_last)], plan)[0]

    def transitions(
        self,
        beginning: Beginning,
        conds: Sequence[Conditioning],
        segments: Sequence[int] | None = None,
    ) -> Iterator[TransitionTree]:
        """The trees of `segments` (indices of the gaps between consecutive keyframes; default:
        all), in order. Neighbouring ones grow together, each level of them in one batch, as
        many at a time as keep about `WINDOW_IMAGES` images (and their trajectories) in memory;
        a tree's images do not depend on which others share its batches (up to float noise)."""
        keyframes, plan, first_level = beginning.keyframes, beginning.plan, beginning.first_level
        self._first = keyframes[0]
        segments = list(range(len(keyframes) - 1) if segments is None else segments)
        for window_segments in segment_windows(segments, plan):
            grown_segments = [
                (keyframes[i], keyframes[i + 1], conds[i], conds[i + 1]) for i in window_segments
            ]
            grown = [first_level[i] for i in window_segments] if first_level else None
            yield from self._grow_trees(grown_segments, plan, grown)

    def _grow_trees(
        self,
        segments: Sequence[tuple[Branch, Branch, Conditioning, Conditioning]],
        plan: BranchingPlan,
        first_level: list[list[Branch]] | None = None,
    ) -> list[TransitionTree]:
        """Trees of the segments, grown level by level; `first_level` branches, when given, are
        the first round of each tree's first level."""
        ends = [
            (dataclasses.replace(first, fraction=0.0), dataclasses.replace(last, fraction=1.0))
            for first, last, _, _ in segments
        ]
        trees = [
            TransitionTree(first, last, distance)
            for (first, last), distance in zip(ends, self._distances(ends), strict=True)
        ]
        if first_level is not None:
            fills = []
            for tree, grown in zip(trees, first_level, strict=True):
                parents = (tree.branches[0], tree.branches[1])
                fills.append((tree, 0, [dataclasses.replace(b, parents=parents) for b in grown]))
            self._fill(fills)
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
        """Adds a level's branches to every tree in the rounds its placement chooses."""
        while True:
            picks = [
                self.placement(tree.fractions, tree.distances, missing)
                if (missing := level.total - len(tree)) > 0
                else []
                for tree in trees
            ]
            if not any(picks):
                return
            self._grow_round(trees, conds, picks, level_no, level.start)

    def _grow_round(
        self,
        trees: list[TransitionTree],
        conds: list[tuple[Conditioning, Conditioning]],
        picks: list[Picks],
        level_no: int,
        start: int,
    ) -> None:
        """Computes the picked branches of every tree in one batch (as far as the batch limit
        allows) and puts them into their gaps."""
        jobs = [
            self._job(tree, gap, fraction, level_no, *cond)
            for tree, cond, tree_picks in zip(trees, conds, picks, strict=True)
            for gap, fractions in tree_picks
            for fraction in fractions
        ]
        branches: list[Branch] = []
        self._in_batches(
            len(jobs),
            lambda rows: branches.extend(self._grow(jobs[rows.start : rows.stop], level_no, start)),
        )
        grown = iter(branches)
        self._fill(
            [
                (tree, gap, [next(grown) for _ in fractions])
                for tree, tree_picks in zip(trees, picks, strict=True)
                for gap, fractions in tree_picks
            ]
        )

    def _fill(self, fills: list[tuple[TransitionTree, int, list[Branch]]]) -> None:
        """Puts new branches into gaps of trees (each tree's gaps in increasing order), with the
        distances along each new chain of neighbours, all measured in one batch."""
        chains = [[tree.branches[gap], *new, tree.branches[gap + 1]] for tree, gap, new in fills]
        distances = self._distances([pair for chain in chains for pair in zip(chain, chain[1:])])
        measured = []
        for chain in chains:
            measured.append(distances[: len(chain) - 1])
            distances = distances[len(chain) - 1 :]
        # from the last gap back, so that the gap indices still to fill stay valid
        for (tree, gap, new), chain_distances in reversed(list(zip(fills, measured, strict=True))):
            tree.fill(gap, new, chain_distances)

    def _distances(self, pairs: Sequence[tuple[Branch, Branch]]) -> list[float]:
        """The distance between the images of each pair of branches, in one batch."""
        if not pairs:
            return []
        left = torch.stack([a.pixels for a, _ in pairs])
        right = torch.stack([b.pixels for _, b in pairs])
        return self.distance(left, right)

    def _job(
        self,
        tree: TransitionTree,
        gap: int,
        fraction: float,
        level: int,
        cond_first: Conditioning,
        cond_last: Conditioning,
    ) -> _Job:
        """A branch at `fraction` inside a gap, with the parents of that gap at `level`."""
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
        mix = torch.tensor([j.mix for j in jobs], device=self.model.device)

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
            self._holding(hook, self._first.latents if self.kept is not None else None),
        )
        pixels, images = self._decode(trajectory[-1])
        return [
            Branch(
                job.fraction,
                level,
                start,
                [x[i : i + 1] for x in trajectory],
                image,
                job.parents,
                pixels[i],
            )
            for i, (job, image) in enumerate(zip(jobs, images, strict=True))
        ]

    def _holding(self, hook, first: list[torch.Tensor] | None):
        """`hook`, then with a kept region its latents held to keyframe 1's trajectory `first`
        (None: keyframe 1 is row 0 of the batch)."""
        return hook if self.kept is None else self.kept.hook(hook, first)

    @staticmethod
    def _keyframe_hook(coefficients, previous: list[torch.Tensor] | None, pinned: Pinned):
        """Before each step, set the `pinned` rows of the batch to their trajectories and, with
        crossfeed `coefficients`, slerp every other keyframe toward the one before it (the
        first one toward `previous`, the trajectory of the keyframe before the batch, if any).
        None when there is nothing to do."""
        if coefficients is None and not pinned:
            return None

        def hook(step: int, latents: torch.Tensor) -> torch.Tensor:
            c = float(coefficients[step]) if coefficients is not None else 0.0
            pull = step > 0 and c > 0
            if not pull and not pinned:
                return latents
            target = previous[step] if previous is not None else None
            rows = []
            for j, row in enumerate(latents.split(1)):
                if j in pinned:
                    row = pinned[j][step]
                elif pull and target is not None:
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

    def _denoise(self, latents, cond, start, guidance, hook, stop=None) -> list[torch.Tensor]:
        steps = self.settings.steps
        stop = steps if stop is None else stop
        trajectory = self.model.denoise(
            latents, cond, steps, start, stop, torch.tensor(guidance), hook, self._report
        )
        self.stats.unet_calls += stop - start
        self.stats.image_steps += (stop - start) * latents.shape[0]
        return trajectory

    def _decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, list[Image.Image]]:
        """8-bit RGB pixels of final latents, on the device, and their PIL images."""
        pixels = self.model.decode_pixels(latents)
        self.stats.images += latents.shape[0]
        return pixels, to_images(pixels)

    def _decode_in_batches(self, latents: torch.Tensor) -> tuple[torch.Tensor, list[Image.Image]]:
        """`_decode` in batches of at most `batch_limit` rows (see `_in_batches`)."""
        parts: list[tuple[torch.Tensor, list[Image.Image]]] = []
        self._in_batches(
            latents.shape[0],
            lambda rows: parts.append(self._decode(latents[rows.start : rows.stop])),
        )
        return torch.cat([p for p, _ in parts]), [i for _, images in parts for i in images]


def _pin_final(latents: torch.Tensor, pinned: Pinned) -> torch.Tensor:
    """Final latents of a batch with the `pinned` rows set to their trajectories' ends."""
    if not pinned:
        return latents
    latents = latents.clone()
    for row, trajectory in pinned.items():
        latents[row : row + 1] = trajectory[-1]
    return latents


def segment_windows(segments: Sequence[int], plan: BranchingPlan) -> list[list[int]]:
    """`segments` cut into the runs of neighbours that `BlendingEngine.transitions` grows
    together (about `WINDOW_IMAGES` images each)."""
    window = max(1, WINDOW_IMAGES // plan.branches)
    return [list(segments[start : start + window]) for start in range(0, len(segments), window)]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
