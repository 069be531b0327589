import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from latentmorph.animation.schedules import (
    ParameterSchedule,
    PromptKeyframe,
    format_prompt_schedule,
    parse_curve,
    parse_frequencies,
    parse_parameter_schedule,
    parse_prompt_schedule,
    scale_keyframes,
    segment_weights,
)
from latentmorph.choices import CURVES
from latentmorph.errors import ScheduleError

# ------------------------------------------------------------------------------ strategies

prompts = (
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)
    .map(str.strip)
    .filter(bool)
)
increasing_frames = st.lists(st.integers(0, 10_000), min_size=1, max_size=8, unique=True).map(
    sorted
)
spaces = st.sampled_from(["", " ", "  ", "\t", " \t "])
filler_lines = st.one_of(
    spaces,
    st.builds(
        lambda pad, note: f"{pad}#{note}",
        spaces,
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")),
    ),
)


@st.composite
def keyframe_lists(draw):
    frames = draw(increasing_frames)
    return [PromptKeyframe(frame, draw(prompts)) for frame in frames]


@st.composite
def schedule_lines(draw, keyframes):
    """Lines of a schedule for ``keyframes`` with fillers, and the index of each keyframe line."""
    lines, indices = [], []
    for keyframe in keyframes:
        lines += draw(st.lists(filler_lines, max_size=2))
        zeros = draw(st.sampled_from(["", "0", "00"]))
        pad = [draw(spaces) for _ in range(4)]
        indices.append(len(lines))
        lines.append(f"{pad[0]}{zeros}{keyframe.frame}{pad[1]}:{pad[2]}{keyframe.prompt}{pad[3]}")
    lines += draw(st.lists(filler_lines, max_size=2))
    return lines, indices


def join_lines(lines, newline, trailing):
    return newline.join(lines) + (newline if trailing else "")


newlines = st.sampled_from(["\n", "\r\n", "\r"])


