"""Prompt schedules, parameter schedules and interpolation curves for keyframed animations.

A prompt schedule is text with one ``FRAME: prompt`` line per keyframe.  A parameter
schedule is a plain number or Deforum-style keyframes such as ``0:(1.0), 30:(1.05)``.
Curves decide how fast an animation moves from one prompt keyframe to the next.

Every problem raises :class:`~latentmorph.errors.ScheduleError` with a one-line message that
names the source (file or field), the line where there is one, the offending text and what
is allowed.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from latentmorph.choices import CURVES
from latentmorph.errors import ScheduleError
from latentmorph.limits import MAX_FRAMES

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_INTEGER = re.compile(r"[0-9]+")
_NEGATIVE_INTEGER = re.compile(r"-[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PARAMETER_ITEM = re.compile(r"(?P<frame>[^:]*):\s*\((?P<value>.*)\)", re.DOTALL)
# a variable t, a function call or an arithmetic operator after an operand
_EXPRESSION = re.compile(r"\bt\b|[A-Za-z_]\w*\s*\(|[\w.)]\s*[-+*/%^]")
_QUOTE_LIMIT = 60
# a sine segment whose raw values spread less than this is treated as flat
_FLAT_SPREAD = 1e-9

_FRAMES_ALLOWED = "frames are non-negative integers such as 0 or 30"
_PROMPT_FORM = "expected 'FRAME: prompt' such as '0: a photo of a corgi'"
_NUMBER_ALLOWED = "values are plain finite numbers such as 1.05, -2 or 1e-3"
_FREQUENCIES_ALLOWED = "allowed: positive numbers separated by commas, such as '1.0, 2.0'"
_EXPRESSIONS_UNSUPPORTED = (
    "expressions of t are not supported; write keyframes with plain numbers "
    "such as '0:(1.0), 30:(1.05)'"
)


def _error(message: str) -> ScheduleError:
    """A ScheduleError whose message is folded onto one line."""
    return ScheduleError(" ".join(message.splitlines()))


def _quote(text: str) -> str:
    """``text`` quoted and escaped for a one-line message, shortened when long."""
    if len(text) > _QUOTE_LIMIT:
        text = text[:_QUOTE_LIMIT] + "…"
    return repr(text)


def _require_text(text: object, source: str) -> str:
    """``text`` itself when it is a string."""
    if not isinstance(text, str):
        raise _error(f"{source}: expected text, got {type(text).__name__} {_quote(repr(text))}")
    return text


def _frame_problem(token: str) -> str | None:
    """Why ``token`` is not a frame number, or None when it is one."""
    if _INTEGER.fullmatch(token):
        # compared as text first: int() of thousands of digits is refused (or slow)
        digits = token.lstrip("0") or "0"
        if len(digits) > len(str(MAX_FRAMES)) or int(digits) >= MAX_FRAMES:
            return f"is past the last frame allowed, {MAX_FRAMES - 1}"
        return None
    if _NEGATIVE_INTEGER.fullmatch(token):
        return "is negative"
    return "is not an integer"


def _is_frame(value: object, limit: int = MAX_FRAMES - 1) -> bool:
    """Whether ``value`` is an integer from 0 to ``limit`` (bools excluded): a frame number,
    or with ``limit=MAX_FRAMES`` a number of frames."""
    return (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value <= limit
    )


def _float(token: str) -> float | None:
    """The finite number written as ``token``, or None when it is not one."""
    if not _NUMBER.fullmatch(token):
        return None
    value = float(token)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- prompt schedules


@dataclass(frozen=True)
class PromptKeyframe:
    """A prompt that the animation shows exactly at ``frame``.

    ``line`` is the 1-based line of the schedule it came from (0 when built in code); it is
    only used in error messages and does not take part in equality.
    """

    frame: int
    prompt: str
    line: int = field(compare=False, default=0)


def parse_prompt_schedule(text: str, source: str = "prompts") -> list[PromptKeyframe]:
    """Keyframes of a schedule with one ``FRAME: prompt`` line per keyframe.

    FRAME is a non-negative integer and frames strictly increase from line to line; the
    prompt is the stripped text after the first colon and may contain colons.  Blank lines
    and lines starting with ``#`` are ignored; lines end with LF, CRLF or CR and the last
    one needs no line break.  A byte order mark at the start is ignored.
    """
    lines = _LINE_BREAK.split(_require_text(text, source).removeprefix("\ufeff"))
    keyframes: list[PromptKeyframe] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyframe = _parse_prompt_line(stripped, number, source)
        if keyframes:
            _check_order(keyframes[-1], keyframe, stripped, source)
        keyframes.append(keyframe)
    if not keyframes:
        raise _no_keyframes(source)
    return keyframes


def _parse_prompt_line(line: str, number: int, source: str) -> PromptKeyframe:
    """The keyframe written on one non-blank, non-comment line."""
    where = f"{source}:{number}"
    head, colon, prompt = line.partition(":")
    if not colon:
        raise _error(f"{where}: no colon in {_quote(line)}; {_PROMPT_FORM}")
    frame, prompt = head.strip(), prompt.strip()
    problem = _frame_problem(frame)
    if problem:
        raise _error(
            f"{where}: frame {_quote(frame)} in {_quote(line)} {problem}; {_FRAMES_ALLOWED}"
        )
    if not prompt:
        raise _error(f"{where}: empty prompt in {_quote(line)}; {_PROMPT_FORM}")
    return PromptKeyframe(int(frame), prompt, number)


def _check_order(earlier: PromptKeyframe, later: PromptKeyframe, text: str, source: str) -> None:
    """Raise unless ``later`` comes strictly after ``earlier``."""
    where = f"{source}:{later.line}" if later.line else source
    place = f" on line {earlier.line}" if earlier.line else ""
    if later.frame == earlier.frame:
        raise _error(
            f"{where}: frame {later.frame} in {_quote(text)} repeats frame {earlier.frame}"
            f"{place}; each frame may have only one prompt"
        )
    if later.frame < earlier.frame:
        raise _error(
            f"{where}: frame {later.frame} in {_quote(text)} is lower than frame {earlier.frame}"
            f"{place}; frames must increase from line to line"
        )


def _no_keyframes(source: str) -> ScheduleError:
    """The error for a schedule without any keyframe."""
    return _error(f"{source}: no keyframes; {_PROMPT_FORM}, at least one line of them")


def _check_keyframes(keyframes: Iterable[PromptKeyframe], source: str) -> list[PromptKeyframe]:
    """``keyframes`` as a list, checked to be what parse_prompt_schedule can return."""
    checked = list(keyframes)
    if not checked:
        raise _no_keyframes(source)
    for keyframe in checked:
        text = f"{keyframe.frame}: {keyframe.prompt}"
        if not _is_frame(keyframe.frame):
            raise _error(f"{source}: frame {keyframe.frame!r} in {_quote(text)}; {_FRAMES_ALLOWED}")
        prompt = keyframe.prompt
        if not prompt or prompt != prompt.strip() or _LINE_BREAK.search(prompt):
            raise _error(
                f"{source}: prompt {_quote(prompt)} of frame {keyframe.frame}; prompts are "
                "non-empty single lines without surrounding whitespace"
            )
    for earlier, later in zip(checked, checked[1:]):
        _check_order(earlier, later, f"{later.frame}: {later.prompt}", source)
    return checked


def check_prompt_keyframes(
    keyframes: Iterable[PromptKeyframe], source: str = "prompts"
) -> list[PromptKeyframe]:
    """``keyframes`` as a list, checked to be what parse_prompt_schedule can return: frames
    increasing, prompts non-empty single lines."""
    return _check_keyframes(keyframes, source)


def format_prompt_schedule(keyframes: Iterable[PromptKeyframe]) -> str:
    """Schedule text that parse_prompt_schedule reads back as ``keyframes``."""
    checked = _check_keyframes(keyframes, "keyframes")
    return "".join(f"{keyframe.frame}: {keyframe.prompt}\n" for keyframe in checked)


def scale_keyframes(
    keyframes: Iterable[PromptKeyframe], frames: int, source: str = "prompts"
) -> list[PromptKeyframe]:
    """``keyframes`` stretched or squeezed so that the last one lands on frame ``frames - 1``.

    Every frame is multiplied by ``(frames - 1) / last frame`` and rounded half up, exactly;
    a single keyframe at frame 0 stays there.  Raises ScheduleError when two keyframes would
    land on the same frame, i.e. when the video is too short for that many keyframes.
    """
    checked = _check_keyframes(keyframes, source)
    if not _is_frame(frames, MAX_FRAMES) or frames < 1:
        raise _error(
            f"{source}: cannot fit keyframes into {frames!r} frames; allowed: 1 to {MAX_FRAMES}"
        )
    last = checked[-1].frame
    scaled = [replace(k, frame=_scale_frame(k.frame, frames - 1, last)) for k in checked]
    for index in range(1, len(scaled)):
        if scaled[index].frame == scaled[index - 1].frame:
            before, after = checked[index - 1], checked[index]
            raise _too_short(frames, checked, before, after, scaled[index].frame, source)
    return scaled


def _scale_frame(frame: int, target: int, last: int) -> int:
    """``frame * target / last`` rounded half up (0 when ``last`` is 0)."""
    return (2 * frame * target + last) // (2 * last) if last else 0


def _too_short(
    frames: int,
    keyframes: list[PromptKeyframe],
    first: PromptKeyframe,
    second: PromptKeyframe,
    landing: int,
    source: str,
) -> ScheduleError:
    """The error for two keyframes that would land on the same frame."""
    smallest_gap = min(b.frame - a.frame for a, b in zip(keyframes, keyframes[1:]))
    enough = -(-keyframes[-1].frame // smallest_gap) + 1
    lines = f" (lines {first.line} and {second.line})" if first.line and second.line else ""
    return _error(
        f"{source}: the duration is too short for {len(keyframes)} keyframes: {frames} frames "
        f"would put frames {first.frame} and {second.frame}{lines} both on frame {landing}; "
        f"allowed: a duration and fps giving more frames ({enough} always work)"
    )


# ----------------------------------------------------------------------- parameter schedules


@dataclass(frozen=True)
class ParameterSchedule:
    """A number that changes over the frames of an animation, keyframed as (frame, value).

    Frames are non-negative integers in strictly increasing order and values are finite.
    Between keyframes the value changes linearly; before the first keyframe it is the first
    value and after the last keyframe the last value.
    """

    points: tuple[tuple[int, float], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", _checked_points(self.points))

    @classmethod
    def constant(cls, value: float) -> ParameterSchedule:
        """The schedule that is ``value`` on every frame."""
        return cls(((0, value),))

    @property
    def is_constant(self) -> bool:
        """Whether the value is the same on every frame."""
        return len({value for _, value in self.points}) == 1

    def value_at(self, frame: float) -> float:
        """The value at ``frame`` (which may lie between whole frames)."""
        frames, values = zip(*self.points)
        return float(np.interp(frame, frames, values))

    def values(self, frames: int) -> np.ndarray:
        """The values at frames 0 .. ``frames - 1`` as a float64 array."""
        if not _is_frame(frames, MAX_FRAMES):
            raise _error(f"frames: {frames!r} frames; allowed: 0 to {MAX_FRAMES}")
        keys, values = zip(*self.points)
        return np.interp(np.arange(frames, dtype=np.float64), keys, values)

    def format(self) -> str:
        """Canonical text that parse_parameter_schedule reads back as this schedule.

        A single keyframe at frame 0 prints as the plain number; anything else prints
        every keyframe as ``FRAME:(VALUE)`` separated by ``", "``.
        """
        if len(self.points) == 1 and self.points[0][0] == 0:
            return repr(self.points[0][1])
        return ", ".join(f"{frame}:({value!r})" for frame, value in self.points)


def _checked_points(points: Iterable[tuple[int, float]]) -> tuple[tuple[int, float], ...]:
    """``points`` as (int, float) pairs, checked to form a valid schedule."""
    checked = tuple((frame, value) for frame, value in points)
    if not checked:
        raise _error("ParameterSchedule: no points; allowed: one or more (frame, value) pairs")
    for frame, value in checked:
        if not _is_frame(frame):
            raise _error(f"ParameterSchedule: frame {frame!r}; {_FRAMES_ALLOWED}")
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise _error(f"ParameterSchedule: value {value!r} at frame {frame}; {_NUMBER_ALLOWED}")
    for (before, _), (after, _) in zip(checked, checked[1:]):
        if after <= before:
            raise _error(
                f"ParameterSchedule: frame {after} follows frame {before}; "
                "frames must strictly increase"
            )
    return tuple((int(frame), float(value)) for frame, value in checked)


def parse_parameter_schedule(
    text: str | float | int,
    source: str = "schedule",
    minimum: float | None = None,
    maximum: float | None = None,
) -> ParameterSchedule:
    """The schedule written as a plain number or as ``FRAME:(VALUE)`` items.

    Items are separated by commas, whitespace may surround every part, frames are
    non-negative integers in strictly increasing order and values are plain numbers
    (``1.05``, ``-2``, ``+.5``, ``1e-3``); every value must lie within ``minimum`` and
    ``maximum`` when they are given.  Expressions of ``t`` are not supported.
    """
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        items = [(0, _number_value(text, source), str(text))]
    else:
        items = _parse_items(_require_text(text, source), source)
    for _, value, item in items:
        _check_range(value, item, source, minimum, maximum)
    return ParameterSchedule(tuple((frame, value) for frame, value, _ in items))


def _number_value(number: numbers.Real, source: str) -> float:
    """``number`` as a float, checked to be finite."""
    try:
        value = float(number)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise _error(f"{source}: {_quote(str(number))} is not finite; {_NUMBER_ALLOWED}")
    return value


def _parse_items(text: str, source: str) -> list[tuple[int, float, str]]:
    """(frame, value, item text) for each item of a schedule text."""
    stripped = text.strip()
    if not stripped:
        raise _error(
            f"{source}: empty schedule {_quote(text)}; allowed: a number such as '1.0' "
            "or keyframes such as '0:(1.0), 30:(1.05)'"
        )
    constant = _float(stripped)
    if constant is not None:
        return [(0, constant, stripped)]
    items = [_parse_item(item.strip(), source) for item in stripped.split(",")]
    for (before, _, before_text), (after, _, after_text) in zip(items, items[1:]):
        if after <= before:
            raise _error(
                f"{source}: frame {after} in {_quote(after_text)} does not come after frame "
                f"{before} in {_quote(before_text)}; frames must strictly increase"
            )
    return items


def _parse_item(item: str, source: str) -> tuple[int, float, str]:
    """(frame, value, item) for one ``FRAME:(VALUE)`` item."""
    if not item:
        raise _error(f"{source}: empty item (an extra comma?); allowed: FRAME:(VALUE) items")
    match = _PARAMETER_ITEM.fullmatch(item)
    if not match:
        if _EXPRESSION.search(item):
            raise _error(
                f"{source}: {_quote(item)} looks like an expression; {_EXPRESSIONS_UNSUPPORTED}"
            )
        raise _error(
            f"{source}: item {_quote(item)} is not of the form FRAME:(VALUE); allowed: "
            "items such as '0:(1.0)' separated by commas, or a plain number"
        )
    frame, value_text = match["frame"].strip(), match["value"].strip()
    problem = _frame_problem(frame)
    if problem:
        raise _error(
            f"{source}: frame {_quote(frame)} in {_quote(item)} {problem}; {_FRAMES_ALLOWED}"
        )
    value = _float(value_text)
    if value is None:
        if _EXPRESSION.search(value_text):
            raise _error(
                f"{source}: value {_quote(value_text)} in {_quote(item)} is an expression; "
                f"{_EXPRESSIONS_UNSUPPORTED}"
            )
        raise _error(
            f"{source}: value {_quote(value_text)} in {_quote(item)} is not a number; "
            f"{_NUMBER_ALLOWED}"
        )
    return int(frame), value, item


def _check_range(
    value: float, item: str, source: str, minimum: float | None, maximum: float | None
) -> None:
    """Raise unless ``value`` lies within the optional bounds."""
    if (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return
    if minimum is not None and maximum is not None:
        allowed = f"between {minimum} and {maximum}"
    elif minimum is not None:
        allowed = f"at least {minimum}"
    else:
        allowed = f"at most {maximum}"
    raise _error(f"{source}: value {value!r} in {_quote(item)} is out of range; allowed: {allowed}")


# ---------------------------------------------------------------------------------- curves


def parse_frequencies(text: str, source: str = "frequencies") -> tuple[float, ...]:
    """The positive numbers in a comma-separated list such as ``"1.0, 2.0"``."""
    stripped = _require_text(text, source).strip()
    if not stripped:
        raise _error(f"{source}: empty; {_FREQUENCIES_ALLOWED}")
    return tuple(_frequency(item.strip(), source) for item in stripped.split(","))


def _frequency(item: str, source: str) -> float:
    """One positive frequency."""
    value = _float(item)
    if value is None or value <= 0:
        raise _error(f"{source}: {_quote(item)} is not a positive number; {_FREQUENCIES_ALLOWED}")
    return value


def parse_curve(text: str, source: str = "curve") -> ParameterSchedule:
    """A keyframed curve such as ``0: (0.0), 50: (1.0), 60: (0.5)`` with values in [0, 1]."""
    return parse_parameter_schedule(text, source, minimum=0.0, maximum=1.0)


def segment_weights(
    kind: str,
    keyframe_frames: Sequence[int],
    frames: int,
    frequencies: Sequence[float] = (1.0,),
    curve: ParameterSchedule | None = None,
) -> list[tuple[int, float]]:
    """(segment, t) for every output frame 0 .. ``frames - 1``.

    Segment i runs from keyframe i to keyframe i + 1 and t in [0, 1] is the weight of
    keyframe i + 1.  Frames before the first keyframe are (0, 0.0); frames at or after the
    last keyframe are (last segment, 1.0), or (0, 0.0) for a single keyframe.

    Within a segment from frame a to frame b, with u = (k - a) / (b - a):

    * ``linear``: t = u.
    * ``sine``: s = sum over the frequencies f of sin(pi * f * u) ** 2, min-max normalised
      over the frames a .. b.  t starts at 0; it ends at 1 only when s is largest at u = 1
      (frequency 0.5, for instance, gives a monotone ease-in-out), whereas frequency 1
      rises to 1 mid-segment and falls back towards 0.  When s is flat over the segment
      (spread below 1e-9, e.g. a one-frame segment with whole frequencies), t = u.
    * ``curve``: t = curve.value_at(k), the curve being indexed by output frame.
    """
    weight = _segment_weight(kind, frequencies, curve)
    keys = _check_keyframe_frames(keyframe_frames)
    if not _is_frame(frames, MAX_FRAMES):
        raise _error(f"frames: {frames!r} frames; allowed: 0 to {MAX_FRAMES}")
    weights = [(0, 0.0)] * min(frames, keys[0])
    for index, (start, end) in enumerate(zip(keys, keys[1:])):
        if start >= frames:
            break
        ts = weight(start, end)
        weights.extend((index, float(t)) for t in ts[: min(end, frames) - start])
    after_last = (len(keys) - 2, 1.0) if len(keys) > 1 else (0, 0.0)
    weights.extend([after_last] * (frames - len(weights)))
    return weights


def _segment_weight(
    kind: str, frequencies: Sequence[float], curve: ParameterSchedule | None
) -> Callable[[int, int], np.ndarray]:
    """A function giving t for the frames start .. end of one segment, for ``kind``."""
    if kind == "linear":
        return _positions
    if kind == "sine":
        checked = _check_frequencies(frequencies)
        return lambda start, end: _sine_weights(start, end, checked)
    if kind == "curve":
        checked_curve = _check_curve(curve)
        return lambda start, end: _curve_weights(start, end, checked_curve)
    raise _error(f"curve: unknown curve kind {_quote(str(kind))}; allowed: {', '.join(CURVES)}")


def _positions(start: int, end: int) -> np.ndarray:
    """u = (k - start) / (end - start) for the frames k = start .. end."""
    return (np.arange(start, end + 1) - start) / (end - start)


def _sine_weights(start: int, end: int, frequencies: tuple[float, ...]) -> np.ndarray:
    """t for a sine segment: Σ sin²(π·f·u/2), min-max normalised (linear when flat).

    Frequency 1 is one smooth ease from keyframe i to i+1; higher frequencies swing back and
    forth between them (odd ones arrive at i+1, even ones come back to i).
    """
    u = _positions(start, end)
    s = sum(np.sin(np.pi * f * u / 2) ** 2 for f in frequencies)
    low, high = s.min(), s.max()
    if high - low < _FLAT_SPREAD:
        return u
    return (s - low) / (high - low)


def _curve_weights(start: int, end: int, curve: ParameterSchedule) -> np.ndarray:
    """t for a keyframed-curve segment, clipped to [0, 1] against rounding."""
    ts = np.array([curve.value_at(k) for k in range(start, end + 1)])
    return np.clip(ts, 0.0, 1.0)


def _check_frequencies(frequencies: Sequence[float]) -> tuple[float, ...]:
    """``frequencies`` as floats, checked to be a non-empty list of positive numbers."""
    checked = tuple(frequencies)
    valid = all(isinstance(f, numbers.Real) and math.isfinite(f) and f > 0 for f in checked)
    if not checked or not valid:
        raise _error(f"frequencies: {_quote(repr(checked))}; {_FREQUENCIES_ALLOWED}")
    return tuple(float(f) for f in checked)


def _check_curve(curve: ParameterSchedule | None) -> ParameterSchedule:
    """``curve``, checked to exist and to stay within [0, 1]."""
    if curve is None:
        raise _error("curve: the 'curve' kind needs a keyframed curve such as '0:(0), 60:(1)'")
    outside = [value for _, value in curve.points if not 0.0 <= value <= 1.0]
    if outside:
        raise _error(f"curve: value {outside[0]!r} in {_quote(curve.format())}; allowed: 0 to 1")
    return curve


def _check_keyframe_frames(keyframe_frames: Sequence[int]) -> list[int]:
    """``keyframe_frames`` as a list, checked to be non-negative and strictly increasing."""
    keys = list(keyframe_frames)
    if not keys:
        raise _error("keyframes: no keyframe frames; allowed: one or more increasing frames")
    for index, key in enumerate(keys):
        if not _is_frame(key):
            raise _error(f"keyframes: keyframe {index} at frame {key!r}; {_FRAMES_ALLOWED}")
    for index, (before, after) in enumerate(zip(keys, keys[1:]), start=1):
        if after <= before:
            raise _error(
                f"keyframes: keyframe {index} at frame {after} does not come after frame "
                f"{before}; keyframe frames must strictly increase"
            )
    return [int(key) for key in keys]
