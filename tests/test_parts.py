"""`latentmorph movie`: several project files in a row, and resuming from finished parts."""

import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from latentmorph.blending import engine
from latentmorph.errors import InputError
from latentmorph.movie import parts as parts_module
from latentmorph.project_files import load_project
from latentmorph.render import render_project

from .command_line import run_cli

PROJECT = """\
model: tiny-sd
fps: 6
keyframes:
  - {prompt: a red circle, seed: 1, duration: 1}
  - {prompt: a blue square, seed: 2, duration: 1}
  - {prompt: a green triangle, seed: 3}
settings: {branches: 4, distance: pixel}
"""
# keyframes 3 x 8 steps in one batch, which the first level joins; plus later levels
ONE_SEGMENT_WINDOWS = 4
"""WINDOW_IMAGES for which each 4-branch segment grows alone (a window of its own)."""
# a render that waits after saving each part, to be killed there
KILLABLE = f"""\
import sys
import time

from latentmorph.blending import engine
from latentmorph.cli import main
from latentmorph.movie.parts import PartsFolder

engine.WINDOW_IMAGES = {ONE_SEGMENT_WINDOWS}

save = PartsFolder.save


def save_and_wait(self, key, tree):
    save(self, key, tree)
    time.sleep(300)


PartsFolder.save = save_and_wait
sys.exit(main(sys.argv[1:]))
"""


def _frames(folder):
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


def _computed(stdout):
    """Images computed and image-steps run, from the summary line."""
    match = re.search(r"(\d+) images computed, \d+ UNet steps \((\d+) image-steps\)", stdout)
    return int(match[1]), int(match[2])


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROJECT)
    return path


