"""Frame timing: spreading computed images over a fixed number of frames with filler frames."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from ..errors import InputError
from ..limits import check_duration, check_fps, check_length
from .fillers import filler


def frame_count(duration: float, fps: float) -> int:
    """round(duration·fps), checked to give at least two frames and at most MAX_FRAMES."""
    check_duration(duration)
    check_fps(fps)
    frames = check_length(duration, fps)
    if frames < 2:
        raise InputError(
            f"duration: {duration} s at {fps} fps gives {frames} frame(s); at least 2 are needed"
        )
    return frames


def keyframe_positions(durations: Sequence[float], fps: float) -> list[int]:
    """Frame index of each keyframe of a movie whose segments last `durations` seconds.

    The movie has round(sum(durations)·fps) frames; the last keyframe is its last frame.
    """
    total = frame_count(sum(durations), fps)
    times = np.concatenate([[0.0], np.cumsum(durations)])
    positions = [round(t * fps) for t in times[:-1]] + [total - 1]
    for i, (a, b) in enumerate(zip(positions, positions[1:], strict=False)):
        if b <= a:
            raise InputError(
                f"keyframes[{i}].duration: {durations[i]} s is shorter than one frame at {fps} fps"
            )
    return positions


def frame_plan(distances: Sequence[float], frames: int) -> list[tuple[int, float]]:
    """For each of `frames` frames: (index of an image, time toward the next one: 0 shows the
    image, otherwise a filler frame).

    Images sit at frames spaced in proportion to the distance from their left neighbour, so the
    perceived speed of change is even; every image gets its own frame when there are enough.
    With fewer frames than images, each frame shows the image nearest its point of progress.
    """
    images = len(distances) + 1
    d = np.asarray(distances, dtype=float)
    d = np.ones_like(d) if d.sum() <= 0 else np.maximum(d, 0)
    if frames == 1:
        return [(0, 0.0)]
    if frames < images:
        progress = np.concatenate([[0.0], np.cumsum(d)]) / d.sum()
        nearest = [int(np.abs(progress - u).argmin()) for u in np.linspace(0, 1, frames)]
        nearest[-1] = images - 1  # not an identical neighbour before it (zero distance)
        return [(i, 0.0) for i in nearest]
    gaps = _allocate(d, frames - 1)
    plan = []
    for i, gap in enumerate(gaps):
        plan += [(i, k / gap) for k in range(gap)]
    plan.append((images - 1, 0.0))
    return plan


def _allocate(weights: np.ndarray, total: int) -> list[int]:
    """Splits `total` frames into one whole count >= 1 per gap, in proportion to `weights`
    (largest remainders first, ties to the earlier gap)."""
    spare = total - len(weights)
    share = weights / weights.sum() * spare
    counts = np.floor(share).astype(int)
    order = sorted(range(len(weights)), key=lambda i: (-(share[i] - counts[i]), i))
    for i in order[: spare - counts.sum()]:
        counts[i] += 1
    return [int(c) + 1 for c in counts]


def render_frames(
    images: Sequence[Image.Image], plan: Sequence[tuple[int, float]], fillers: str
) -> Iterator[Image.Image]:
    """The frames of a frame plan: images, and filler frames between neighbours made the
    `fillers` way (`movie.fillers`; a plan's weight is the filler's time)."""
    gap, make = -1, None
    for index, weight in plan:
        if weight == 0:
            yield images[index]
            continue
        if index != gap:  # one filler a pair of neighbours: it estimates the motion once
            gap, make = index, filler(images[index], images[index + 1], fillers)
        yield make(weight)


def segment_frames(
    images: Sequence[Image.Image],
    distances: Sequence[float],
    slots: int,
    last: bool,
    fillers: str,
) -> Iterator[Image.Image]:
    """The frames of a segment from its first image to its last over `slots` frame positions,
    filler frames made the `fillers` way; the last position is left to the next segment unless
    `last`."""
    plan = frame_plan(distances, slots)
    return render_frames(images, plan if last else plan[:-1], fillers)
