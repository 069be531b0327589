"""Audio input for animations: keyframes at onsets and audio-driven timing curves.

Audio is read with libsndfile when it can (wav, flac, ogg, mp3, ...), else decoded with PyAV
(FFmpeg), which reads the soundtrack of nearly any container: m4a/aac, mp4, mkv, webm, ...
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import av
import librosa
import numpy as np
import soundfile

from latentmorph.checks import check_choice
from latentmorph.choices import AUDIO_COMPONENTS, AUDIO_REDUCTIONS
from latentmorph.errors import InputError, MediaError
from latentmorph.inputs import check_input_file

_REDUCERS = {"max": np.max, "median": np.median, "mean": np.mean}
_READ_ERRORS = (OSError, EOFError, RuntimeError, soundfile.SoundFileError, av.FFmpegError)
_MIN_FFT = 2048
AUDIO_FORMATS = (
    "wav, flac, ogg, mp3, m4a/aac, or a video with sound (what libsndfile or FFmpeg reads)"
)
_SILENCE = 1e-10  # mel power below this (about -100 dB) counts as no energy


@dataclass(frozen=True)
class Onsets:
    """Detected audio onsets and the keyframes they give.

    `times` are the onsets in seconds from the start of the audio used; `frames` are the sorted,
    distinct keyframe indices: every onset's nearest frame plus the first and the last frame.
    """

    times: tuple[float, ...]
    frames: tuple[int, ...]


def audio_duration(path: str | Path) -> float:
    """Length in seconds of the audio file at `path`."""
    _require_file(path)
    with _reading(path):
        try:
            return float(soundfile.info(str(path)).duration)
        except soundfile.SoundFileRuntimeError:
            return _av_duration(path)


def check_audio_file(path: str | Path, field: str = "audio") -> Path:
    """`path` when it is a file whose audio decodes (its first half second is tried); else
    MediaError naming `field`, why, and the formats allowed."""
    path = check_input_file(path, field, "an audio file (or a video with sound)", MediaError)
    try:
        if audio_duration(path) > 0 and _decode(path, 0.0, 0.5)[0].size > 0:
            return path
        reason = "it holds no audio"
    except MediaError as error:
        reason = reason_of(error.__cause__ or error, path)
    except _READ_ERRORS as error:
        reason = reason_of(error, path)
    raise MediaError(
        f"{field}: {path} cannot be read as audio ({reason}); allowed: {AUDIO_FORMATS}"
    )


def reason_of(error: BaseException, path: Path) -> str:
    """Why reading the media file `path` failed, in a few words on one line (FFmpeg's text
    without its error number and the path)."""
    text = getattr(error, "strerror", None) or " ".join(str(error).split()) or type(error).__name__
    return f"it {text[len(str(path)) + 1 :]}" if text.startswith(f"{path} ") else text


def load_audio(
    path: str | Path, start: float = 0.0, duration: float | None = None
) -> tuple[np.ndarray, int]:
    """Mono float samples of `path` from `start` seconds on, and their sample rate.

    `duration` limits how many seconds are read; None reads to the end of the file. Samples are
    at the file's own rate; several channels are mixed down to one.
    """
    if not (math.isfinite(start) and start >= 0):
        raise InputError(f"audio start must be 0 or more seconds, got {start} for {path}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise InputError(f"audio duration must be more than 0 seconds, got {duration} for {path}")
    total = audio_duration(path)
    if start >= total > 0:
        raise InputError(
            f"audio start {start:g} s is beyond the end of {path}, which lasts {total:.3f} s"
        )
    with _reading(path):
        y, sr = _decode(path, start, duration)
    if y.size == 0:
        raise MediaError(f"audio file {path} contains no audio")
    return y, sr


def separate(y: np.ndarray, component: str) -> np.ndarray:
    """The percussive or harmonic part of the signal `y`, or `y` itself for "whole"."""
    check_choice("component", component, AUDIO_COMPONENTS)
    if component == "whole":
        return y
    harmonic, percussive = librosa.effects.hpss(y, margin=1.0)
    return percussive if component == "percussive" else harmonic


def onset_keyframes(
    path: str | Path,
    fps: float,
    frames: int | None = None,
    component: str = "percussive",
    start: float = 0.0,
) -> Onsets:
    """Keyframes at the onsets of `component` in the audio of `path` from `start` seconds on.

    An onset at t seconds becomes frame round(t * fps). The video has `frames` frames (by default
    as many as the audio lasts at `fps`); onsets past its last frame are dropped.
    """
    _check_fps(fps)
    check_choice("component", component, AUDIO_COMPONENTS)
    if frames is not None:
        _check_frames(frames)
    y, sr = load_audio(path, start)
    if frames is None:
        frames = max(1, round(y.size / sr * fps))
    frames = int(frames)
    detected = librosa.onset.onset_detect(y=separate(y, component), sr=sr, units="time")
    times = tuple(float(t) for t in detected if round(t * fps) < frames)
    keys = {0, frames - 1, *(round(t * fps) for t in times)}
    return Onsets(times=times, frames=tuple(sorted(keys)))


def audio_timing(
    path: str | Path,
    fps: float,
    frames: int,
    component: str = "percussive",
    reduce: str = "max",
    start: float = 0.0,
) -> np.ndarray:
    """Audio-driven progress through a video of `frames` frames at `fps`, audio from `start` s.

    Returns `frames` floats, non-decreasing from 0.0 at frame 0 to 1.0 at the last frame. Value i
    is the share of the audio energy (mel power of `component`, reduced over mel bins by
    `reduce`) that falls in frames 1..i, so the rise from frame i-1 to frame i is proportional to
    the energy at time i / fps. Mapping linear progress through this curve makes the visual
    change happen where the audio is loud, on the beats. Silence gives a linear ramp; a single
    frame gives [0.0]. Frames past the end of the audio have no energy.
    """
    _check_fps(fps)
    _check_frames(frames)
    check_choice("component", component, AUDIO_COMPONENTS)
    check_choice("reduction", reduce, AUDIO_REDUCTIONS)
    frames = int(frames)
    y, sr = load_audio(path, start)
    energy = _frame_energy(separate(y, component), sr, fps, frames, reduce)
    return _progress(energy)


def _frame_energy(y: np.ndarray, sr: int, fps: float, frames: int, reduce: str) -> np.ndarray:
    """Mel power of `y` centred on each video frame time i / fps, reduced over mel bins."""
    hop = max(1, round(sr / fps))
    rate = hop * fps
    if rate != sr:
        y = librosa.resample(y, orig_sr=sr, target_sr=rate)
    n_fft = max(_MIN_FFT, 1 << (hop - 1).bit_length())
    mel = librosa.feature.melspectrogram(y=y, sr=rate, hop_length=hop, n_fft=n_fft)
    energy = _REDUCERS[reduce](mel, axis=0)[:frames]
    return np.pad(energy.astype(np.float64), (0, frames - energy.size))


def _progress(energy: np.ndarray) -> np.ndarray:
    """Cumulative normalised energy rising from 0 to 1; a linear ramp when there is none."""
    if energy.size == 1:
        return np.zeros(1)
    steps = energy[1:]
    peak = steps.max()
    if peak <= _SILENCE:
        return np.linspace(0.0, 1.0, energy.size)
    curve = np.concatenate([[0.0], np.cumsum(steps / peak)])
    return curve / curve[-1]


def _decode(path: str | Path, start: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Mono float32 samples of `path` from `start` s for `duration` s: libsndfile, else PyAV."""
    try:
        sound = soundfile.SoundFile(str(path))
    except soundfile.SoundFileRuntimeError:
        return _av_decode(path, start, duration)
    with sound:
        y, sr = librosa.load(sound, sr=None, mono=True, offset=start, duration=duration)
    return y, int(sr)


