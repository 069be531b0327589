"""The web UI's server: its file routes serve nothing outside Gradio's own cache, events cannot
be called by name, uploads have a size limit, sessions' folders go when sessions end, and
messages do not show the server's temporary paths."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from latentmorph.ui import app as ui_app
from latentmorph.ui import callbacks, workspace
from latentmorph.ui.app import build_app, launch
from latentmorph.ui.models import ModelCache

UPLOAD_LIMIT = "2kb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ui_app, "MAX_UPLOAD", UPLOAD_LIMIT)
        port = _free_port()
        app = launch(port=port, block=False)
        yield f"http://127.0.0.1:{port}"
        app.close()


def fetch(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def session_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"{workspace.PREFIX}*"))


@pytest.mark.parametrize(
    "path",
    [
        "/gradio_api/file=/etc/passwd",
        "/file=/etc/passwd",
        "/gradio_api/file/etc/passwd",
        "/gradio_api/file=../../../../../etc/passwd",
        "/gradio_api/file=%2Fetc%2Fpasswd",
        "/gradio_api/file=%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/gradio_api/file=..%252f..%252f..%252fetc%252fpasswd",
        "/gradio_api/file=/tmp/gradio/../../etc/passwd",
        "/gradio_api/file=/proc/self/environ",
        "/gradio_api/file=" + str(Path(__file__).resolve()),
    ],
)
def test_file_routes_serve_nothing_outside_the_cache(url, path):
    status, body = fetch(url + path)
    assert status in (403, 404) and b"root:" not in body and b"import" not in body


def test_a_sessions_files_are_not_served_by_their_path(url):
    folder = Path(workspace.new_workspace())
    try:
        (folder / "movie-20250101-000000-0123abcd.mp4").write_bytes(b"another session's movie")
        for guess in (
            folder / "movie-20250101-000000-0123abcd.mp4",
            Path(tempfile.gettempdir()) / "gradio" / "movie-20250101-000000-0123abcd.mp4",
        ):
            status, body = fetch(f"{url}/gradio_api/file={guess}")
            assert status in (403, 404) and b"another session" not in body
    finally:
        workspace.remove_workspace(str(folder))


@pytest.mark.parametrize(
    "route",
    [
        "/gradio_api/call/new_workspace",
        "/gradio_api/call/on_candidates",
        "/gradio_api/run/on_load_model",
        "/gradio_api/api/on_render",
        "/call/on_movie",
    ],
)
def test_events_cannot_be_called_by_name(url, route):
    before = session_folders()
    body = json.dumps({"data": []}).encode()
    status, _ = fetch(url + route, body, {"Content-Type": "application/json"})
    assert status == 404 and session_folders() == before


def test_the_api_lists_no_endpoint(url):
    status, body = fetch(f"{url}/gradio_api/info")
    assert status == 200
    assert json.loads(body) == {"named_endpoints": {}, "unnamed_endpoints": {}}


def _upload(url: str, size: int) -> tuple[int, bytes]:
    head = b'--B\r\nContent-Disposition: form-data; name="files"; filename="song.wav"\r\n\r\n'
    body = head + b"0" * size + b"\r\n--B--\r\n"
    form = {"Content-Type": "multipart/form-data; boundary=B"}
    return fetch(f"{url}/gradio_api/upload", body, form)


def test_uploads_over_the_limit_are_refused_with_a_message(url):
    status, _ = _upload(url, 1000)
    assert status == 200
    status, body = _upload(url, 5000)
    assert status == 413 and b"maximum allowed size of 2048 bytes" in body


def test_a_sessions_folder_is_made_on_first_use_and_removed_at_its_end():
    workspaces = workspace.Workspaces()
    app = build_app("tiny-sdxl", workspaces=workspaces)
    (unload,) = [f for f in app.fns.values() if any(t[1] == "unload" for t in f.targets)]
    assert workspaces.sessions == 0
    folder = Path(workspaces.folder("visitor"))
    assert folder.is_dir() and workspaces.folder("visitor") == str(folder)
    assert folder.name.startswith(f"{workspace.PREFIX}{os.getpid()}-")
    unload.fn(SimpleNamespace(session_hash="visitor"))
    assert not folder.exists() and workspaces.sessions == 0


def test_idle_sessions_folders_are_removed(monkeypatch):
    workspaces = workspace.Workspaces()
    idle = Path(workspaces.folder("idle"))
    monkeypatch.setattr(workspace, "MAX_IDLE", -1)
    active = Path(workspaces.folder("active"))
    assert not idle.exists() and active.is_dir()
    workspaces.remove_all()
    assert not active.exists()


def test_the_folders_go_when_the_server_stops(monkeypatch):
    made = []

    class Recorded(workspace.Workspaces):
        def __init__(self):
            super().__init__()
            made.append(self)

    def serve(**kwargs):
        made.append(Path(made[0].folder("visitor")))
        raise KeyboardInterrupt  # Ctrl-C while serving

    monkeypatch.setattr(ui_app, "Workspaces", Recorded)
    with pytest.raises(KeyboardInterrupt):
        launch(serve=serve)
    assert not made[1].exists()


def test_folders_of_a_server_that_is_gone_are_removed_at_start():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    left = Path(tempfile.gettempdir()) / f"{workspace.PREFIX}{done.stdout.strip()}-abc123"
    left.mkdir()
    (left / "movie.mp4").write_bytes(b"")
    mine = Path(workspace.new_workspace())
    try:
        workspace.Workspaces()
        assert not left.exists() and mine.is_dir()
    finally:
        workspace.remove_workspace(str(mine))


def test_messages_do_not_show_the_servers_temporary_paths():
    session = workspace.new_workspace()
    try:
        upload = Path(session) / "upload.yaml"
        upload.write_text("keyframes: [a\n")
        with pytest.raises(gr.Error) as caught:
            callbacks.load_session(ModelCache(), session, "tiny-sdxl", str(upload))
        assert caught.value.message.startswith("upload")
        assert "malformed YAML" in caught.value.message
        assert tempfile.gettempdir() not in caught.value.message
    finally:
        workspace.remove_workspace(session)
