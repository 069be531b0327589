import numpy as np
import pytest
import yaml
from imageio_ffmpeg import count_frames_and_secs
from PIL import Image

from latentmorph import Keyframe, Project, Transition, render_project
from latentmorph.blending.settings import BlendSettings

SETTINGS = BlendSettings(branches=5, distance="pixel")


def _project(durations=(1.0, 0.7, 1.3), fps=10):
    prompts = ["a red circle", "a blue square", "a green triangle", "a white circle"]
    keyframes = [
        Keyframe(p, seed=10 + i, duration=d)
        for i, (p, d) in enumerate(zip(prompts, [*durations, None]))
    ]
    return Project(keyframes[: len(durations) + 1], model="tiny-sd", fps=fps, settings=SETTINGS)


def _frames(folder):
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


@pytest.mark.parametrize(("duration", "fps"), [(1.0, 30), (0.5, 24), (1.3, 29.97), (2.2, 7)])
def test_transition_movie_has_exact_frame_count(tiny_sd, tmp_path, duration, fps):
    out = tmp_path / "t.mp4"
    summary = Transition(tiny_sd, "a", "b", seeds=(1, 2), branches=4, progress=False).write(
        out, duration=duration, fps=fps
    )
    assert summary.frames == round(duration * fps)
    assert count_frames_and_secs(str(out))[0] == round(duration * fps)
    assert (tmp_path / "t.yaml").is_file()


def test_multi_keyframe_movie_shares_keyframes_and_has_no_repeated_boundary(tiny_sd, tmp_path):
    project = _project()
    out = tmp_path / "frames"
    summary = render_project(project, out, model=tiny_sd, progress=False)
    frames = _frames(out)
    assert len(frames) == summary.frames == round(3.0 * 10)
    # 4 keyframes computed once, plus 3 branches in each of the 3 segments
    assert summary.images == 4 + 3 * 3
    for a, b in zip(frames, frames[1:]):
        assert (a != b).any(), "two identical consecutive frames"
    # each keyframe image appears exactly once, at its position 0, 10, 17, 29
    for position in (0, 10, 17, 29):
        matches = [i for i, f in enumerate(frames) if (f == frames[position]).all()]
        assert matches == [position]


@pytest.mark.parametrize("keyframe_crossfeed", [None, (0.8, 0.6, 0.5)])
def test_segments_grow_together_and_match_one_at_a_time(tiny_sd, monkeypatch, keyframe_crossfeed):
    import dataclasses

    from latentmorph.blending import engine
    from latentmorph.render import MovieRenderer

    def grow(project):
        renderer = MovieRenderer(project, tiny_sd, progress=False)
        images = [tree.images for tree in renderer.trees()]
        return renderer, images

    settings = SETTINGS.replace(keyframe_crossfeed=keyframe_crossfeed)
    project = dataclasses.replace(_project(), settings=settings)
    together, images = grow(project)
    single = dataclasses.replace(project, settings=settings.replace(batched=False))
    _, alone = grow(single)
    for tree_a, tree_b in zip(images, alone, strict=True):
        for a, b in zip(tree_a, tree_b, strict=True):
            assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 2
    later_levels = sum(8 - level.start for level in together.plan.levels[1:])
    # the 4 keyframes in one batch, which the first level of all 3 segments joins at its
    # injection step; then each later level of all 3 segments in one batch
    assert together.engine.stats.unet_calls == 8 + later_levels
    monkeypatch.setattr(engine, "WINDOW_IMAGES", 10)  # two 5-image segments at a time
    windowed, images_windowed = grow(project)
    assert windowed.engine.stats.unet_calls == 8 + 2 * later_levels
    assert [len(tree) for tree in images_windowed] == [5, 5, 5]


@pytest.mark.parametrize("plan", ["3@s0 5@s3", "4@s7", "3@s2 4@s3 6@s6"])
def test_first_level_with_the_keyframes_matches_one_at_a_time_at_any_injection_step(tiny_sd, plan):
    import dataclasses

    from latentmorph.render import MovieRenderer

    def grow(settings):
        project = dataclasses.replace(_project(durations=(1.0, 1.0)), settings=settings)
        renderer = MovieRenderer(project, tiny_sd, progress=False)
        return renderer, [tree for tree in renderer.trees()]

    settings = BlendSettings(
        plan=plan, distance="pixel", parental_crossfeed=(0.8, 0.9, 0.7), placement="even"
    )
    together, trees = grow(settings)
    _, alone = grow(settings.replace(batched=False))
    for tree_a, tree_b in zip(trees, alone, strict=True):
        assert tree_a.fractions == tree_b.fractions
        for a, b in zip(tree_a.images, tree_b.images, strict=True):
            assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 2
    first = together.plan.levels[0]
    assert together.engine.stats.unet_calls == 8 + sum(
        8 - lv.start for lv in together.plan.levels[1:]
    )
    assert {b.start for t in trees for b in t.branches if b.level == 1} == {first.start}


def test_project_file_reproduces_the_movie(tiny_sd, tmp_path):
    project = _project(durations=(0.8, 0.8))
    project.keyframes[1].seed = None  # drawn at random, then recorded
    first = render_project(project, tmp_path / "a", model=tiny_sd, progress=False)
    recorded = yaml.safe_load(first.project_file.read_text())
    assert recorded["keyframes"][1]["seed"] is not None
    assert recorded["settings"]["plan"] == "3@s4 5@s6"
    assert set(recorded["versions"]) == {"latentmorph", "torch", "diffusers", "transformers"}
    again = render_project(Project.load(first.project_file), tmp_path / "b", progress=False)
    assert len(_frames(tmp_path / "a")) == len(_frames(tmp_path / "b"))
    for x, y in zip(_frames(tmp_path / "a"), _frames(tmp_path / "b")):
        assert (x == y).all()
    assert again.images == first.images


def test_written_images_match_rendered_ones(tiny_sd, tmp_path):
    tr = Transition(tiny_sd, "a", "b", seeds=(5, 6), branches=4, progress=False)
    images = tr.render()
    tr.write(tmp_path / "f", duration=1.0, fps=10)
    frames = _frames(tmp_path / "f")
    assert (frames[0] == np.asarray(images[0])).all()
    assert (frames[-1] == np.asarray(images[-1])).all()
    for image in images:
        assert any((f == np.asarray(image)).all() for f in frames)


@pytest.mark.parametrize("ext", [".webm", ".gif"])
def test_other_formats(tiny_sd, tmp_path, ext):
    out = tmp_path / f"t{ext}"
    Transition(tiny_sd, "a", "b", seeds=(1, 2), branches=3, progress=False).write(
        out, duration=1, fps=12
    )
    assert out.is_file() and out.stat().st_size > 0
    if ext == ".webm":
        assert count_frames_and_secs(str(out))[0] == 12
    else:
        assert Image.open(out).n_frames == 12
