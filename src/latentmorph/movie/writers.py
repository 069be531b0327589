"""Streaming movie writers: frames go to the encoder one at a time, never all in memory.

Every writer builds its output under a hidden temporary name next to the target (see
``latentmorph.output_files``) and renames it to the target only when the ``with`` block ends
without an exception, so an interrupted render never leaves a half-written movie under the
requested name. Failures to write (a full disk, a folder that refuses files) raise
OutputError.
"""

from __future__ import annotations

import math
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image

from latentmorph.checks import show
from latentmorph.errors import InputError, MediaError, OutputError
from latentmorph.inputs import check_not_input
from latentmorph.limits import MAX_GIF_FPS
from latentmorph.output_files import (
    cannot_write,
    check_folder_takes_files,
    check_name_length,
    remove_stale_partials,
    temporary_sibling,
)

PNG_FOLDER = ""
"""Key of ``OUTPUT_FORMATS`` for a folder of PNG frames (a path without extension)."""

OUTPUT_FORMATS: dict[str, str] = {
    ".mp4": "H.264 video (libx264, yuv420p, +faststart) that plays in browsers; "
    "optional AAC soundtrack; odd sizes are padded to even by repeating the last row/column",
    ".webm": "VP9 video (libvpx-vp9, yuv420p); optional Opus soundtrack",
    ".gif": "looping animated GIF, every frame with its own adaptive 256-colour palette; "
    "at most 50 fps (GIF delays are in hundredths of a second)",
    PNG_FOLDER: "folder of PNG frames frame_000000.png, frame_000001.png, ... "
    "(a path without extension or ending in '/')",
}
"""Supported outputs: file extension (``""`` for a PNG folder) -> what gets written."""

FRAME_NAME = "frame_{index:06d}.png"
# names that are only one of these extensions are refused as outputs (`-o .mp4`)
_EXTENSION_NAMES = {ext[1:] for ext in OUTPUT_FORMATS if ext} | {"png", "yaml", "yml", "mov", "mkv"}
_AUDIO_RATE = 48000
_AUDIO_LAYOUT = "stereo"
_WRITE_ERRORS = (OSError, av.FFmpegError)


def _allowed_outputs() -> str:
    extensions = ", ".join(ext for ext in OUTPUT_FORMATS if ext != PNG_FOLDER)
    return f"{extensions}, or no extension for a folder of PNG frames"


def _wants_png_folder(path: str | Path) -> bool:
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).suffix == ""


def _is_frame_folder(path: Path) -> bool:
    return all(
        entry.is_file() and entry.name.startswith("frame_") and entry.suffix == ".png"
        for entry in path.iterdir()
    )


def check_output_path(
    path: str | Path,
    fps: float | None = None,
    inputs: Iterable[tuple[str, str | Path]] = (),
) -> Path:
    """Validate an output path before any work is done and return it normalized.

    Raises OutputError when the extension is not supported, the parent folder is missing
    or not writable, a file format is asked for an existing folder, or a PNG folder is
    asked for an existing file or for a folder holding anything but frame PNGs; and
    InputError when `fps` is given and too high for the format (GIF: MAX_GIF_FPS), or when
    the path names one of the `inputs` ((field, path) pairs), which it would overwrite.
    """
    check_not_input(path, inputs)
    name = Path(os.fspath(path)).name
    if name.startswith(".") and name[1:].lower() in _EXTENSION_NAMES:
        raise OutputError(
            f"output: {os.fspath(path)} is only an extension; give a name such as "
            f"movie{name.lower()}"
        )
    wants_folder = _wants_png_folder(path)
    target = Path(os.path.abspath(Path(path).expanduser()))
    extension = PNG_FOLDER if wants_folder else target.suffix.lower()
    if extension not in OUTPUT_FORMATS:
        raise OutputError(
            f"cannot write {path}: unknown output extension '{target.suffix}'; "
            f"allowed: {_allowed_outputs()}"
        )
    parent = target.parent
    check_folder_takes_files(path, parent)
    check_name_length(path, target)
    if not wants_folder and target.is_dir():
        raise OutputError(f"cannot write {path}: it is an existing folder, not a {extension} file")
    if wants_folder and target.exists() and not target.is_dir():
        raise OutputError(f"cannot write PNG frames to {path}: it is an existing file")
    if wants_folder and target.is_dir() and not _is_frame_folder(target):
        raise OutputError(
            f"cannot write PNG frames to {path}: the folder holds files other than frame PNGs"
        )
    if extension == ".gif" and fps is not None and fps > MAX_GIF_FPS:
        raise InputError(
            f"fps: {show(fps)} is not allowed for the .gif output {path}; GIF allows at most "
            f"{MAX_GIF_FPS} frames per second (use .mp4 or .webm for more)"
        )
    return target