def one_line_error(call, *args, **kwargs):
    """The message of the ScheduleError that call raises, checked to be one line."""
    with pytest.raises(ScheduleError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    return message


def parses_or_schedule_error(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except ScheduleError as error:
        assert len(str(error).splitlines()) == 1
        return None


# ------------------------------------------------------------------------ prompt schedules


@given(keyframe_lists(), st.data(), newlines, st.booleans())
def test_every_valid_prompt_schedule_parses_to_its_keyframes(keyframes, data, newline, trailing):
    lines, indices = data.draw(schedule_lines(keyframes))
    parsed = parse_prompt_schedule(join_lines(lines, newline, trailing))
    assert parsed == keyframes
    assert [k.line for k in parsed] == [i + 1 for i in indices]


@given(keyframe_lists())
def test_format_then_parse_is_identity(keyframes):
    text = format_prompt_schedule(keyframes)
    assert text.endswith("\n") and text.count("\n") == len(keyframes)
    assert parse_prompt_schedule(text) == keyframes
    assert format_prompt_schedule(parse_prompt_schedule(text)) == text


@given(st.text())
def test_random_text_parses_or_raises_schedule_error(text):
    parses_or_schedule_error(parse_prompt_schedule, text)


@given(keyframe_lists(), st.data())
def test_duplicate_frame_is_rejected_on_its_line(keyframes, data):
    index = data.draw(st.integers(0, len(keyframes) - 1))
    copy = PromptKeyframe(keyframes[index].frame, data.draw(prompts))
    text = format_prompt_schedule(keyframes).split("\n")[:-1]
    text.insert(index + 1, f"{copy.frame}: {copy.prompt}")
    message = one_line_error(parse_prompt_schedule, "\n".join(text), "a.txt")
    assert message.startswith(f"a.txt:{index + 2}: ")
    assert f"repeats frame {copy.frame} on line {index + 1}" in message


@given(keyframe_lists().filter(lambda ks: len(ks) >= 2), st.data())
def test_decreasing_frames_are_rejected_on_their_line(keyframes, data):
    i = data.draw(st.integers(0, len(keyframes) - 2))
    j = data.draw(st.integers(i + 1, len(keyframes) - 1))
    keyframes[i], keyframes[j] = keyframes[j], keyframes[i]
    text = "\n".join(f"{k.frame}: {k.prompt}" for k in keyframes)
    message = one_line_error(parse_prompt_schedule, text)
    # the first line out of order is i + 1 (0-based), comparing to the swapped-in frame above
    assert message.startswith(f"prompts:{i + 2}: ")
    assert f"lower than frame {keyframes[i].frame} on line {i + 1}" in message


bad_lines = st.one_of(
    # missing colon (a BOM would be dropped at the start of the text)
    prompts.filter(lambda p: ":" not in p and not p.startswith("#") and "\ufeff" not in p),
    st.builds("{}: {}".format, st.integers(-1000, -1), prompts),  # negative frame
    st.builds(
        "{}: {}".format, st.from_regex(r"[^\s:#\d\ufeff-][^:\r\n]*", fullmatch=True), prompts
    ),
    st.builds("{}:{}".format, st.integers(0, 99), spaces),  # empty prompt
)


@given(keyframe_lists(), st.data(), bad_lines)
def test_bad_lines_are_rejected_with_their_line_number(keyframes, data, bad):
    lines = format_prompt_schedule(keyframes).split("\n")[:-1]
    index = data.draw(st.integers(0, len(lines)))
    lines.insert(index, bad)
    message = one_line_error(parse_prompt_schedule, "\n".join(lines), "p.txt")
    assert message.startswith(f"p.txt:{index + 1}: ")


@given(st.lists(filler_lines, max_size=5), newlines)
def test_schedule_without_keyframes_is_rejected(lines, newline):
    message = one_line_error(parse_prompt_schedule, newline.join(lines), "p.txt")
    assert message.startswith("p.txt: no keyframes")


def test_last_line_without_newline_is_kept_whole():
    text = "0: a photo of a corgi\n60: a photo of a lion"
    assert parse_prompt_schedule(text)[-1] == PromptKeyframe(60, "a photo of a lion")
    assert parse_prompt_schedule("5: x")[-1].prompt == "x"


def test_windows_line_endings_colons_comments_and_blank_lines():
    text = "\ufeff# intro\r\n\r\n  0 :  photo: a cat  \r\n\t# later\r\n30:dog: big\r\n"
    parsed = parse_prompt_schedule(text)
    assert parsed == [PromptKeyframe(0, "photo: a cat"), PromptKeyframe(30, "dog: big")]
    assert [k.line for k in parsed] == [3, 5]


def test_first_keyframe_may_be_later_than_zero():
    assert parse_prompt_schedule("12: a\n40: b")[0].frame == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0: a\nno colon here", "p.txt:2: no colon in 'no colon here'; expected 'FRAME: prompt'"),
        ("0: a\n\n7:  \n", "p.txt:3: empty prompt in '7:'; expected 'FRAME: prompt'"),
        ("# c\n-3: a", "p.txt:2: frame '-3' in '-3: a' is negative; frames are non-negative"),
        ("1.5: a", "p.txt:1: frame '1.5' in '1.5: a' is not an integer; frames are non-negative"),
        ("x: a", "p.txt:1: frame 'x' in 'x: a' is not an integer; frames are non-negative"),
        (
            "0: a\n# c\n\n0: b",
            "p.txt:4: frame 0 in '0: b' repeats frame 0 on line 1; each frame may have only one",
        ),
        (
            "0: a\n30: b\n\n20: c",
            "p.txt:4: frame 20 in '20: c' is lower than frame 30 on line 2; frames must increase",
        ),
        ("\n# only a comment\n", "p.txt: no keyframes; expected 'FRAME: prompt'"),
    ],
)
def test_prompt_schedule_error_messages(text, expected):
    assert one_line_error(parse_prompt_schedule, text, "p.txt").startswith(expected)


