"""Tests of the streaming movie writers, checked with an independent decoder (imageio-ffmpeg)."""

from __future__ import annotations

import math
import os
import re
import struct
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from latentmorph.errors import InputError, OutputError
from latentmorph.movie import writers
from latentmorph.movie.writers import OUTPUT_FORMATS, check_output_path, open_writer

WIDTH, HEIGHT = 64, 48
FRAMES = 17
FPS = 12
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
ALL_OUTPUTS = ["movie.mp4", "movie.webm", "movie.gif", "frames"]


def colour(index: int) -> tuple[int, int, int]:
    """A colour that differs clearly between frames and stays inside video range."""
    return (20 + 12 * index, 220 - 11 * index, 30 + (70 * index) % 180)


def solid_frame(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return np.full((height, width, 3), colour(index), dtype=np.uint8)


def write_movie(path: Path, frames: int = FRAMES, fps: float = FPS, **kwargs) -> int:
    with open_writer(path, fps, (WIDTH, HEIGHT), **kwargs) as writer:
        for index in range(frames):
            writer.write(solid_frame(index))
    return writer.frames_written


def probe(path: Path) -> str:
    """The stream description ffmpeg prints for a file."""
    result = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", os.fspath(path)], capture_output=True, text=True
    )
    return result.stderr


def decode(path: Path, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """All frames of a movie or PNG folder as an (n, height, width, 3) uint8 array."""
    if path.is_dir():
        names = sorted(path.iterdir())
        return np.stack([np.asarray(Image.open(name).convert("RGB")) for name in names])
    command = [FFMPEG, "-v", "error", "-i", os.fspath(path), "-fps_mode", "passthrough"]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width, 3)


