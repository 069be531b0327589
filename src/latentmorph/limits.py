"""Upper limits on what a render may ask for, and the checks that name the field.

A typo such as `--fps 1e9` or a keyframe at frame 10**12 would otherwise exhaust memory or run
for days; these limits refuse it at once, where the input enters. Free of heavy imports, so that
the command line checks its flags before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .checks import is_number, is_whole, show
from .errors import InputError

MAX_FPS = 240
"""Frames per second."""
MAX_DURATION = 24 * 60 * 60
"""Seconds of a movie or animation (24 hours)."""
MAX_FRAMES = 1_000_000
"""Frames of a movie or animation (about 9 hours at 30 fps)."""
MAX_SIZE = 8192
"""Pixels of width and of height."""
MAX_STEPS = 1000
"""Diffusion steps."""
MAX_GUIDANCE = 100
"""Classifier-free guidance scale."""
SEED_LIMIT = 2**32
"""Seeds are whole numbers from 0 to SEED_LIMIT - 1 (torch's generators take them all, and
keyframe i of an animation, seeded seed + i, too)."""
MAX_GIF_FPS = 50
"""GIF frame delays are whole hundredths of a second, and players slow shorter ones down."""
MAX_PROJECT_FILE_BYTES = 1_000_000
"""Size of a project file or prompt schedule file."""
MAX_BRANCHES = 2000
"""Images of one transition, keyframes included."""
MAX_MOTION_ZOOM = 1000
"""Zoom factor of one frame's 2D motion (and 1/MAX_MOTION_ZOOM the least)."""
MAX_MOTION_ANGLE = 360
"""Degrees of one frame's 2D rotation, either way."""
MAX_NOISE = 10
"""Scale of the fresh noise that coherence adds (latents have unit variance)."""
MAX_CONTROL_SCALE = 5
"""Scale of a ControlNet's residuals."""


@dataclass(frozen=True)
class Limit:
    """The values a number may take: `low` to `high`, `low` itself excluded when `above`."""

    low: float
    high: float
    whole: bool = False
    above: bool = False
    unit: str = ""

    def accepts(self, value: Any) -> bool:
        if self.whole and not is_whole(value):
            return False
        if not is_number(value):
            return False
        return (self.low < value if self.above else self.low <= value) and value <= self.high

    def allowed(self) -> str:
        """What is allowed, in words: 'a whole number from 1 to 8192'."""
        kind = "a whole number" if self.whole else "a number"
        unit = f" ({self.unit})" if self.unit else ""
        if self.above:
            return f"{kind} above {self.low} and at most {self.high}{unit}"
        return f"{kind} from {self.low} to {self.high}{unit}"

    def check(self, value: Any, name: str) -> Any:
        """`value` when it is allowed; else InputError naming `name`, the value and the range."""
        if not self.accepts(value):
            raise InputError(f"{name}: {show(value)} is not allowed; use {self.allowed()}")
        return value


FPS = Limit(0, MAX_FPS, above=True, unit="frames per second")
DURATION = Limit(0, MAX_DURATION, above=True, unit="seconds; 24 hours at most")
SIZE = Limit(1, MAX_SIZE, whole=True, unit="pixels")
STEPS = Limit(1, MAX_STEPS, whole=True)
GUIDANCE = Limit(0, MAX_GUIDANCE)
SEED = Limit(0, SEED_LIMIT - 1, whole=True)
PORT = Limit(1, 65535, whole=True)
FRAME = Limit(0, MAX_FRAMES - 1, whole=True)
FRACTION = Limit(0, 1)
BRANCHES = Limit(2, MAX_BRANCHES, whole=True, unit="images, both keyframes included")
TIME_BUDGET = Limit(0, MAX_DURATION, above=True, unit="seconds; 24 hours at most")
BATCH = Limit(1, MAX_BRANCHES, whole=True, unit="images")
NOISE = Limit(0, MAX_NOISE)
CONTROL_SCALE = Limit(0, MAX_CONTROL_SCALE)


def check_fps(value: Any, name: str = "fps") -> float:
    return FPS.check(value, name)


def check_duration(value: Any, name: str = "duration") -> float:
    return DURATION.check(value, name)


def check_size(value: Any, name: str) -> int:
    return SIZE.check(value, name)


def check_steps(value: Any, name: str = "steps") -> int:
    return STEPS.check(value, name)


def check_guidance(value: Any, name: str = "guidance_scale") -> float:
    return GUIDANCE.check(value, name)


def check_seed(value: Any, name: str = "seed") -> int:
    return SEED.check(value, name)


def check_length(duration: float, fps: float, name: str = "duration") -> int:
    """round(duration·fps) frames of a valid duration and fps, refused when more than
    MAX_FRAMES; the error names `name`."""
    frames = round(duration * fps)
    if frames > MAX_FRAMES:
        raise InputError(
            f"{name}: {duration:g} s at {fps:g} fps gives {frames} frames; "
            f"allowed: at most {MAX_FRAMES} frames"
        )
    return frames