def test_error_messages_stay_on_one_line_for_odd_text():
    message = one_line_error(parse_prompt_schedule, "0: a\nx\u2028y: b", "odd\nname")
    assert "odd name:2:" in message and "\\u2028" in message


@pytest.mark.parametrize(
    "keyframes",
    [
        [PromptKeyframe(0, "")],
        [PromptKeyframe(0, "two\nlines")],
        [PromptKeyframe(0, " padded")],
        [PromptKeyframe(-1, "a")],
        [PromptKeyframe(5, "a"), PromptKeyframe(5, "b")],
        [],
    ],
)
def test_format_refuses_keyframes_that_would_not_parse_back(keyframes):
    assert one_line_error(format_prompt_schedule, keyframes).startswith("keyframes")


# ------------------------------------------------------------------------- scale_keyframes


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


@pytest.mark.parametrize("frames", [0, -5])
def test_scale_needs_at_least_one_frame(frames):
    message = one_line_error(scale_keyframes, [PromptKeyframe(0, "a")], frames)
    assert "allowed: 1 to 1000000" in message


@pytest.mark.parametrize("keys", [[0, 60], [0, 30, 60], [10, 20, 100], [0, 1, 2, 3], [7], [0]])
def test_scale_keyframes_is_exact(keys):
    keyframes = [PromptKeyframe(frame, f"p{frame}") for frame in keys]
    for frames in range(1, 400):
        expected = [half_up(Fraction(f * (frames - 1), keys[-1])) if keys[-1] else 0 for f in keys]
        if len(set(expected)) < len(keys):
            assert "too short" in one_line_error(scale_keyframes, keyframes, frames)
            continue
        scaled = scale_keyframes(keyframes, frames)
        assert [k.frame for k in scaled] == expected
        assert [k.prompt for k in scaled] == [k.prompt for k in keyframes]
        assert keys[-1] == 0 or scaled[-1].frame == frames - 1


@pytest.mark.parametrize(
    ("duration", "fps", "frames"), [(5, 24, 120), (2.5, 30, 75), (1, 12.5, 12), (3.3, 29.97, 99)]
)
def test_scale_to_duration_ends_on_the_last_frame(duration, fps, frames):
    keyframes = parse_prompt_schedule("0: a\n10: b\n60: c")
    scaled = scale_keyframes(keyframes, round(duration * fps))
    assert scaled[-1].frame == frames - 1
    assert scaled[1].frame == half_up(Fraction(10 * (frames - 1), 60))


def test_scale_examples():
    scaled = scale_keyframes(parse_prompt_schedule("0: a\n30: b\n60: c"), 100)
    assert [k.frame for k in scaled] == [0, 50, 99]  # 49.5 rounds up
    assert [k.line for k in scaled] == [1, 2, 3]
    assert [k.frame for k in scale_keyframes([PromptKeyframe(20, "a")], 9)] == [8]


def test_scale_too_short_message():
    keyframes = parse_prompt_schedule("0: a\n30: b\n31: c\n60: d", "p.txt")
    message = one_line_error(scale_keyframes, keyframes, 20, "p.txt")
    assert message == (
        "p.txt: the duration is too short for 4 keyframes: 20 frames would put frames 30 and "
        "31 (lines 2 and 3) both on frame 10; allowed: a duration and fps giving more frames "
        "(61 always work)"
    )


@given(increasing_frames, st.integers(1, 3000))
def test_scaled_keyframes_increase_and_end_on_the_last_frame(keys, frames):
    keyframes = [PromptKeyframe(frame, "p") for frame in keys]
    try:
        scaled = [k.frame for k in scale_keyframes(keyframes, frames)]
    except ScheduleError as error:
        enough = int(re.search(r"\((\d+) always work\)", str(error)).group(1))
        assert enough > frames
        scaled = [k.frame for k in scale_keyframes(keyframes, enough)]
        frames = enough
    assert all(a < b for a, b in zip(scaled, scaled[1:]))
    assert scaled[-1] == (frames - 1 if keys[-1] else 0)


