"""Audio keyframes and timing on a generated click track: onsets, curve shape, errors.

The click track is read as wav (libsndfile) and as AAC in m4a (PyAV); soundtracks of other
containers (mp4, mkv) are read through PyAV as well.
"""

import numpy as np
import pytest

from latentmorph.animation.audio import (
    Onsets,
    audio_duration,
    audio_timing,
    load_audio,
    onset_keyframes,
    separate,
)
from latentmorph.choices import AUDIO_COMPONENTS, AUDIO_REDUCTIONS
from latentmorph.errors import InputError, MediaError

from .media import (
    CLICKS,
    LENGTH,
    RATE,
    click_samples,
    tone_samples,
    write_aac,
    write_clip,
    write_wav,
)

AAC_FRAME = 1024  # samples per AAC frame: priming and padding make decoded AAC this much off
TONE = 440.0
READERS = [
    load_audio,
    audio_duration,
    lambda path: onset_keyframes(path, 24),
    lambda path: audio_timing(path, 24, 10),
]


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("audio") / "clicks.wav", click_samples())


@pytest.fixture(scope="module")
def clicks_m4a(tmp_path_factory):
    return write_aac(tmp_path_factory.mktemp("audio") / "clicks.m4a", click_samples())


@pytest.fixture(
    scope="module",
    params=[("m4a", 44100, 2), ("mp4", 48000, 1)],
    ids=["m4a-stereo", "mp4-with-video"],
)
def tone(request, tmp_path_factory):
    """A TONE Hz sine as AAC: stereo in an m4a, mono beside a video track in an mp4."""
    suffix, rate, channels = request.param
    path = tmp_path_factory.mktemp("audio") / f"tone.{suffix}"
    write_aac(path, tone_samples(TONE, rate, channels=channels), rate, video=suffix == "mp4")
    return path, rate


@pytest.fixture(scope="module")
def silence(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("audio") / "silence.wav", np.zeros(RATE))


def near_a_click(frame, fps):
    return any(abs(frame - round(time * fps)) <= 1 for time in CLICKS)


def test_load_audio_reads_mono_samples_from_start(clicks):
    y, sr = load_audio(clicks)
    assert sr == RATE and y.ndim == 1 and y.size == round(LENGTH * RATE)
    part, _ = load_audio(clicks, start=1.0, duration=0.5)
    assert part.size == round(0.5 * RATE)
    assert audio_duration(clicks) == pytest.approx(LENGTH)


def test_aac_soundtracks_load_as_mono_at_their_rate(tone):
    path, rate = tone
    assert audio_duration(path) == pytest.approx(LENGTH, abs=AAC_FRAME / rate)
    y, sr = load_audio(path)
    assert sr == rate and y.ndim == 1 and y.dtype == np.float32
    assert abs(y.size - round(LENGTH * rate)) <= AAC_FRAME
    peak = np.fft.rfftfreq(y.size, 1 / sr)[np.abs(np.fft.rfft(y)).argmax()]
    assert peak == pytest.approx(TONE, abs=2)


