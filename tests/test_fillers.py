import cv2
import numpy as np
import pytest
import yaml
from PIL import Image
from scipy.ndimage import distance_transform_edt

from latentmorph.blending.settings import BlendSettings
from latentmorph.cli import main
from latentmorph.errors import InputError
from latentmorph.movie import fillers, timing
from latentmorph.project import Keyframe, Project

SIZE, RADIUS, START, SHIFT = 128, 16, 40, 16
FAST = ["--model", "tiny-sd", "--quiet", "--duration", "1", "--fps", "8", "--branches", "3"]


def disc(x: float) -> np.ndarray:
    """A disc textured with smooth noise that moves with it, centred at (x, SIZE / 2), on a
    background shaded left to right."""
    noise = np.random.default_rng(0).normal(0, 1, (4 * SIZE, 4 * SIZE)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 2.0) * 25 / 0.14
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    image = np.empty((SIZE, SIZE, 3), np.float32)
    image[:] = (40, 90, 160)
    image += (xs * 40 / SIZE)[..., None]
    texture = cv2.remap(noise, xs - x + 2 * SIZE, ys - SIZE / 2 + 2 * SIZE, cv2.INTER_LINEAR)
    inside = (xs - x) ** 2 + (ys - SIZE / 2) ** 2 <= RADIUS**2
    image[inside] = np.stack([210 + texture, 80 + texture, 50 + texture], -1)[inside]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def contrast(image) -> np.ndarray:
    return np.abs(np.asarray(image).astype(int) - disc(-10 * SIZE).astype(int)).sum(-1)


def errors(image, truth: np.ndarray) -> tuple[float, float]:
    """Centroid error (px) of the pixels more than 60% of the way to the disc's contrast, and
    outline error (px): the largest distance between any trace (25%) of one disc and the other."""
    seen, real = contrast(image), contrast(truth)
    full = np.median(real[real > 0])
    centroids = [np.argwhere(c > 0.6 * full).mean(0) for c in (seen, real)]
    seen, real = seen > 0.25 * full, real > 0.25 * full
    outline = max(
        distance_transform_edt(~real)[seen].max(initial=0),
        distance_transform_edt(~seen)[real].max(initial=0),
    )
    return float(np.linalg.norm(centroids[0] - centroids[1])), float(outline)


@pytest.fixture(scope="module")
def pair() -> tuple[Image.Image, Image.Image]:
    return Image.fromarray(disc(START)), Image.fromarray(disc(START + SHIFT))


def test_flow_fillers_land_a_moving_shape_where_it_is_and_crossfades_do_not(pair):
    flow, crossfade = (fillers.filler(*pair, way) for way in ("flow", "crossfade"))
    for t in (0.25, 0.5, 0.75):
        truth = disc(START + t * SHIFT)
        centroid, outline = errors(flow(t), truth)
        assert centroid <= 0.5 and outline <= 3.5  # measured at most 0.08 and 2.24 px
        centroid, outline = errors(crossfade(t), truth)
        assert outline >= 7  # two discs: measured 8 to 12 px
        if t != 0.5:  # at 0.5 two half-contrast discs leave only their (centred) overlap
            assert centroid >= 3  # measured 4 px


def test_flow_fillers_are_identical_across_runs_and_thread_counts(pair):
    threads = cv2.getNumThreads()
    made = []
    try:
        for count in (1, 4):
            cv2.setNumThreads(count)
            made.append(np.asarray(fillers.filler(*pair, "flow")(0.4)))
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(made[0], made[1])
    assert np.array_equal(made[0], np.asarray(fillers.filler(*pair, "flow")(0.4)))


def test_the_flow_is_estimated_once_per_pair_of_neighbours(pair, monkeypatch):
    calls = []
    dense_flows = fillers.dense_flows
    monkeypatch.setattr(fillers, "dense_flows", lambda a, b: calls.append(1) or dense_flows(a, b))
    images = [pair[0], pair[1], pair[0]]
    frames = list(timing.segment_frames(images, [1.0, 1.0], 13, True, "flow"))
    assert len(frames) == 13 and len(calls) == 2


@pytest.mark.parametrize("slots", [2, 3, 7, 20, 61])
def test_both_ways_give_the_same_frame_counts_and_computed_frames(pair, slots):
    images = [pair[0], pair[1], pair[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT), pair[1]]
    distances = [1.0, 3.0, 0.5]
    plan = timing.frame_plan(distances, slots)
    for last in (True, False):
        counts = {}
        for way in ("flow", "crossfade"):
            frames = list(timing.segment_frames(images, distances, slots, last, way))
            counts[way] = len(frames)
            for frame, (index, weight) in zip(frames, plan, strict=False):
                assert frame.size == pair[0].size and frame.mode == "RGB"
                if weight == 0:
                    assert frame is images[index]
        assert counts == {"flow": len(plan) - (not last), "crossfade": len(plan) - (not last)}


def test_crossfade_fillers_are_the_pixel_mix_as_before(pair):
    frames = list(timing.segment_frames(list(pair), [1.0], 5, True, "crossfade"))
    for frame, t in zip(frames[1:-1], (0.25, 0.5, 0.75), strict=True):
        assert frame.tobytes() == Image.blend(*pair, t).tobytes()


@pytest.mark.parametrize("way", ["flow", "crossfade"])
def test_fillers_round_trip_through_a_project_file(tmp_path, way):
    project = Project(
        keyframes=[Keyframe("a", 1), Keyframe("b", 2)], settings=BlendSettings(fillers=way)
    )
    path = project.save(tmp_path / "p.yaml")
    assert yaml.safe_load(path.read_text())["settings"]["fillers"] == way
    assert Project.load(path).settings == project.settings


def test_a_bad_fillers_value_is_a_one_line_error_naming_it():
    assert BlendSettings().fillers == "flow"
    with pytest.raises(InputError) as caught:
        BlendSettings(fillers="rife")
    assert str(caught.value) == "fillers: 'rife' is not allowed; use one of flow, crossfade"


def test_the_fillers_flag_reaches_the_frames_and_movie_overrides_the_project_file(
    capsys, tmp_path, monkeypatch
):
    from latentmorph import render

    used = []
    segment_frames = render.segment_frames

    def recording(images, distances, slots, last, way):
        used.append(way)
        return segment_frames(images, distances, slots, last, way)

    monkeypatch.setattr(render, "segment_frames", recording)
    argv = ["transition", "a", "b", "-o", str(tmp_path / "t.mp4"), *FAST, "--fillers", "crossfade"]
    assert main(argv) == 0 and used == ["crossfade"]
    assert yaml.safe_load((tmp_path / "t.yaml").read_text())["settings"]["fillers"] == "crossfade"
    movie = ["movie", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "m.mp4"), "--quiet"]
    assert main([*movie, "--fillers", "flow"]) == 0 and used[-1] == "flow"
    assert yaml.safe_load((tmp_path / "m.yaml").read_text())["settings"]["fillers"] == "flow"
    assert main(movie[:-1] + ["--quiet"]) == 0 and used[-1] == "crossfade"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main([*argv[:-1], "rife"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and "--fillers" in err