# --------------------------------------------------------------------- parameter schedules

values = st.floats(allow_nan=False, allow_infinity=False)
moderate_values = st.floats(-1e6, 1e6)


@st.composite
def schedules(draw, value_strategy=values):
    frames = draw(increasing_frames)
    return ParameterSchedule(tuple((frame, draw(value_strategy)) for frame in frames))


@given(schedules())
def test_format_then_parse_gives_the_same_schedule(schedule):
    text = schedule.format()
    assert parse_parameter_schedule(text) == schedule
    assert parse_parameter_schedule(text).format() == text


@given(schedules(), st.data())
def test_written_schedules_parse_with_any_spacing_and_number_style(schedule, data):
    def number(value):
        style = data.draw(st.sampled_from([repr, "{:.17e}".format, "{:.17E}".format]))
        sign = "+" if math.copysign(1.0, value) > 0 and data.draw(st.booleans()) else ""
        return sign + style(value)

    items = []
    for frame, value in schedule.points:
        pad = [data.draw(st.sampled_from(["", " ", "\t", "\n "])) for _ in range(5)]
        items.append(f"{pad[0]}{frame}{pad[1]}:{pad[2]}({pad[3]}{number(value)}{pad[4]})")
    assert parse_parameter_schedule(",".join(items)) == schedule


@given(schedules(moderate_values), st.data())
def test_value_at_is_linear_between_points_and_held_outside(schedule, data):
    points = schedule.points
    first, last = points[0], points[-1]
    assert schedule.value_at(first[0] - data.draw(st.floats(0, 1e4))) == first[1]
    assert schedule.value_at(last[0] + data.draw(st.floats(0, 1e4))) == last[1]
    for frame, value in points:
        assert schedule.value_at(frame) == value
    for (a, va), (b, vb) in zip(points, points[1:]):
        x = data.draw(st.floats(a, b))
        expected = va + (vb - va) * (x - a) / (b - a)
        assert schedule.value_at(x) == pytest.approx(expected, abs=1e-6)
        assert min(va, vb) - 1e-6 <= schedule.value_at(x) <= max(va, vb) + 1e-6


@given(schedules(moderate_values), st.integers(0, 200))
def test_values_are_value_at_for_each_frame(schedule, frames):
    array = schedule.values(frames)
    assert array.shape == (frames,) and array.dtype == np.float64
    assert list(array) == [schedule.value_at(k) for k in range(frames)]


@given(st.text())
def test_random_text_parameter_schedule_parses_or_raises_schedule_error(text):
    parses_or_schedule_error(parse_parameter_schedule, text)


@given(
    st.text(alphabet=st.sampled_from("0123456789:(),.+-eEt \n"), max_size=30),
    st.one_of(st.none(), moderate_values),
    st.one_of(st.none(), moderate_values),
)
def test_schedule_like_text_parses_or_raises_schedule_error(text, minimum, maximum):
    parses_or_schedule_error(parse_parameter_schedule, text, "s", minimum, maximum)


def mutate(schedule: ParameterSchedule, kind: str, index: int, junk: str) -> str:
    items = [f"{frame}:({value!r})" for frame, value in schedule.points]
    frame, value = schedule.points[index]
    if kind == "duplicate":
        items.insert(index + 1, f"{frame}:({value!r})")
    elif kind == "decrease":
        items.append(f"{schedule.points[-1][0] - 1 - index}:(1)")
    elif kind == "no colon":
        items[index] = f"{frame}({value!r})"
    elif kind == "no parentheses":
        items[index] = f"{frame}:{value!r}"
    elif kind == "bad value":
        items[index] = f"{frame}:({junk})"
    elif kind == "negative frame":
        items[index] = f"-{frame + 1}:({value!r})"
    else:
        items.insert(index, "")
    return ", ".join(items)