def test_a_batch_renders_each_project_and_goes_on_after_a_failure(capsys, tmp_path, project):
    second = tmp_path / "q.yaml"
    second.write_text(PROJECT.replace("seed: 3", "seed: 4"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("keyframes: [a]\n")
    code, out, err = run_cli(capsys, "movie", str(project), str(bad), str(second), "--quiet")
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("latentmorph: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"latentmorph: error: {bad}: keyframes")
    assert out.count("\n") == 2
    assert (tmp_path / "p.mp4").is_file() and (tmp_path / "q.mp4").is_file()
    assert not (tmp_path / "p.parts").exists() and not (tmp_path / "bad.mp4").exists()


def test_a_batch_exits_0_when_all_succeed_and_refuses_one_output(capsys, tmp_path, project):
    code, _, err = run_cli(
        capsys, "movie", str(project), str(project), "-o", str(tmp_path / "m.mp4")
    )
    assert code == 2 and err.count("\n") == 1 and "--output: not allowed with 2" in err
    assert list(tmp_path.iterdir()) == [project]


def test_resume_recomputes_only_the_missing_segments(capsys, tmp_path, project, monkeypatch):
    monkeypatch.setattr(engine, "WINDOW_IMAGES", ONE_SEGMENT_WINDOWS)
    whole = tmp_path / "whole"
    code, out, _ = run_cli(capsys, "movie", str(project), "-o", str(whole), "--quiet")
    assert code == 0 and not (tmp_path / "whole.parts").exists()
    images, image_steps = _computed(out)
    assert images == 3 + 2 * 2

    # stopped right after the first segment's part is written
    saved = []
    real_save = parts_module.PartsFolder.save

    def save_then_stop(self, key, tree):
        real_save(self, key, tree)
        saved.append(key)
        raise KeyboardInterrupt

    monkeypatch.setattr(parts_module.PartsFolder, "save", save_then_stop)
    resumed = tmp_path / "resumed"
    code, _, err = run_cli(capsys, "movie", str(project), "-o", str(resumed), "--quiet")
    assert code == 130 and not resumed.exists()
    assert [p.name for p in (tmp_path / "resumed.parts").iterdir()] == saved
    monkeypatch.setattr(parts_module.PartsFolder, "save", real_save)

    code, out, _ = run_cli(capsys, "movie", str(project), "-o", str(resumed), "--quiet")
    assert code == 0 and "segments from parts: 1" in out
    _assert_resumed_as_one_render(out, images, image_steps)
    assert all((a == b).all() for a, b in zip(_frames(whole), _frames(resumed), strict=True))
    assert not (tmp_path / "resumed.parts").exists()


def test_every_part_found_runs_no_diffusion_and_frames_are_equal(capsys, tmp_path, project):
    out_path = tmp_path / "frames"
    argv = ["movie", str(project), "-o", str(out_path), "--quiet", "--keep-parts"]
    code, _, _ = run_cli(capsys, *argv)
    first = _frames(out_path)
    parts = sorted((tmp_path / "frames.parts").iterdir())
    assert code == 0 and len(parts) == 2
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and out.startswith("0 images computed, 0 UNet steps")
    assert "segments from parts: 2" in out
    assert all((a == b).all() for a, b in zip(first, _frames(out_path), strict=True))

    # a corrupted image is found and that segment recomputed, with the other segment of its
    # window, as in one render
    image = parts[0] / "001.png"
    image.write_bytes(image.read_bytes()[:-20])
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "segments from parts: 1" in out and _computed(out)[0] == 3 + 2 * 2
    assert all((a == b).all() for a, b in zip(first, _frames(out_path), strict=True))

    code, out, _ = run_cli(capsys, *argv, "--fresh")
    assert code == 0 and "segments from parts" not in out
    code, out, _ = run_cli(capsys, *argv[:-1])
    assert code == 0 and "segments from parts: 2" in out
    assert not (tmp_path / "frames.parts").exists()


def test_a_changed_setting_invalidates_only_the_parts_it_shapes(capsys, tmp_path, project):
    argv = ["movie", str(project), "-o", str(tmp_path / "m.mp4"), "--quiet", "--keep-parts"]
    run_cli(capsys, *argv)
    project.write_text(PROJECT.replace("seed: 3", "seed: 5"))
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "segments from parts: 1" in out
    code, out, _ = run_cli(capsys, *argv, "--fillers", "crossfade")
    assert code == 0 and "segments from parts: 2" in out


def _finished_parts(folder):
    """The parts in place (not those being written under a temporary name)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if not p.name.startswith(".")]


def _assert_resumed_as_one_render(out: str, images: int, image_steps: int) -> None:
    """The keyframes' batch ran as in one render (with the first branch of both segments), the
    finished segment's later branches did not."""
    assert "segments from parts: 1" in out
    resumed_images, resumed_steps = _computed(out)
    assert resumed_images == images - 1
    assert 0 < image_steps - resumed_steps < (image_steps - 3 * 8) // 2


def test_a_render_killed_part_way_resumes_where_it_stopped(capsys, tmp_path, project, monkeypatch):
    monkeypatch.setattr(engine, "WINDOW_IMAGES", ONE_SEGMENT_WINDOWS)
    whole = tmp_path / "whole"
    code, out, _ = run_cli(capsys, "movie", str(project), "-o", str(whole), "--quiet")
    images, image_steps = _computed(out)
    assert code == 0 and images == 3 + 2 * 2

    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    resumed, parts = tmp_path / "resumed", tmp_path / "resumed.parts"
    argv = ["movie", str(project), "-o", str(resumed), "--quiet"]
    render = subprocess.Popen([sys.executable, str(script), *argv], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not _finished_parts(parts):
        assert render.poll() is None, render.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    render.send_signal(signal.SIGKILL)
    render.communicate()
    assert render.returncode == -signal.SIGKILL
    assert len(_finished_parts(parts)) == 1 and not resumed.exists()
    assert any(p.name.startswith(".resumed.") for p in tmp_path.iterdir())  # the unfinished one

    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    _assert_resumed_as_one_render(out, images, image_steps)
    first, again = _frames(whole), _frames(resumed)
    assert len(first) == len(again) == 12
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    names = ["killable.py", "p.yaml", "resumed", "resumed.yaml", "whole", "whole.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_render_project_resumes_from_its_parts(tmp_path, project):
    output, parts = tmp_path / "m.mp4", tmp_path / "m.parts"
    first = render_project(
        load_project(project), output, progress=False, resume=True, keep_parts=True
    )
    assert first.resumed == 0 and first.images == 3 + 2 * 2 and len(_finished_parts(parts)) == 2
    fresh = render_project(
        load_project(project), output, progress=False, resume=True, fresh=True, keep_parts=True
    )
    assert fresh.resumed == 0 and fresh.images == first.images
    again = render_project(load_project(project), output, progress=False, resume=True)
    assert again.resumed == 2 and again.images == 0 and not parts.exists()
    plain = render_project(load_project(project), output, progress=False)
    assert plain.resumed == 0 and plain.images == first.images and not parts.exists()
    for option in ("fresh", "keep_parts"):
        with pytest.raises(InputError, match=f"^{option}: only with resume=True"):
            render_project(load_project(project), output, progress=False, **{option: True})
