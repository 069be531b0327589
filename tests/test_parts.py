"""`latentmorph movie`: several project files in a row, and resuming from finished parts."""

import re

import numpy as np
import pytest
from PIL import Image

from latentmorph.cli import main
from latentmorph.movie import parts as parts_module

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


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


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
    code, out, err = _run(capsys, "movie", str(project), str(bad), str(second), "--quiet")
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("latentmorph: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"latentmorph: error: {bad}: keyframes")
    assert out.count("\n") == 2
    assert (tmp_path / "p.mp4").is_file() and (tmp_path / "q.mp4").is_file()
    assert not (tmp_path / "p.parts").exists() and not (tmp_path / "bad.mp4").exists()


def test_a_batch_exits_0_when_all_succeed_and_refuses_one_output(capsys, tmp_path, project):
    code, _, err = _run(capsys, "movie", str(project), str(project), "-o", str(tmp_path / "m.mp4"))
    assert code == 2 and err.count("\n") == 1 and "--output: not allowed with 2" in err
    assert list(tmp_path.iterdir()) == [project]


def test_resume_recomputes_only_the_missing_segments(capsys, tmp_path, project, monkeypatch):
    whole = tmp_path / "whole"
    code, out, _ = _run(capsys, "movie", str(project), "-o", str(whole), "--quiet")
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
    code, _, err = _run(capsys, "movie", str(project), "-o", str(resumed), "--quiet")
    assert code == 130 and not resumed.exists()
    assert [p.name for p in (tmp_path / "resumed.parts").iterdir()] == saved
    monkeypatch.undo()

    code, out, _ = _run(capsys, "movie", str(project), "-o", str(resumed), "--quiet")
    assert code == 0 and "segments from parts: 1" in out
    # the keyframes (with the first level of the missing segment only) and its later levels
    resumed_images, resumed_steps = _computed(out)
    assert resumed_images == 3 + 2
    # less by the finished segment's share of the branches (keyframes: 3 x 8 steps)
    assert image_steps - resumed_steps == (image_steps - 3 * 8) // 2
    # the missing segment grows alone, not beside the other: equal up to batching noise
    for a, b in zip(_frames(whole), _frames(resumed), strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2
    assert not (tmp_path / "resumed.parts").exists()


def test_every_part_found_runs_no_diffusion_and_frames_are_equal(capsys, tmp_path, project):
    out_path = tmp_path / "frames"
    argv = ["movie", str(project), "-o", str(out_path), "--quiet", "--keep-parts"]
    code, _, _ = _run(capsys, *argv)
    first = _frames(out_path)
    parts = sorted((tmp_path / "frames.parts").iterdir())
    assert code == 0 and len(parts) == 2
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and out.startswith("0 images computed, 0 UNet steps")
    assert "segments from parts: 2" in out
    assert all((a == b).all() for a, b in zip(first, _frames(out_path), strict=True))

    # a corrupted image is found and that segment recomputed
    image = parts[0] / "001.png"
    image.write_bytes(image.read_bytes()[:-20])
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "segments from parts: 1" in out and _computed(out)[0] == 3 + 2

    code, out, _ = _run(capsys, *argv, "--fresh")
    assert code == 0 and "segments from parts" not in out
    code, out, _ = _run(capsys, *argv[:-1])
    assert code == 0 and "segments from parts: 2" in out
    assert not (tmp_path / "frames.parts").exists()


def test_a_changed_setting_invalidates_only_the_parts_it_shapes(capsys, tmp_path, project):
    argv = ["movie", str(project), "-o", str(tmp_path / "m.mp4"), "--quiet", "--keep-parts"]
    _run(capsys, *argv)
    project.write_text(PROJECT.replace("seed: 3", "seed: 5"))
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "segments from parts: 1" in out
    code, out, _ = _run(capsys, *argv, "--fillers", "crossfade")
    assert code == 0 and "segments from parts: 2" in out