@given(
    schedules(),
    st.sampled_from(
        ["duplicate", "decrease", "no colon", "no parentheses", "bad value", "negative frame", ","]
    ),
    st.data(),
    st.from_regex(r"[a-zA-Z_*/ ()]*[a-zA-Z_*/]+[a-zA-Z_*/ ()]*", fullmatch=True),
)
def test_mutated_parameter_schedules_are_rejected(schedule, kind, data, junk):
    assume(kind != "decrease" or schedule.points[-1][0] > 0)
    index = data.draw(st.integers(0, len(schedule.points) - 1))
    message = one_line_error(parse_parameter_schedule, mutate(schedule, kind, index, junk), "zoom")
    assert message.startswith("zoom: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "zoom: empty schedule ''; allowed: a number such as '1.0' or keyframes"),
        ("0:(1), 30(2)", "zoom: item '30(2)' is not of the form FRAME:(VALUE); allowed:"),
        ("0:(1),,30:(2)", "zoom: empty item (an extra comma?); allowed: FRAME:(VALUE) items"),
        ("0:(1), -3:(2)", "zoom: frame '-3' in '-3:(2)' is negative; frames are non-negative"),
        ("a:(1)", "zoom: frame 'a' in 'a:(1)' is not an integer; frames are non-negative"),
        ("0:(1), 0:(2)", "zoom: frame 0 in '0:(2)' does not come after frame 0 in '0:(1)';"),
        ("5:(1), 2:(2)", "zoom: frame 2 in '2:(2)' does not come after frame 5 in '5:(1)';"),
        ("0:(1.2.3)", "zoom: value '1.2.3' in '0:(1.2.3)' is not a number; values are plain"),
        ("0:(1e999)", "zoom: value '1e999' in '0:(1e999)' is not a number; values are plain"),
        ("0:(nan)", "zoom: value 'nan' in '0:(nan)' is not a number; values are plain"),
        ("0:(1+0.002*t)", "zoom: value '1+0.002*t' in '0:(1+0.002*t)' is an expression; "),
        ("0:(sin(t))", "zoom: value 'sin(t)' in '0:(sin(t))' is an expression; expressions of t"),
        ("1 + 0.5*t", "zoom: '1 + 0.5*t' looks like an expression; expressions of t are not"),
        ("0:(max(1, t))", "zoom: '0:(max(1' looks like an expression; expressions of t are not"),
    ],
)
def test_parameter_schedule_error_messages(text, expected):
    assert one_line_error(parse_parameter_schedule, text, "zoom").startswith(expected)


@pytest.mark.parametrize(
    ("text", "minimum", "maximum", "allowed"),
    [
        ("0:(0.5), 9:(1.5)", 0, 1, "value 1.5 in '9:(1.5)' is out of range; allowed: between 0"),
        ("-2", 0, None, "value -2.0 in '-2' is out of range; allowed: at least 0"),
        (7, None, 3, "value 7.0 in '7' is out of range; allowed: at most 3"),
    ],
)
def test_values_out_of_range_are_rejected(text, minimum, maximum, allowed):
    message = one_line_error(parse_parameter_schedule, text, "strength", minimum, maximum)
    assert message.startswith(f"strength: {allowed}")


def test_numbers_and_number_text_are_constant_schedules():
    for given_value in (1, 1.5, " +1.5 ", "1e-3", "-.5", np.float64(2.0)):
        schedule = parse_parameter_schedule(given_value)
        assert schedule.is_constant and len(schedule.points) == 1
        assert schedule == ParameterSchedule.constant(float(str(given_value).strip()))
    assert ParameterSchedule.constant(1.05).format() == "1.05"
    assert parse_parameter_schedule("0:(2)").format() == "2.0"