def _frame_rate(fps: float) -> Fraction:
    """Exact frame rate for ``fps``; NTSC-style rates such as 29.97 become n*1000/1001."""
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    ntsc = Fraction(round(fps * 1.001) * 1000, 1001)
    if ntsc > 0 and abs(float(ntsc) - fps) < 5e-4:
        return ntsc
    return Fraction(fps).limit_denominator(1001)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise ValueError(f"size must be two positive integers (width, height), got {size}")
    return int(width), int(height)


def _rgb_array(image: Image.Image | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame as a uint8 HxWx3 array; ValueError when it is not a frame of ``size``."""
    if isinstance(image, Image.Image):
        array = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"frame arrays must be uint8 of shape (height, width, 3), "
                f"got {image.dtype} {image.shape}"
            )
        array = image
    else:
        raise TypeError(f"a frame must be a PIL image or a numpy array, not {type(image)}")
    height, width = array.shape[:2]
    if (width, height) != size:
        raise ValueError(
            f"frame is {width}x{height} but the movie is {size[0]}x{size[1]} (width x height)"
        )
    return array


class FrameWriter:
    """Context manager that streams frames into one movie output; made by ``open_writer``.

    ``write`` adds a frame; ``frames_written`` counts them; ``path``, ``fps`` (a Fraction)
    and ``size`` (width, height) describe the output. The output appears under ``path`` only
    when the ``with`` block exits without an exception; it is discarded otherwise.
    """

    def __init__(self, target: Path, temporary: Path, rate: Fraction, size: tuple[int, int]):
        self.path = target
        self.fps = rate
        self.size = size
        self.frames_written = 0
        self._temporary = temporary
        self._closed = False

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closed = True
        if exc_type is not None:
            self._discard()
            return
        try:
            if self.frames_written == 0:
                raise OutputError(f"no frames were written to {self.path}")
            try:
                self._finish()
                self._commit()
            except _WRITE_ERRORS as error:
                raise cannot_write(self.path, error) from None
        except BaseException:
            self._discard()
            raise

    def write(self, image: Image.Image | np.ndarray) -> None:
        """Append one frame (PIL image or uint8 HxWx3 RGB array of the movie's size); raises
        OutputError when the system refuses to write it."""
        if self._closed:
            raise RuntimeError(f"the writer for {self.path} is closed")
        array = _rgb_array(image, self.size)
        try:
            self._write_array(array)
        except _WRITE_ERRORS as error:
            raise cannot_write(self.path, error) from None
        self.frames_written += 1

    def _write_array(self, array: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Complete the temporary output."""

    def _commit(self) -> None:
        os.replace(self._temporary, self.path)

    def _discard(self) -> None:
        self._temporary.unlink(missing_ok=True)


class _PngFolderWriter(FrameWriter):
    """Writes every frame as a numbered PNG into a folder."""

    def __init__(self, target: Path, rate: Fraction, size: tuple[int, int]):
        super().__init__(target, temporary_sibling(target, ""), rate, size)
        self._temporary.mkdir()

    def _write_array(self, array: np.ndarray) -> None:
        name = FRAME_NAME.format(index=self.frames_written)
        Image.fromarray(array).save(self._temporary / name)

    def _commit(self) -> None:
        if not self.path.exists():
            self._temporary.rename(self.path)
            return
        previous = temporary_sibling(self.path, ".old")
        self.path.rename(previous)
        try:
            self._temporary.rename(self.path)
        except OSError:
            previous.rename(self.path)
            raise
        shutil.rmtree(previous)

    def _discard(self) -> None:
        shutil.rmtree(self._temporary, ignore_errors=True)


@dataclass(frozen=True)
class _Encoding:
    """How one container format is encoded with PyAV."""

    muxer: str
    video_codec: str
    pix_fmt: str
    video_options: dict[str, str]
    audio_codec: str | None = None
    container_options: dict[str, str] = field(default_factory=dict)
    even_size: bool = False


_ENCODINGS: dict[str, _Encoding] = {
    ".mp4": _Encoding(
        muxer="mp4",
        video_codec="libx264",
        pix_fmt="yuv420p",
        video_options={"crf": "18", "preset": "medium"},
        audio_codec="aac",
        container_options={"movflags": "+faststart"},
        even_size=True,
    ),
    ".webm": _Encoding(
        muxer="webm",
        video_codec="libvpx-vp9",
        pix_fmt="yuv420p",
        video_options={"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"},
        audio_codec="libopus",
        # Matroska writes a random segment id unless asked to be byte-exact
        container_options={"fflags": "+bitexact"},
    ),
    ".gif": _Encoding(muxer="gif", video_codec="gif", pix_fmt="pal8", video_options={}),
}


class _Soundtrack:
    """Audio read from a file, re-encoded into an output container, cut at the video's end."""

    def __init__(self, source: Path, container: av.container.OutputContainer, codec: str):
        try:
            self._input = av.open(os.fspath(source))
        except (av.error.FFmpegError, OSError) as error:
            raise InputError(f"cannot read audio file {source}: {error}") from error
        if not self._input.streams.audio:
            self._input.close()
            raise InputError(f"audio file {source} has no audio stream")
        self._source = source
        self._stream = container.add_stream(codec, rate=_AUDIO_RATE, layout=_AUDIO_LAYOUT)
        context = self._stream.codec_context
        context.open()
        self._container = container
        self._chunk = context.frame_size or 1024
        self._resampler = av.AudioResampler(context.format, _AUDIO_LAYOUT, _AUDIO_RATE)
        self._fifo = av.AudioFifo()
        self._decoded = self._decode()
        self._encoded = 0

    def _decode(self) -> Iterator[av.AudioFrame]:
        try:
            for frame in self._input.decode(audio=0):
                yield from self._resampler.resample(frame)
        except av.FFmpegError as error:
            raise MediaError(f"cannot decode audio file {self._source}: {error}") from None
        yield from self._resampler.resample(None)

    def _fill(self, samples: int) -> None:
        while self._fifo.samples < samples:
            frame = next(self._decoded, None)
            if frame is None:
                return
            frame.pts = None
            self._fifo.write(frame)

    def _encode(self, frame: av.AudioFrame | None) -> None:
        if frame is not None:
            frame.pts = self._encoded
            frame.time_base = Fraction(1, _AUDIO_RATE)
            self._encoded += frame.samples
        self._container.mux(self._stream.encode(frame))

    def encode_until(self, seconds: Fraction) -> None:
        """Encode whole audio frames that end at or before ``seconds``."""
        end = math.floor(seconds * _AUDIO_RATE)
        while self._encoded + self._chunk <= end:
            self._fill(self._chunk)
            frame = self._fifo.read(self._chunk)
            if frame is None:
                return
            self._encode(frame)

    def finish(self, seconds: Fraction) -> None:
        """Encode the audio left up to ``seconds`` (or to the end of the file) and flush."""
        self.encode_until(seconds)
        missing = math.floor(seconds * _AUDIO_RATE) - self._encoded
        if missing > 0:
            self._fill(missing)
            frame = self._fifo.read(min(missing, self._fifo.samples), partial=True)
            if frame is not None:
                self._encode(frame)
        self._encode(None)
        self.close()

    def close(self) -> None:
        """Release the audio input."""
        self._input.close()


class _EncodedWriter(FrameWriter):
    """Encodes frames with FFmpeg (through PyAV) into an mp4, webm or gif file."""

    def __init__(
        self,
        target: Path,
        encoding: _Encoding,
        rate: Fraction,
        size: tuple[int, int],
        audio: Path | None,
    ):
        super().__init__(target, temporary_sibling(target, target.suffix), rate, size)
        self._encoding = encoding
        self._soundtrack: _Soundtrack | None = None
        self._container = av.open(
            os.fspath(self._temporary),
            "w",
            format=encoding.muxer,
            options=encoding.container_options,
        )
        try:
            self._stream = self._add_video_stream()
            if audio is not None and encoding.audio_codec is not None:
                self._soundtrack = _Soundtrack(audio, self._container, encoding.audio_codec)
        except BaseException:
            self._discard()
            raise

    @property
    def _time_base(self) -> Fraction:
        return 1 / self.fps

    def _encoded_size(self) -> tuple[int, int]:
        width, height = self.size
        if self._encoding.even_size:
            return width + width % 2, height + height % 2
        return width, height

    def _add_video_stream(self) -> av.VideoStream:
        width, height = self._encoded_size()
        stream = self._container.add_stream(
            self._encoding.video_codec,
            rate=self.fps,
            time_base=self._time_base,
            width=width,
            height=height,
            options=self._encoding.video_options,
        )
        stream.pix_fmt = self._encoding.pix_fmt
        if self._encoding.pix_fmt == "yuv420p":
            context = stream.codec_context
            context.color_primaries = ColorPrimaries.BT709
            context.color_trc = ColorTrc.BT709
            context.colorspace = Colorspace.ITU709
            context.color_range = ColorRange.MPEG
        return stream

    def _video_frame(self, array: np.ndarray) -> av.VideoFrame:
        width, height = self._encoded_size()
        if (width, height) != self.size:
            padding = ((0, height - self.size[1]), (0, width - self.size[0]), (0, 0))
            array = np.pad(array, padding, mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        frame = frame.reformat(
            format=self._encoding.pix_fmt,
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
            dst_color_trc=ColorTrc.BT709,
            dst_color_primaries=ColorPrimaries.BT709,
        )
        frame.pts = self.frames_written
        return frame

    def _write_array(self, array: np.ndarray) -> None:
        frame = self._video_frame(array)
        frame.time_base = self._time_base
        self._container.mux(self._stream.encode(frame))
        if self._soundtrack is not None:
            self._soundtrack.encode_until((self.frames_written + 1) / self.fps)

    def _finish(self) -> None:
        self._container.mux(self._stream.encode(None))
        if self._soundtrack is not None:
            self._soundtrack.finish(self.frames_written / self.fps)
        self._container.close()

    def _discard(self) -> None:
        with suppress(Exception):
            if self._soundtrack is not None:
                self._soundtrack.close()
        with suppress(Exception):
            self._container.close()
        super()._discard()


class _GifWriter(_EncodedWriter):
    """Encodes frames into a looping GIF, quantizing each frame to its own palette."""

    @property
    def _time_base(self) -> Fraction:
        return Fraction(1, 100)

    def _video_frame(self, array: np.ndarray) -> av.VideoFrame:
        indexed = Image.fromarray(array).quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
        colours = np.asarray(indexed.getpalette(), dtype=np.uint8).reshape(-1, 3)
        palette = np.zeros((256, 4), dtype=np.uint8)
        palette[:, 0] = 255
        palette[: len(colours), 1:] = colours
        frame = av.VideoFrame.from_ndarray((np.asarray(indexed), palette), format="pal8")
        frame.pts = round(self.frames_written * 100 / self.fps)
        return frame


def _check_audio(audio: str | Path | None, target: Path, extension: str) -> Path | None:
    if audio is None:
        return None
    if extension not in _ENCODINGS or _ENCODINGS[extension].audio_codec is None:
        kind = "PNG folder" if extension == PNG_FOLDER else extension
        warnings.warn(f"audio {audio} is ignored for {kind} output {target}", stacklevel=3)
        return None
    source = Path(audio).expanduser()
    if not source.is_file():
        raise InputError(f"audio file {audio} does not exist")
    return source


def open_writer(
    path: str | Path,
    fps: float,
    size: tuple[int, int],
    audio: str | Path | None = None,
) -> FrameWriter:
    """Open a streaming writer for a movie of ``size`` (width, height) at ``fps``.

    The output format follows the extension of ``path`` (see ``OUTPUT_FORMATS``). The
    optional ``audio`` file is muxed into mp4 (AAC) and webm (Opus) outputs, cut to the
    video's length; gif and PNG outputs ignore it with a warning. Use the result as a
    context manager: the output appears under ``path`` only if the block succeeds.
    """
    target = check_output_path(path)
    rate = _frame_rate(fps)
    size = _check_size(size)
    extension = PNG_FOLDER if _wants_png_folder(path) else target.suffix.lower()
    source = _check_audio(audio, target, extension)
    if extension == ".gif" and rate > MAX_GIF_FPS:
        raise ValueError(f"GIF output supports at most {MAX_GIF_FPS} fps, got {fps}")
    suffix = "" if extension == PNG_FOLDER else target.suffix
    remove_stale_partials(target, suffix)
    try:
        if extension == PNG_FOLDER:
            remove_stale_partials(target, ".old")
            return _PngFolderWriter(target, rate, size)
        if extension == ".gif":
            return _GifWriter(target, _ENCODINGS[extension], rate, size, None)
        return _EncodedWriter(target, _ENCODINGS[extension], rate, size, source)
    except _WRITE_ERRORS as error:
        raise cannot_write(target, error) from None
