"""Output files: written under a temporary name and renamed when complete, checked up front,
and their failures reported as one-line OutputErrors.

While an output is written it has a hidden name beside it, `.STEM.PID-HEX.partialSUFFIX`,
carrying the writing process's id. A process that was killed (SIGKILL, a power cut) cannot
remove its temporary; the next process that writes the same output removes it once that
process is gone.

Free of heavy imports.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from contextlib import suppress
from pathlib import Path

from .errors import OutputError

NAME_MAX = 255
"""Bytes of one file name on common file systems (ext4, APFS, NTFS in UTF-16 units)."""
_PID_DIGITS = 10


def name_limit(folder: Path) -> int:
    """The longest file name, in bytes, that `folder`'s file system takes."""
    try:
        return min(NAME_MAX, os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def cannot_write(path: str | Path, error: BaseException) -> OutputError:
    """The one-line error for an output that the system refused to write (ENOSPC, EROFS, ...)."""
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    if getattr(error, "errno", None) == errno.ENOSPC:
        reason += "; free some space or write the output elsewhere"
    return OutputError(f"cannot write {os.fspath(path)}: {reason}")


def check_name_length(path: str | Path, target: Path) -> None:
    """Raises OutputError naming `path` when `target`'s file name is longer than its file
    system allows."""
    size, limit = len(os.fsencode(target.name)), name_limit(target.parent)
    if size > limit:
        raise OutputError(
            f"cannot write {os.fspath(path)}: the file name is {size} bytes long; allowed: at "
            f"most {limit}"
        )


def check_folder_takes_files(path: str | Path, folder: Path) -> None:
    """Raises OutputError naming `path` unless `folder` is a folder that takes new files (tried
    with a file made and removed at once: permissions alone miss read-only mounts and /proc)."""
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"cannot write {os.fspath(path)}: folder {folder} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {os.fspath(path)}: folder {folder} is not writable")
    probe = folder / f".latentmorph-probe.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(probe)
    except OSError as error:
        raise OutputError(
            f"cannot write {os.fspath(path)}: folder {folder} does not take new files "
            f"({error.strerror})"
        ) from None


def _tail(pid: str, token: str, suffix: str) -> str:
    return f".{pid}-{token}.partial{suffix}"


def _short_stem(target: Path, suffix: str) -> str:
    """`target`'s stem, cut (at a character boundary) so that its temporary names fit."""
    tail = _tail("0" * _PID_DIGITS, "0" * 8, suffix)
    room = name_limit(target.parent) - 1 - len(os.fsencode(tail))
    encoded = os.fsencode(target.stem)
    if len(encoded) <= room:
        return target.stem
    return encoded[: max(room, 1)].decode("utf-8", "ignore") or "_"


def temporary_sibling(target: Path, suffix: str) -> Path:
    """A hidden, unused name beside `target` that ends in `suffix` and names this process:
    `.STEM.PID-HEX.partialSUFFIX`, STEM shortened when the name would be too long."""
    tail = _tail(str(os.getpid()), secrets.token_hex(4), suffix)
    return target.with_name(f".{_short_stem(target, suffix)}{tail}")


def process_running(pid: int) -> bool:
    """Whether a process with this id runs (this one included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process, or an id out of range
        return True
    return True


def stale_partials(target: Path, suffix: str) -> list[Path]:
    """The temporaries of `target` (ending in `suffix`) whose writing process is gone."""
    pattern = re.compile(
        rf"\.{re.escape(_short_stem(target, suffix))}\.(\d{{1,{_PID_DIGITS}}})-[0-9a-f]{{8}}"
        rf"\.partial{re.escape(suffix)}"
    )
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    return [
        entry
        for entry in entries
        if (match := pattern.fullmatch(entry.name)) and not process_running(int(match[1]))
    ]


def remove_stale_partials(target: Path, suffix: str) -> None:
    """Removes the temporaries of `target` left by processes that are gone (files or PNG
    folders); what cannot be removed stays."""
    for path in stale_partials(target, suffix):
        remove_output(path)


class StagedText:
    """A text file written under a temporary name beside `path`: `commit()` puts it in place,
    `discard()` removes it."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        remove_stale_partials(path, path.suffix)
        self._partial = temporary_sibling(path, path.suffix)
        try:
            self._partial.write_text(text, encoding="utf-8")
        except OSError as error:
            self.discard()
            raise cannot_write(path, error) from None

    def commit(self) -> Path:
        """Renames the file to `path`; OutputError (the file removed) when that fails."""
        try:
            os.replace(self._partial, self.path)
        except OSError as error:
            self.discard()
            raise cannot_write(self.path, error) from None
        return self.path

    def discard(self) -> None:
        """Removes the temporary file (nothing when it was committed)."""
        with suppress(OSError):
            self._partial.unlink(missing_ok=True)


def remove_output(path: Path) -> None:
    """Removes an output or a temporary (a file, or a folder of PNG frames) that must not
    stay; what cannot be removed stays."""
    with suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