@pytest.mark.parametrize("bad", [True, None, [1.0], float("inf"), float("nan"), 10**400])
def test_non_text_non_finite_inputs_are_rejected(bad):
    assert one_line_error(parse_parameter_schedule, bad, "angle").startswith("angle: ")


def test_first_keyframe_later_than_zero_holds_its_value_before():
    schedule = parse_parameter_schedule("10:(2.0), 20:(4.0)")
    expected = [2.0] * 11 + [2.0 + 0.2 * k for k in range(1, 10)] + [4.0] * 5
    np.testing.assert_allclose(schedule.values(25), expected)
    assert schedule.value_at(-3) == 2.0 and schedule.value_at(15) == 3.0
    assert not schedule.is_constant
    assert parse_parameter_schedule("3:(1), 9:(1)").is_constant


@pytest.mark.parametrize(
    "points", [(), ((0, float("nan")),), ((-1, 1.0),), ((3, 1.0), (3, 2.0)), ((0.5, 1.0),)]
)
def test_invalid_points_are_rejected(points):
    assert one_line_error(ParameterSchedule, points).startswith("ParameterSchedule: ")


# ---------------------------------------------------------------------------------- curves


def test_parse_frequencies():
    assert parse_frequencies("1.0, 2.0") == (1.0, 2.0)
    assert parse_frequencies(" 0.5 ") == (0.5,)


@pytest.mark.parametrize("text", ["", "  ", "1, 0", "1,-2", "1,,2", "a", "inf", "1;2"])
def test_bad_frequencies_are_rejected(text):
    message = one_line_error(parse_frequencies, text, "--frequencies")
    assert message.startswith("--frequencies: ")
    assert "allowed: positive numbers separated by commas, such as '1.0, 2.0'" in message


@given(st.text())
def test_random_frequencies_parse_or_raise_schedule_error(text):
    result = parses_or_schedule_error(parse_frequencies, text)
    assert result is None or all(f > 0 for f in result)


def test_parse_curve_and_its_range():
    curve = parse_curve("0: (0.0), 50: (1.0), 60: (0.5)")
    assert curve.points == ((0, 0.0), (50, 1.0), (60, 0.5))
    message = one_line_error(parse_curve, "0:(0), 10:(1.5)", "--curve")
    assert message.startswith("--curve: value 1.5 in '10:(1.5)' is out of range; allowed: between")


def ts(weights):
    return [t for _, t in weights]


def test_linear_weights():
    assert segment_weights("linear", [0, 4], 6) == [
        (0, 0.0),
        (0, 0.25),
        (0, 0.5),
        (0, 0.75),
        (0, 1.0),
        (0, 1.0),
    ]
    assert segment_weights("linear", [2, 4, 8], 10) == [
        (0, 0.0),
        (0, 0.0),
        (0, 0.0),
        (0, 0.5),
        (1, 0.0),
        (1, 0.25),
        (1, 0.5),
        (1, 0.75),
        (1, 1.0),
        (1, 1.0),
    ]


def test_single_keyframe_and_no_frames():
    assert segment_weights("sine", [3], 5) == [(0, 0.0)] * 5
    assert segment_weights("linear", [0, 10], 0) == []
    assert segment_weights("linear", [0, 10], 3) == [(0, 0.0), (0, 0.1), (0, 0.2)]


def test_sine_frequency_two_rises_and_falls_back_within_a_segment():
    t = ts(segment_weights("sine", [0, 20], 21, (2.0,)))
    assert t[0] == 0.0 and t[10] == 1.0  # peak mid-segment
    assert all(a < b for a, b in zip(t[:10], t[1:11]))
    assert all(a > b for a, b in zip(t[10:19], t[11:20]))
    np.testing.assert_allclose(t[1:10], t[19:10:-1])  # symmetric about the middle
    assert t[19] < 0.03  # back near keyframe 0 before jumping to keyframe 1
    assert t[20] == 1.0  # at the last keyframe


