"""Per-session folders for uploads and outputs, unique output names, and render stop requests.

A session's folder is made when the session first writes a file, and removed when the session
ends (its page is closed), when it has been idle for MAX_IDLE seconds, and when the server shuts
down. Folders are named after the server's process, so that a server that was killed leaves
nothing for long: the next one removes them.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

PREFIX = "latentmorph-ui-"
MAX_IDLE = 24 * 3600
"""Seconds after its last use that a session's folder is removed (a client that never closes
its session, such as a script calling the API, leaves nothing for longer)."""
_FOLDER = re.compile(rf"{re.escape(PREFIX)}(\d+)-[0-9a-z_]+")
_stops: dict[str, int] = {}
_stops_lock = threading.Lock()


def new_workspace() -> str:
    """A new private folder (mode 0700) named after this process."""
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def remove_workspace(workspace: str | None) -> None:
    """Deletes a session folder made by `new_workspace` (and nothing else)."""
    if not workspace:
        return
    path = Path(workspace)
    if path.name.startswith(PREFIX) and path.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)
    with _stops_lock:
        _stops.pop(str(workspace), None)


def remove_stale_workspaces() -> None:
    """Removes the session folders of servers whose process is gone."""
    from ..output_files import process_running

    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        match = _FOLDER.fullmatch(path.name)
        if match and path.is_dir() and not process_running(int(match[1])):
            remove_workspace(str(path))


class Workspaces:
    """The folders of a server's sessions, by session id: made on first use, removed at the
    session's end, after MAX_IDLE seconds unused, and at exit (`remove_all`)."""

    def __init__(self) -> None:
        self._folders: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        remove_stale_workspaces()
        atexit.register(self.remove_all)

    def folder(self, session: str | None) -> str:
        """The folder of `session`, made now if it has none (calls without a session share
        one)."""
        now = time.monotonic()
        key = session or ""
        with self._lock:
            idle = [s for s, (_, used) in self._folders.items() if now - used > MAX_IDLE]
            expired = [self._folders.pop(s)[0] for s in idle if s != key]
            path = self._folders[key][0] if key in self._folders else new_workspace()
            self._folders[key] = (path, now)
        for old in expired:
            remove_workspace(old)
        return path

    def remove(self, session: str | None) -> None:
        """Removes the folder of a session that ended."""
        with self._lock:
            entry = self._folders.pop(session, None) if session else None
        if entry is not None:
            remove_workspace(entry[0])

    def remove_all(self) -> None:
        """Removes every session's folder (at shutdown)."""
        with self._lock:
            paths = [path for path, _ in self._folders.values()]
            self._folders.clear()
        for path in paths:
            remove_workspace(path)

    @property
    def sessions(self) -> int:
        """How many sessions have a folder now."""
        with self._lock:
            return len(self._folders)


def unique_path(workspace: str, stem: str, suffix: str) -> Path:
    """A new file name in the session folder that no earlier render used."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(workspace) / f"{stem}-{stamp}-{secrets.token_hex(4)}{suffix}"


def import_upload(workspace: str, upload: str | None) -> str | None:
    """Copies an uploaded file into the session folder; returns its new path.

    The copy is named after the file's contents, so the same upload given again (every render
    of a form) is copied once. A file that is not there is returned as it is, for the check
    that reads it to name.
    """
    if not upload:
        return None
    source = Path(upload)
    folder = Path(workspace)
    if source.parent == folder or not source.is_file():
        return str(source)
    digest = hashlib.sha256()
    with source.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    stem = source.stem[:40] or "upload"
    target = folder / f"{stem}-{digest.hexdigest()[:16]}{source.suffix.lower()}"
    if not target.is_file():
        partial = unique_path(workspace, ".upload", ".part")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    return str(target)


def stop_token(workspace: str) -> int:
    """The session's current stop count, taken when a render starts."""
    with _stops_lock:
        return _stops.get(str(workspace), 0)


def request_stop(workspace: str) -> None:
    """Asks every render of the session running now to stop."""
    with _stops_lock:
        _stops[str(workspace)] = _stops.get(str(workspace), 0) + 1


def stop_requested(workspace: str, token: int) -> bool:
    """Whether a stop was asked for since `token` was taken."""
    return stop_token(workspace) != token
