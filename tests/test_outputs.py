"""Output paths that cannot be written: refused on one line before any model loads, or, when the
system refuses a write during the render (a full disk), one line and nothing left behind."""

import errno
import os

import pytest

from latentmorph.cli import main
from latentmorph.errors import OutputError
from latentmorph.movie import writers
from latentmorph.output_files import NAME_MAX, StagedText, temporary_sibling

TINY = ["--model", "tiny-sd", "--quiet", "--steps", "2", "--width", "32", "--height", "32"]
SHORT = ["--branches", "2", "--fps", "4", "--duration", "1"]


def run(capsys, *argv):
    """Runs the command line; returns its exit status and stderr."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("latentmorph.models.loading.load_pipeline", refuse)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("/proc/x.mp4", "cannot write /proc/x.mp4: folder /proc does not take new files"),
        ("{d}/missing/x.mp4", "cannot write {d}/missing/x.mp4: folder {d}/missing does not"),
        ("{d}/file.txt/x.mp4", "folder {d}/file.txt is a file, not a folder"),
        ("{d}/folder.mp4", "cannot write {d}/folder.mp4: it is an existing folder, not a .mp4"),
        ("{d}/" + "A" * 252 + ".mp4", "the file name is 256 bytes long; allowed: at most 255"),
        ("{d}/" + "A" * 251 + ".gif", "cannot write the project file {d}/" + "A" * 251),
        ("{d}/out.mp4", "cannot write the project file {d}/out.yaml beside {d}/out.mp4: it is"),
    ],
)
def test_outputs_that_cannot_be_written_are_refused_up_front(
    capsys, tmp_path, no_model, name, expected
):
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "out.yaml").mkdir()
    before = sorted(tmp_path.iterdir())
    output = name.format(d=tmp_path)
    code, err = run(capsys, "transition", "a", "b", "-o", output, *TINY)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("latentmorph: error: ") and expected.format(d=tmp_path) in err
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_without_write_permission_is_refused(capsys, tmp_path, no_model):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code, err = run(capsys, "transition", "a", "b", "-o", str(locked / "x.mp4"), *TINY)
    assert code == 2 and f"folder {locked} is not writable" in err


def test_a_250_character_name_renders(capsys, tmp_path):
    output = tmp_path / ("A" * 246 + ".mp4")
    assert len(temporary_sibling(output, ".mp4").name) <= NAME_MAX
    code, err = run(capsys, "transition", "a", "b", "-o", str(output), *TINY, *SHORT)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name, "A" * 246 + ".yaml"]


@pytest.mark.parametrize("output", ["t.mp4", "t.gif", "frames"])
def test_a_full_disk_is_one_line_and_leaves_nothing(capsys, tmp_path, monkeypatch, output):
    def full(self, array):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for kind in (writers._EncodedWriter, writers._GifWriter, writers._PngFolderWriter):
        monkeypatch.setattr(kind, "_write_array", full)
    target = tmp_path / output
    code, err = run(capsys, "transition", "a", "b", "-o", str(target), *TINY, *SHORT)
    assert code == 2
    assert err == (
        f"latentmorph: error: cannot write {target}: No space left on device; free some space "
        "or write the output elsewhere\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_output_goes_when_its_project_file_cannot_be_put_in_place(
    capsys, tmp_path, monkeypatch
):
    def refused(self):
        self.discard()
        raise OutputError(f"cannot write {self.path}: Is a directory")

    monkeypatch.setattr(StagedText, "commit", refused)
    target = tmp_path / "out.mp4"
    code, err = run(capsys, "transition", "a", "b", "-o", str(target), *TINY, *SHORT)
    assert code == 2
    assert err == f"latentmorph: error: cannot write {tmp_path / 'out.yaml'}: Is a directory\n"
    assert list(tmp_path.iterdir()) == []


def test_a_project_file_that_cannot_be_staged_stops_the_render(capsys, tmp_path, monkeypatch):
    write_text = type(tmp_path).write_text

    def full(self, *args, **kwargs):
        if ".partial" in self.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "write_text", full)
    target = tmp_path / "out.webm"
    code, err = run(capsys, "transition", "a", "b", "-o", str(target), *TINY, *SHORT)
    assert code == 2 and f"cannot write {tmp_path / 'out.yaml'}: No space left" in err
    assert list(tmp_path.iterdir()) == []
