import pytest
from hypothesis import given
from hypothesis import strategies as st

from latentmorph.errors import InputError
from latentmorph.movie.timing import frame_count, frame_plan, keyframe_positions


@given(
    st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=40),
    st.integers(1, 400),
)
def test_frame_plan_has_exact_length_and_runs_in_order(distances, frames):
    plan = frame_plan(distances, frames)
    assert len(plan) == frames
    positions = [i + w for i, w in plan]
    assert positions == sorted(positions)
    assert plan[0] == (0, 0.0)
    if frames > 1:
        assert plan[-1] == (len(distances), 0.0)
    if frames >= len(distances) + 1:  # enough frames: every computed image is shown as is
        assert {i for i, w in plan if w == 0} == set(range(len(distances) + 1))


def test_filler_frames_follow_perceptual_distance():
    plan = frame_plan([3.0, 1.0], 9)
    # 8 frame gaps: 2 are the minimum, the 6 spare ones split 3:1
    assert [i for i, _ in plan].count(0) == 6 and [i for i, _ in plan].count(1) == 2
    assert plan[:6] == [(0, k / 6) for k in range(6)]


def test_equal_distances_give_even_spacing_and_zero_distances_do_too():
    assert frame_plan([1.0, 1.0], 5) == [(0, 0.0), (0, 0.5), (1, 0.0), (1, 0.5), (2, 0.0)]
    assert frame_plan([0.0, 0.0], 5) == frame_plan([1.0, 1.0], 5)


def test_fewer_frames_than_images_pick_the_nearest_images():
    assert frame_plan([1.0] * 8, 3) == [(0, 0.0), (4, 0.0), (8, 0.0)]
    # the last image ends the movie even when it equals the one before it
    assert frame_plan([1.0, 0.0], 2) == [(0, 0.0), (2, 0.0)]


@pytest.mark.parametrize("duration", [0.1, 0.5, 1.0, 1.7, 3.33, 10.0, 59.9])
@pytest.mark.parametrize("fps", [1, 7.5, 12, 23.976, 24, 29.97, 30, 60])
def test_frame_count_is_round_duration_times_fps(duration, fps):
    if round(duration * fps) < 2:
        with pytest.raises(InputError, match="at least 2 are needed"):
            frame_count(duration, fps)
    else:
        assert frame_count(duration, fps) == round(duration * fps)


@pytest.mark.parametrize("value", [0, -1, float("nan")])
def test_frame_count_rejects_bad_fps(value):
    with pytest.raises(InputError):
        frame_count(10, value)


def test_keyframe_positions():
    assert keyframe_positions([1.0, 2.0, 1.0], 10) == [0, 10, 30, 39]
    with pytest.raises(InputError, match=r"keyframes\[1\]\.duration: 0.01 s is shorter"):
        keyframe_positions([1.0, 0.01, 1.0], 10)