def count_frames(path: Path) -> int:
    if path.is_dir():
        return len(list(path.glob("frame_*.png")))
    if path.suffix == ".gif":
        with Image.open(path) as image:
            return image.n_frames
    return imageio_ffmpeg.count_frames_and_secs(os.fspath(path))[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary outputs left in a folder."""
    return sorted(entry.name for entry in folder.iterdir() if ".partial" in entry.name)


@pytest.fixture
def sine_wav(tmp_path: Path) -> Path:
    """Three seconds of a 440 Hz mono tone."""
    path = tmp_path / "tone.wav"
    rate = 22050
    samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(3 * rate))
    with wave.open(os.fspath(path), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(rate)
        output.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return path


def test_output_formats_lists_every_output() -> None:
    assert set(OUTPUT_FORMATS) == {".mp4", ".webm", ".gif", ""}


@pytest.mark.parametrize("name", ALL_OUTPUTS)
def test_every_frame_is_written_in_order(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_movie(path) == FRAMES
    assert count_frames(path) == FRAMES
    decoded = decode(path)
    assert decoded.shape == (FRAMES, HEIGHT, WIDTH, 3)
    means = decoded.reshape(FRAMES, -1, 3).mean(axis=1)
    expected = np.array([colour(index) for index in range(FRAMES)])
    assert np.abs(means - expected).max() < 8
    assert leftovers(tmp_path) == []


def test_mp4_is_browser_ready_h264(tmp_path: Path) -> None:
    path = tmp_path / "movie.mp4"
    write_movie(path)
    info = probe(path)
    assert re.search(r"Video: h264 .*yuv420p", info), info
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "moov atom must come first (faststart)"


def test_webm_is_vp9_yuv420p(tmp_path: Path) -> None:
    path = tmp_path / "movie.webm"
    write_movie(path)
    assert re.search(r"Video: vp9 .*yuv420p", probe(path))


@pytest.mark.parametrize("name", ["movie.mp4", "movie.webm", "movie.gif"])
def test_same_frames_give_the_same_bytes(tmp_path: Path, name: str) -> None:
    first, second = tmp_path / name, tmp_path / f"again{Path(name).suffix}"
    write_movie(first)
    write_movie(second)
    assert first.read_bytes() == second.read_bytes()


def test_gif_loops_forever_with_frame_delays(tmp_path: Path) -> None:
    path = tmp_path / "movie.gif"
    write_movie(path, fps=25)
    with Image.open(path) as image:
        assert image.info["loop"] == 0
        delays = []
        for index in range(image.n_frames):
            image.seek(index)
            delays.append(image.info["duration"])
    assert delays == [40] * FRAMES


def test_gif_keeps_many_colours_per_frame(tmp_path: Path) -> None:
    path = tmp_path / "gradient.gif"
    ramp = np.linspace(0, 255, WIDTH).astype(np.uint8)
    first = np.full((HEIGHT, WIDTH, 3), (40, 40, 200), dtype=np.uint8)
    first[:, :, 0] = ramp
    second = np.full((HEIGHT, WIDTH, 3), (200, 40, 40), dtype=np.uint8)
    second[:, :, 1] = ramp
    with open_writer(path, FPS, (WIDTH, HEIGHT)) as writer:
        writer.write(first)
        writer.write(second)
    decoded = decode(path).astype(int)
    assert np.abs(decoded[0, :, :, 0] - ramp[None, :]).mean() < 3
    assert np.abs(decoded[1, :, :, 1] - ramp[None, :]).mean() < 3


@pytest.mark.parametrize("name", ALL_OUTPUTS)
def test_error_inside_block_leaves_nothing(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(RuntimeError, match="boom"), open_writer(path, FPS, (WIDTH, HEIGHT)) as w:
        for index in range(5):
            w.write(solid_frame(index))
        raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["movie.mp4", "movie.gif"])
def test_existing_output_is_replaced_only_on_success(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt), open_writer(path, FPS, (WIDTH, HEIGHT)) as writer:
        writer.write(solid_frame(0))
        raise KeyboardInterrupt
    assert path.read_bytes() == b"previous"
    write_movie(path)
    assert count_frames(path) == FRAMES
    assert leftovers(tmp_path) == []


def test_png_folder_replaces_previous_frames(tmp_path: Path) -> None:
    path = tmp_path / "frames"
    write_movie(path, frames=20)
    write_movie(path, frames=3)
    assert sorted(entry.name for entry in path.iterdir()) == [
        "frame_000000.png",
        "frame_000001.png",
        "frame_000002.png",
    ]
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["frames"]


def test_trailing_slash_means_png_folder(tmp_path: Path) -> None:
    path = tmp_path / "clip.v2"
    write_movie(f"{path}/", frames=2)
    assert sorted(entry.name for entry in path.iterdir()) == [
        "frame_000000.png",
        "frame_000001.png",
    ]


def test_wrong_frame_size_raises_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "movie.mp4"
    with pytest.raises(ValueError, match="64x48"), open_writer(path, FPS, (WIDTH, HEIGHT)) as w:
        w.write(solid_frame(0))
        w.write(solid_frame(1, width=WIDTH + 2))
    assert list(tmp_path.iterdir()) == []


def test_non_uint8_array_is_rejected(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="uint8"),
        open_writer(tmp_path / "movie.webm", FPS, (WIDTH, HEIGHT)) as writer,
    ):
        writer.write(solid_frame(0).astype(np.float32))


def test_pil_images_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "movie.mp4"
    with open_writer(path, FPS, (WIDTH, HEIGHT)) as writer:
        writer.write(Image.new("RGB", (WIDTH, HEIGHT), colour(0)))
        writer.write(Image.new("RGBA", (WIDTH, HEIGHT), (*colour(1), 255)))
    means = decode(path).reshape(2, -1, 3).mean(axis=1)
    assert np.abs(means - np.array([colour(0), colour(1)])).max() < 8


def test_write_after_close_is_refused(tmp_path: Path) -> None:
    with open_writer(tmp_path / "movie.gif", FPS, (WIDTH, HEIGHT)) as writer:
        writer.write(solid_frame(0))
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(solid_frame(1))
    assert count_frames(tmp_path / "movie.gif") == 1


def test_no_frames_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "movie.mp4"
    with pytest.raises(OutputError, match="no frames"), open_writer(path, FPS, (WIDTH, HEIGHT)):
        pass
    assert list(tmp_path.iterdir()) == []


def test_odd_size_mp4_is_padded_by_repeating_edges(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    frame = np.full((47, 63, 3), (200, 200, 200), dtype=np.uint8)
    frame[:, -1] = (30, 30, 200)
    frame[-1, :-1] = (200, 30, 30)
    with open_writer(path, FPS, (63, 47)) as writer:
        for _ in range(3):
            writer.write(frame)
    decoded = decode(path, width=64, height=48).astype(int)
    assert decoded.shape[0] == 3
    image = decoded[0]
    assert np.abs(image[8:40, -1].mean(axis=0) - (30, 30, 200)).max() < 12
    assert np.abs(image[8:40, -1] - image[8:40, -2]).mean() < 6
    assert np.abs(image[-1, 8:56].mean(axis=0) - (200, 30, 30)).max() < 25
    assert np.abs(image[-1, 8:56] - image[-2, 8:56]).mean() < 6


def test_odd_size_webm_keeps_its_size(tmp_path: Path) -> None:
    path = tmp_path / "odd.webm"
    with open_writer(path, FPS, (63, 47)) as writer:
        writer.write(np.zeros((47, 63, 3), dtype=np.uint8))
    assert "63x47" in probe(path)


def test_fractional_fps(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    write_movie(path, fps=29.97)
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(os.fspath(path))
    assert frames == FRAMES
    assert seconds == pytest.approx(FRAMES / 29.97, abs=0.02)
    assert "29.97 fps" in probe(path)


@pytest.mark.parametrize(("name", "codec"), [("movie.mp4", "aac"), ("movie.webm", "opus")])
def test_audio_is_muxed_and_trimmed(tmp_path: Path, sine_wav: Path, name: str, codec: str) -> None:
    path = tmp_path / name
    write_movie(path, audio=sine_wav)
    info = probe(path)
    assert re.search(rf"Audio: {codec}", info), info
    assert count_frames(path) == FRAMES
    result = subprocess.run(
        [FFMPEG, "-i", os.fspath(path), "-vn", "-f", "null", "-"], capture_output=True, text=True
    )
    audio_time = re.findall(r"time=(\d+):(\d+):([\d.]+)", result.stderr)[-1]
    seconds = int(audio_time[0]) * 3600 + int(audio_time[1]) * 60 + float(audio_time[2])
    assert seconds == pytest.approx(FRAMES / FPS, abs=0.05)


@pytest.mark.parametrize("name", ["movie.gif", "frames"])
def test_audio_is_ignored_with_warning(tmp_path: Path, sine_wav: Path, name: str) -> None:
    with pytest.warns(UserWarning, match="ignored"):
        write_movie(tmp_path / name, audio=sine_wav)
    assert count_frames(tmp_path / name) == FRAMES


def test_missing_audio_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.wav"):
        open_writer(tmp_path / "movie.mp4", FPS, (WIDTH, HEIGHT), audio=tmp_path / "nope.wav")
    assert list(tmp_path.iterdir()) == []


def test_gif_rejects_more_than_50_fps(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="50 fps"):
        open_writer(tmp_path / "fast.gif", 60, (WIDTH, HEIGHT))


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf")])
def test_bad_fps_is_rejected(tmp_path: Path, fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        open_writer(tmp_path / "movie.mp4", fps, (WIDTH, HEIGHT))


def test_check_output_path_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "movie.avi"
    with pytest.raises(OutputError) as caught:
        check_output_path(path)
    message = str(caught.value)
    assert str(path) in message
    for extension in (".mp4", ".webm", ".gif"):
        assert extension in message


def test_check_output_path_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "movie.mp4"
    with pytest.raises(OutputError, match="does not exist") as caught:
        check_output_path(path)
    assert str(path) in str(caught.value)


def test_check_output_path_unwritable_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(writers.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(OutputError, match="not writable"):
        check_output_path(tmp_path / "movie.mp4")


def test_check_output_path_folder_for_a_file_format(tmp_path: Path) -> None:
    (tmp_path / "movie.mp4").mkdir()
    with pytest.raises(OutputError, match="existing folder"):
        check_output_path(tmp_path / "movie.mp4")


def test_check_output_path_file_for_png_folder(tmp_path: Path) -> None:
    (tmp_path / "frames").write_bytes(b"")
    with pytest.raises(OutputError, match="existing file"):
        check_output_path(tmp_path / "frames")


def test_check_output_path_refuses_unrelated_folder(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="other than frame PNGs"):
        check_output_path(tmp_path / "frames")


def test_check_output_path_normalizes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_output_path("sub/../Movie.MP4") == tmp_path / "Movie.MP4"
    assert check_output_path("frames/") == tmp_path / "frames"
