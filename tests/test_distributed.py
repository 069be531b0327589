"""Growing a movie's segments on a Ray cluster: a local one with 2 CPU workers started here."""

import logging
import shutil
import sys

import numpy as np
import pytest
import ray
from PIL import Image

from latentmorph.errors import InputError
from latentmorph.movie.distributed import RayGrowth, WorkerModel, on_ray
from latentmorph.movie.parts import PartsFolder, parts_folder
from latentmorph.project_files import load_project
from latentmorph.render import MovieRenderer, render_project

from .command_line import run_cli

# 33 branches: each segment is a window of its own (see engine.segment_windows), so the two
# segments go to the two workers
PROJECT = """\
model: tiny-sd
fps: 6
keyframes:
  - {prompt: a red circle, seed: 1, duration: 1}
  - {prompt: a blue square, seed: 2, duration: 1}
  - {prompt: a green triangle, seed: 3}
settings: {branches: 33, distance: pixel}
"""


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROJECT)
    return path


def _frames(folder):
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


def test_the_workers_make_the_frames_of_one_process(cluster, tmp_path, project):
    alone = render_project(load_project(project), tmp_path / "alone", progress=False)

    output = tmp_path / "ray"
    renderer = MovieRenderer(load_project(project), progress=False)
    with on_ray(renderer, True, WorkerModel.of(renderer)) as growth:
        summary = renderer.write(output, parts=PartsFolder(parts_folder(output)))
    assert growth.done == {"worker 1": 1, "worker 2": 1}
    assert growth.workers == [] and renderer.grow == renderer.engine.transitions
    frames = _frames(output)
    assert len(frames) == summary.frames == 12
    assert all((a == b).all() for a, b in zip(_frames(tmp_path / "alone"), frames, strict=True))
    # the workers' diffusion is counted in the summary, as if it ran here
    counts = (summary.images, summary.unet_calls, summary.image_steps)
    assert counts == (alone.images, alone.unet_calls, alone.image_steps) == (65, 36, 176)
    assert not (tmp_path / "ray.parts").exists()


def test_ray_from_the_command_line_grows_only_the_missing_segment(
    cluster, capsys, tmp_path, project
):
    output = tmp_path / "m"
    code, _, _ = run_cli(
        capsys, "movie", str(project), "-o", str(output), "--keep-parts", "--quiet"
    )
    first = _frames(output)
    parts = sorted((tmp_path / "m.parts").iterdir())
    assert code == 0 and len(parts) == 2
    shutil.rmtree(parts[1])

    code, out, err = run_cli(capsys, "movie", str(project), "-o", str(output), "--ray")
    assert code == 0 and "segments from parts: 1" in out
    # progress: the segments each worker has done (one window: one worker started)
    assert "worker 1: 1" in err and "worker 2" not in err
    again = _frames(output)
    # resuming is exact: the segment read from its part and the one regrown on a worker
    assert len(again) == len(first) == 12
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert not (tmp_path / "m.parts").exists()


def test_a_worker_that_cannot_load_the_mask_is_a_one_line_error(
    cluster, capsys, monkeypatch, tmp_path
):
    Image.new("L", (8, 8), 255).save(tmp_path / "mask.png")
    project = tmp_path / "p.yaml"
    project.write_text(
        "model: tiny-sd\nkeyframes:\n  - {prompt: a, seed: 1}\n  - {prompt: b, seed: 2}\n"
        "settings: {branches: 5, mask: mask.png}\n"
    )
    start = RayGrowth._start

    def start_without_the_mask(growth, windows):
        # the command's process has read the mask; the worker's node lacks it
        (tmp_path / "mask.png").unlink()
        start(growth, windows)

    monkeypatch.setattr(RayGrowth, "_start", start_without_the_mask)
    code, out, err = run_cli(
        capsys, "movie", str(project), "-o", str(tmp_path / "m"), "--ray", "--quiet"
    )
    assert code == 2 and out == ""
    assert err == (
        f"latentmorph: error: mask: {tmp_path / 'mask.png'} does not exist; give an image file "
        "(PNG, JPEG, WebP, ...)\n"
    )
    assert sorted(tmp_path.iterdir()) == [project]


def test_without_ray_the_option_says_what_to_install(capsys, monkeypatch, tmp_path, project):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as when not installed
    code, out, err = run_cli(capsys, "movie", str(project), "--ray")
    assert code == 2 and out == ""
    assert err == (
        "latentmorph: error: --ray: Ray is not installed; pip install 'latentmorph[ray]'\n"
    )
    with pytest.raises(InputError, match=r"^ray: Ray is not installed; pip install"):
        render_project(load_project(project), tmp_path / "m.mp4", ray="auto")
    assert list(tmp_path.iterdir()) == [project]


def test_ray_is_refused_for_an_animation(capsys, tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(
        "kind: animation\nmodel: tiny-sd\nprompts:\n"
        "  - {frame: 0, prompt: a}\n  - {frame: 4, prompt: b}\n"
    )
    code, _, err = run_cli(capsys, "movie", str(path), "--ray")
    assert code == 2 and err == (
        "latentmorph: error: --ray: not allowed for an animation; only a movie of keyframes is "
        "grown on Ray\n"
    )
    assert list(tmp_path.iterdir()) == [path]