def _av_duration(path: str | Path) -> float:
    """Length in seconds of the audio track of `path` as its container states, else as decoded."""
    with av.open(str(path)) as container:
        stream = _audio_stream(container, path)
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / av.time_base
    y, sr = _av_decode(path, 0.0, None)
    return y.size / sr


def _av_decode(path: str | Path, start: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Mono float32 samples of the audio track of `path` decoded by PyAV at its own rate.

    Samples from `start` s for `duration` s (None: to the end), cut as librosa.load cuts them.
    """
    with av.open(str(path)) as container:
        stream = _audio_stream(container, path)
        rate = stream.rate
        first = int(start * rate)
        stop = None if duration is None else first + int(duration * rate)
        return _cut(_mono_chunks(container, stream), first, stop), rate


def _audio_stream(container: av.container.InputContainer, path: str | Path) -> av.AudioStream:
    """The first audio stream of `container`, the opened file `path`."""
    if not container.streams.audio:
        raise MediaError(f"{path} has no audio track")
    stream = container.streams.audio[0]
    if stream.codec_context is None:  # a file cut before its codec's parameters
        raise MediaError(f"{path} has an audio track FFmpeg cannot decode")
    return stream


def _mono_chunks(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[np.ndarray]:
    """The decoded audio of `stream`, mixed down to mono float32 by FFmpeg, chunk by chunk."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
    for frame in chain(container.decode(stream), [None]):  # None flushes the resampler
        for out in resampler.resample(frame):
            yield out.to_ndarray()[0]


def _cut(chunks: Iterable[np.ndarray], first: int, stop: int | None) -> np.ndarray:
    """Samples `first` to `stop` (None: the end) of the signal made of `chunks`, read no further."""
    kept, end = [], 0
    for chunk in chunks:
        begin, end = end, end + chunk.size
        if end > first:
            kept.append(chunk[max(first - begin, 0) : None if stop is None else stop - begin])
        if stop is not None and end >= stop:
            break
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.float32)


@contextmanager
def _reading(path: str | Path) -> Iterator[None]:
    """Turn failures to decode the audio file `path` into MediaError."""
    try:
        yield
    except _READ_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise MediaError(f"cannot read audio file {path}: {detail}") from exc


def _require_file(path: str | Path) -> None:
    check_input_file(path, "audio", "an audio file (or a video with sound)", MediaError)


def _check_fps(fps: float) -> None:
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a number above 0, got {fps}")


def _check_frames(frames: int) -> None:
    if isinstance(frames, bool) or not isinstance(frames, numbers.Integral) or frames < 1:
        raise InputError(f"frame count must be a whole number of at least 1, got {frames!r}")