def test_sine_frequency_one_is_a_monotone_ease_from_0_to_1():
    t = ts(segment_weights("sine", [0, 30], 31))
    assert t[0] == 0.0 and t[-1] == 1.0
    assert all(a < b for a, b in zip(t, t[1:]))
    assert t[1] < 1 / 30 and t[15] == pytest.approx(0.5)  # eases in, symmetric middle


def test_sine_two_frequencies_matches_the_formula():
    t = ts(segment_weights("sine", [10, 30], 31, (1.0, 2.0)))
    u = np.arange(21) / 20
    s = np.sin(np.pi * u / 2) ** 2 + np.sin(np.pi * u) ** 2
    expected = (s - s.min()) / (s.max() - s.min())
    assert t[:10] == [0.0] * 10
    np.testing.assert_allclose(t[10:30], expected[:20], atol=1e-12)
    assert t[10] == 0.0 and max(t) == 1.0 and min(t) == 0.0


def test_sine_flat_segment_falls_back_to_linear():
    assert segment_weights("sine", [0, 1, 2], 3) == [(0, 0.0), (1, 0.0), (1, 1.0)]


def test_keyframed_curve_is_used_directly():
    curve = parse_curve("0: (0.0), 50: (1.0), 60: (0.5)")
    weights = segment_weights("curve", [0, 60], 62, curve=curve)
    assert [s for s, _ in weights] == [0] * 62
    assert ts(weights)[:60] == [curve.value_at(k) for k in range(60)]
    assert ts(weights)[25] == 0.5 and ts(weights)[55] == 0.75
    assert ts(weights)[60:] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"kind": "cubic"}, "curve: unknown curve kind 'cubic'; allowed: linear, sine, curve"),
        ({"kind": "curve"}, "curve: the 'curve' kind needs a keyframed curve"),
        (
            {"kind": "curve", "curve": ParameterSchedule.constant(2.0)},
            "curve: value 2.0 in '2.0'; allowed: 0 to 1",
        ),
        ({"kind": "sine", "frequencies": ()}, "frequencies: '()'; allowed: positive numbers"),
        ({"kind": "sine", "frequencies": (1, 0)}, "frequencies: '(1, 0)'; allowed: positive"),
        ({"kind": "linear", "keyframe_frames": []}, "keyframes: no keyframe frames;"),
        ({"kind": "linear", "keyframe_frames": [0, 5, 5]}, "keyframes: keyframe 2 at frame 5"),
        ({"kind": "linear", "keyframe_frames": [-1]}, "keyframes: keyframe 0 at frame -1;"),
        ({"kind": "linear", "frames": -1}, "frames: -1 frames; allowed: 0 to 1000000"),
    ],
)
def test_segment_weights_errors(kwargs, expected):
    arguments = {"keyframe_frames": [0, 10], "frames": 12} | kwargs
    assert one_line_error(segment_weights, **arguments).startswith(expected)


@given(
    st.sampled_from(CURVES),
    increasing_frames.map(lambda keys: [k % 500 for k in keys])
    .map(sorted)
    .filter(lambda keys: len(set(keys)) == len(keys)),
    st.integers(0, 600),
    st.lists(st.floats(0.01, 8), min_size=1, max_size=3),
    schedules(st.floats(0, 1)),
)
def test_weights_cover_every_frame_in_segment_order(kind, keys, frames, frequencies, curve):
    weights = segment_weights(kind, keys, frames, frequencies, curve)
    assert len(weights) == frames
    for k, (segment, t) in enumerate(weights):
        assert 0.0 <= t <= 1.0
        if k < keys[0] or len(keys) == 1:
            assert (segment, t) == (0, 0.0)
        elif k >= keys[-1]:
            assert (segment, t) == (len(keys) - 2, 1.0)
        else:
            assert keys[segment] <= k < keys[segment + 1]
            if k == keys[segment]:
                assert t == (curve.value_at(k) if kind == "curve" else 0.0)
