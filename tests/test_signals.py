"""Stopping a render: Ctrl-C, SIGTERM and SIGHUP end it with one line, exit 128 + the signal,
no traceback and nothing under the output name; after SIGKILL only the temporary stays, and
the next render of the same output removes it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latentmorph.cli import main
from latentmorph.output_files import stale_partials, temporary_sibling

TINY = ["--model", "tiny-sd", "--quiet", "--steps", "2", "--width", "32", "--height", "32"]
LONG = ["--branches", "3", "--fps", "50", "--duration", "20000"]  # a million frames: hours


def start(output: Path) -> subprocess.Popen:
    """A render of a million frames in a subprocess, started writing into `output`'s temporary:
    returned once the temporary exists."""
    command = [sys.executable, "-m", "latentmorph.cli", "transition", "a", "b", "-o", str(output)]
    render = subprocess.Popen(
        [*command, *TINY, *LONG], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not any(".partial" in p.name for p in output.parent.iterdir()):
        if render.poll() is not None or time.monotonic() > deadline:
            render.kill()
            pytest.fail(f"the render did not start writing: {render.communicate()}")
        time.sleep(0.05)
    time.sleep(0.3)  # some frames in
    return render


@pytest.mark.parametrize(
    "signum, name, output",
    [
        (signal.SIGTERM, "stopped by SIGTERM", "t.mp4"),
        (signal.SIGHUP, "stopped by SIGHUP", "frames"),
        (signal.SIGINT, "interrupted", "t.gif"),
    ],
)
def test_a_signal_stops_the_render_and_leaves_nothing(tmp_path, signum, name, output):
    render = start(tmp_path / output)
    render.send_signal(signum)
    stdout, stderr = render.communicate(timeout=60)
    assert render.returncode == 128 + signum
    assert stderr == f"latentmorph: {name}; nothing was left under the output name\n"
    assert stdout == "" and list(tmp_path.iterdir()) == []


def test_after_sigkill_the_next_render_removes_the_temporary(tmp_path, capsys):
    output = tmp_path / "t.mp4"
    render = start(output)
    render.kill()
    render.communicate(timeout=60)
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(f".t.{render.pid}-") and left.name.endswith(".partial.mp4")
    assert stale_partials(output, ".mp4") == [left]
    argv = ["transition", "a", "b", "-o", str(output), *TINY, "--branches", "2"]
    assert main([*argv, "--fps", "4", "--duration", "0.5"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.mp4", "t.yaml"]


def test_temporaries_of_running_processes_stay(tmp_path):
    output = tmp_path / "t.mp4"
    mine = temporary_sibling(output, ".mp4")
    mine.write_bytes(b"")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    stale = output.with_name(f".t.{gone.stdout.strip()}-0123abcd.partial.mp4")
    stale.write_bytes(b"")
    other = output.with_name(f".u.{gone.stdout.strip()}-0123abcd.partial.mp4")
    other.write_bytes(b"")
    assert mine.name.startswith(f".t.{os.getpid()}-")
    assert stale_partials(output, ".mp4") == [stale]


def test_the_signal_handlers_are_put_back(capsys, tmp_path, monkeypatch):
    def stop(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr("latentmorph.models.loading.load_pipeline", stop)
    before = signal.getsignal(signal.SIGTERM)
    code = main(["transition", "a", "b", "-o", str(tmp_path / "t.mp4"), *TINY])
    assert code == 143 and signal.getsignal(signal.SIGTERM) is before
    assert capsys.readouterr().err == (
        "latentmorph: stopped by SIGTERM; nothing was left under the output name\n"
    )
    assert list(tmp_path.iterdir()) == []
