"""The chosen keyframes of a session: an ordered list of shots, changed by pure functions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..project import SEED_LIMIT, Keyframe

DEFAULT_SECONDS = 3.0


@dataclass(frozen=True)
class Shot:
    """A keyframe of the movie: prompt, seed, seconds to the next keyframe and its image file;
    `photo`: the image file the keyframe is, when it was given as an image."""

    prompt: str
    seed: int
    duration: float
    image: str
    photo: str | None = None

    def keyframe(self) -> Keyframe:
        """The project keyframe of this shot."""
        return Keyframe(self.prompt, self.seed, self.duration, image=self.photo)


def check_seed(seed: float | int | None) -> int:
    """A seed given in a form as a whole number from 0 to 2**32 − 1."""
    if seed is None or float(seed) != int(seed) or not 0 <= int(seed) < SEED_LIMIT:
        raise InputError(f"seed: {seed!r} is not allowed; use a whole number 0 to {SEED_LIMIT - 1}")
    return int(seed)


def check_duration(seconds: float | None) -> float:
    """Seconds to the next keyframe, as given in a form."""
    if seconds is None or not float(seconds) > 0:
        raise InputError(f"duration: {seconds!r} is not allowed; use seconds > 0")
    return float(seconds)


def check_index(shots: list[Shot], index: int | None) -> int:
    """The index of a chosen keyframe, which must exist."""
    if index is None or not 0 <= int(index) < len(shots):
        raise InputError("no keyframe selected; click one in the keyframe gallery first")
    return int(index)


def added(shots: list[Shot], shot: Shot) -> list[Shot]:
    """The list with `shot` at the end."""
    return [*shots, shot]


def moved(shots: list[Shot], index: int, offset: int) -> tuple[list[Shot], int]:
    """The list with keyframe `index` moved by `offset` places (clamped); and its new index."""
    index = check_index(shots, index)
    target = min(max(index + offset, 0), len(shots) - 1)
    result = list(shots)
    result.insert(target, result.pop(index))
    return result, target


def deleted(shots: list[Shot], index: int) -> list[Shot]:
    """The list without keyframe `index`."""
    index = check_index(shots, index)
    return shots[:index] + shots[index + 1 :]


def replaced(shots: list[Shot], index: int, **changes) -> list[Shot]:
    """The list with keyframe `index` changed."""
    index = check_index(shots, index)
    result = list(shots)
    result[index] = dataclasses.replace(result[index], **changes)
    return result


def label(index: int, shot: Shot, last: bool) -> str:
    """The caption of a keyframe in the gallery and the pickers."""
    timing = "" if last else f", {shot.duration:g} s"
    prompt = shot.prompt if len(shot.prompt) <= 40 else shot.prompt[:39] + "…"
    if shot.photo is not None:
        prompt = f": {prompt}" if prompt else ""
        return f"{index + 1}. image {Path(shot.photo).name}{prompt}{timing}"
    return f"{index + 1}. {prompt} (seed {shot.seed}{timing})"


def gallery(shots: list[Shot]) -> list[tuple[str, str]]:
    """(image, caption) pairs for the keyframe gallery."""
    return [(s.image, label(i, s, i == len(shots) - 1)) for i, s in enumerate(shots)]
