"""Per-session folders for uploads and outputs, unique output names, and render stop requests."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

PREFIX = "latentmorph-ui-"
_stops: dict[str, int] = {}
_stops_lock = threading.Lock()


def new_workspace() -> str:
    """A new private folder for one browser session."""
    return tempfile.mkdtemp(prefix=PREFIX)


def remove_workspace(workspace: str | None) -> None:
    """Deletes a session folder made by `new_workspace` (and nothing else)."""
    if not workspace:
        return
    path = Path(workspace)
    if path.name.startswith(PREFIX) and path.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)
    with _stops_lock:
        _stops.pop(str(workspace), None)


def unique_path(workspace: str, stem: str, suffix: str) -> Path:
    """A new file name in the session folder that no earlier render used."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(workspace) / f"{stem}-{stamp}-{secrets.token_hex(4)}{suffix}"


def import_upload(workspace: str, upload: str | None) -> str | None:
    """Copies an uploaded file into the session folder; returns its new path."""
    if not upload:
        return None
    source = Path(upload)
    folder = Path(workspace)
    if source.parent == folder:
        return str(source)
    target = unique_path(workspace, source.stem[:40] or "upload", source.suffix.lower())
    shutil.copyfile(source, target)
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