def test_aac_start_and_duration_cut_like_librosa(tone):
    path, rate = tone
    whole, _ = load_audio(path)
    part, _ = load_audio(path, start=1.0, duration=0.5)
    np.testing.assert_array_equal(part, whole[rate : rate + rate // 2])
    rest, _ = load_audio(path, start=1.0)
    np.testing.assert_array_equal(rest, whole[rate:])
    assert abs(rest.size - round((LENGTH - 1.0) * rate)) <= AAC_FRAME


def test_aac_duration_without_container_duration_is_decoded(tmp_path):
    path = write_aac(tmp_path / "live.mkv", tone_samples(TONE, RATE), options={"live": "1"})
    y, sr = load_audio(path)
    assert audio_duration(path) == y.size / sr
    assert abs(y.size - round(LENGTH * RATE)) <= AAC_FRAME


@pytest.mark.parametrize("fps", [24, 10])
def test_onsets_and_timing_on_m4a_match_the_wav(clicks, clicks_m4a, fps):
    frames = round(LENGTH * fps)
    wav, m4a = onset_keyframes(clicks, fps, frames), onset_keyframes(clicks_m4a, fps, frames)
    assert m4a.frames == wav.frames
    np.testing.assert_allclose(m4a.times, wav.times, atol=512 / RATE)  # one onset hop
    last = [onset_keyframes(path, fps).frames[-1] for path in (clicks, clicks_m4a)]
    assert abs(last[0] - last[1]) <= 1  # AAC padding may add a frame at the end
    curve = audio_timing(clicks_m4a, fps, frames)
    np.testing.assert_allclose(curve, audio_timing(clicks, fps, frames), atol=0.01)


@pytest.mark.parametrize("fps", [24, 10])
@pytest.mark.parametrize("component", ["percussive", "whole"])
def test_onsets_land_on_the_clicks(clicks, fps, component):
    onsets = onset_keyframes(clicks, fps, component=component)
    last = round(LENGTH * fps) - 1
    assert isinstance(onsets, Onsets)
    assert len(onsets.times) == len(CLICKS)
    for detected, time in zip(onsets.times, CLICKS):
        assert abs(detected - time) <= 1 / fps
    for time in CLICKS:
        assert any(abs(frame - round(time * fps)) <= 1 for frame in onsets.frames)
    assert onsets.frames[0] == 0 and onsets.frames[-1] == last
    assert list(onsets.frames) == sorted(set(onsets.frames))
    assert all(frame == 0 or frame == last or near_a_click(frame, fps) for frame in onsets.frames)


def test_onsets_respect_frames_and_start(clicks):
    onsets = onset_keyframes(clicks, 24, frames=40)
    assert onsets.frames[-1] == 39
    assert len(onsets.times) == 2  # the clicks at 0.5 s and 1.25 s; the others are past frame 39
    later = onset_keyframes(clicks, 24, start=1.0)
    assert len(later.times) == 3
    assert abs(later.times[0] - 0.25) <= 1 / 24
    assert later.frames[-1] == round((LENGTH - 1.0) * 24) - 1


@pytest.mark.parametrize("fps", [24, 10, 29.97, 7.5, 60])
@pytest.mark.parametrize("extra", [-20, 0, 15])
def test_timing_has_frames_values_from_0_to_1(clicks, fps, extra):
    frames = round(LENGTH * fps) + extra
    curve = audio_timing(clicks, fps, frames)
    assert curve.shape == (frames,)
    assert curve[0] == 0.0 and curve[-1] == 1.0
    assert np.all(np.diff(curve) >= 0)


@pytest.mark.parametrize("fps", [24, 10, 29.97])
@pytest.mark.parametrize("reduce", AUDIO_REDUCTIONS)
@pytest.mark.parametrize("component", ["percussive", "whole"])
def test_timing_rises_steepest_at_the_clicks(clicks, fps, reduce, component):
    frames = round(LENGTH * fps)
    rises = np.diff(audio_timing(clicks, fps, frames, component=component, reduce=reduce))
    steep = np.flatnonzero(rises > 0.5 * rises.max()) + 1
    assert all(near_a_click(frame, fps) for frame in steep)
    # A click between two frames (1.25 s at 10 fps) splits its rise over both.
    near = [rises[round(time * fps) - 2 : round(time * fps) + 1].sum() for time in CLICKS]
    assert all(share > 0.1 for share in near)
    assert sum(near) > 0.95
    assert rises[: round(0.4 * fps)].sum() < 0.01  # nothing happens before the first click


def test_timing_past_the_end_of_the_audio_stays_at_1(clicks):
    curve = audio_timing(clicks, 10, 50)
    assert np.all(curve[round(LENGTH * 10) :] == 1.0)


def test_silence_gives_a_linear_ramp(silence):
    np.testing.assert_allclose(audio_timing(silence, 24, 30), np.linspace(0, 1, 30))


def test_single_frame(clicks):
    assert audio_timing(clicks, 24, 1).tolist() == [0.0]
    assert onset_keyframes(clicks, 24, frames=1).frames == (0,)


def test_separate_splits_the_signal(clicks):
    y, _ = load_audio(clicks)
    assert separate(y, "whole") is y
    percussive, harmonic = separate(y, "percussive"), separate(y, "harmonic")
    assert percussive.shape == harmonic.shape == y.shape
    assert np.sum(percussive**2) > np.sum(harmonic**2)


@pytest.mark.parametrize("name", ["missing.wav", "garbage.wav", "garbage.m4a"])
@pytest.mark.parametrize("read", READERS)
def test_unreadable_files_raise_media_error(tmp_path, name, read):
    path = tmp_path / name
    if name.startswith("garbage"):
        path.write_bytes(b"\x00garbage, not audio\xff" * 64)
    with pytest.raises(MediaError, match=name) as caught:
        read(path)
    assert "\n" not in str(caught.value)
    if name.startswith("garbage"):
        assert str(caught.value).startswith(f"cannot read audio file {path}: ")


@pytest.mark.parametrize("read", READERS)
def test_video_without_audio_raises_media_error(tmp_path, read):
    path = write_clip(tmp_path / "silent.mp4")
    with pytest.raises(MediaError, match="silent.mp4 has no audio track"):
        read(path)


def test_bad_component_and_reduction(clicks):
    with pytest.raises(InputError, match="percussive, harmonic, whole"):
        onset_keyframes(clicks, 24, component="drums")
    with pytest.raises(InputError, match="percussive, harmonic, whole"):
        audio_timing(clicks, 24, 10, component="drums")
    with pytest.raises(InputError, match="max, median, mean"):
        audio_timing(clicks, 24, 10, reduce="sum")
    with pytest.raises(InputError, match=", ".join(AUDIO_COMPONENTS)):
        separate(np.zeros(10), "bass")


@pytest.mark.parametrize("start", [-0.5, 3.2, 10.0])
def test_start_outside_the_audio(clicks, start):
    with pytest.raises(InputError, match="start"):
        load_audio(clicks, start=start)


@pytest.mark.parametrize(("fps", "frames"), [(0, 10), (-24, 10), (24, 0), (24, 2.5)])
def test_bad_fps_or_frames(clicks, fps, frames):
    with pytest.raises(InputError):
        audio_timing(clicks, fps, frames)
