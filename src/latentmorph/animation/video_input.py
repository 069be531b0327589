"""Video input for animations: the frames of a video file, decoded one at a time."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from types import TracebackType

import av
from PIL import Image

from latentmorph.errors import InputError, MediaError
from latentmorph.inputs import check_input_file

VIDEO_FORMATS = "mp4, webm, mov, mkv, avi, animated gif (what FFmpeg reads)"


class VideoInput:
    """The frames of the first video stream of a file, as RGB images of `size` (width, height).

    Frames are decoded while they are taken, so a file of any length can be read. Each iteration
    starts again from the first frame; run one iteration at a time. Use it as a context manager,
    or call `close()`, to release the file.
    """

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        if size is not None:
            _check_size(size, self.path)
        check_input_file(self.path, "init_video", "a video file", MediaError)
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot read video file {self.path}: {_detail(exc)}") from exc
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        stream = self._stream
        try:  # a damaged file's stream may lack its codec's attributes
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            sized = stream.width and stream.height
        except AttributeError:
            rate = sized = None
        if not rate or not sized:
            self._container.close()
            raise MediaError(f"{self.path} has a video stream without frame rate or frame size")
        self._fps = float(rate)
        self._size = (
            tuple(map(int, size)) if size is not None else (self._stream.width, self._stream.height)
        )
        self._closed = False

    @property
    def is_still_image(self) -> bool:
        """Whether the file is a picture (png, jpeg, ...) that FFmpeg reads as one frame."""
        name = self._container.format.name
        return name == "image2" or name.endswith("_pipe")

    @property
    def fps(self) -> float:
        """Average frame rate of the video stream, in frames per second."""
        return self._fps

    @cached_property
    def frame_count(self) -> int:
        """Number of frames: as stored in the stream when the file says, else its packets counted.

        Counting reads the file once without decoding any picture.
        """
        return self._stream.frames or self._count_packets()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the images yielded: the size asked for, or the video's own."""
        return self._size

    def frames(self, limit: int | None = None) -> Iterator[Image.Image]:
        """The RGB frames from the first one on, at most `limit` of them (all when None)."""
        if limit is not None and not _is_count(limit, minimum=0):
            raise InputError(f"frame limit must be a whole number of 0 or more, got {limit!r}")
        if self._closed:
            raise MediaError(f"video file {self.path} is already closed")
        return self._decode(None if limit is None else int(limit))

    def __iter__(self) -> Iterator[Image.Image]:
        return self.frames()

    def close(self) -> None:
        """Release the file; iterating afterwards is an error."""
        self._closed = True
        self._container.close()

    def __enter__(self) -> VideoInput:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _decode(self, limit: int | None) -> Iterator[Image.Image]:
        try:
            self._container.seek(0)
            for frame in itertools.islice(self._container.decode(self._stream), limit):
                yield self._image(frame)
        except av.FFmpegError as exc:
            raise MediaError(f"cannot decode video file {self.path}: {_detail(exc)}") from exc

    def _image(self, frame: av.VideoFrame) -> Image.Image:
        image = frame.to_image()
        if image.size == self._size:
            return image
        return image.resize(self._size, Image.Resampling.LANCZOS)

    def _count_packets(self) -> int:
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)


def check_video_file(path: str | Path, field: str = "init_video") -> Path:
    """`path` when it is a video whose first frame decodes; else MediaError naming `field`, why,
    and the formats allowed (a still image is refused)."""
    from .audio import reason_of

    path = check_input_file(path, field, "a video file", MediaError)
    try:
        with VideoInput(path) as video:
            if video.is_still_image:
                reason = "it is a still image, not a video"
            elif next(video.frames(1), None) is None:
                reason = "it holds no frames"
            else:
                return path
    except MediaError as error:
        reason = reason_of(error.__cause__ or error, path)
    raise MediaError(
        f"{field}: {path} cannot be read as video ({reason}); allowed: {VIDEO_FORMATS}"
    )


def _check_size(size: tuple[int, int], path: Path) -> None:
    valid = (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(_is_count(n, minimum=1) for n in size)
    )
    if not valid:
        raise InputError(f"video size for {path} must be (width, height) above 0, got {size!r}")


def _is_count(value: object, minimum: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def _detail(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
