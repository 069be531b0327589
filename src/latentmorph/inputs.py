"""The user's input files: reading text files within limits, and keeping outputs off them.

Free of heavy imports, so that the command line checks its files before torch loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import InputError
from .limits import MAX_PROJECT_FILE_BYTES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
"""Names ending in these are image files where a keyframe may be a prompt or an image."""


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of a small input file (a project file, a prompt schedule), a byte order
    mark removed; InputError naming the file for a folder, a missing or unreadable file, one
    over MAX_PROJECT_FILE_BYTES, binary data or text that is not UTF-8."""
    path = Path(path)
    try:
        if path.is_dir():
            raise InputError(f"{path}: is a folder; give a {what}")
        size = path.stat().st_size
        if size > MAX_PROJECT_FILE_BYTES:
            raise InputError(
                f"{path}: {size} bytes is too large for a {what}; allowed: at most "
                f"{MAX_PROJECT_FILE_BYTES} bytes"
            )
        data = path.read_bytes()[: MAX_PROJECT_FILE_BYTES + 1]
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    if len(data) > MAX_PROJECT_FILE_BYTES:  # grew, or a device that reports no size
        raise InputError(
            f"{path}: too large for a {what}; allowed: at most {MAX_PROJECT_FILE_BYTES} bytes"
        )
    if b"\0" in data:
        raise InputError(
            f"{path}: holds binary data (a zero byte at position {data.index(0)}); give a {what} "
            "as UTF-8 text"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path}: is not UTF-8 text (byte 0x{data[error.start]:02x} at position "
            f"{error.start}); save the {what} as UTF-8"
        ) from None


VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
"""Control files with these endings are read as videos; any other as an image."""


def in_folder(path: Any, folder: Path) -> Any:
    """A path from a project file in `folder`: a relative one taken from that folder (an
    absolute one as it is); anything but non-empty text as it is, for its check to name."""
    if not isinstance(path, str) or not path:
        return path
    return str(folder / Path(path).expanduser())


def is_video(path: str | Path) -> bool:
    """Whether a control file is read as a video (by its ending)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image_name(text: str) -> bool:
    """Whether a keyframe given as text names an image file (ends in an image suffix)."""
    return text.strip().lower().endswith(IMAGE_SUFFIXES)


def check_input_file(
    path: str | Path, field: str, what: str, error: type[InputError] = InputError
) -> Path:
    """`path` when it is an existing file; `error` naming `field` for a folder or a missing
    file (`what` says what to give instead: "an audio file")."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise error(f"{field}: {path} is a folder; give {what}")
    if not path.is_file():
        raise error(f"{field}: {path} does not exist; give {what}")
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (or folder), existing or not."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(Path(a).expanduser()) == os.path.abspath(Path(b).expanduser())


def check_not_input(
    output: str | Path,
    inputs: Iterable[tuple[str, str | Path | None]],
    name: str = "output",
) -> None:
    """Refuses an output path that names one of the `inputs`, given as (field, path) pairs;
    the error names `name` (the output's field)."""
    for field, path in inputs:
        if path is not None and same_file(output, path):
            raise InputError(
                f"{name}: {output} would overwrite the {field} {path}; give the output another name"
            )


def free_name(path: Path, inputs: Iterable[str | Path | None]) -> Path:
    """`path`, or when it names one of `inputs`, NAME.render.yaml (NAME.render-2.yaml, ...)
    beside it: a file written beside an output must never replace an input."""
    taken = [p for p in inputs if p is not None]
    candidate, n = path, 1
    while any(same_file(candidate, p) for p in taken):
        n += 1
        suffix = ".render" if n == 2 else f".render-{n - 1}"
        candidate = path.with_name(f"{path.stem}{suffix}{path.suffix}")
    return candidate
