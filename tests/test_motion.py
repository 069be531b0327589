"""2D motion warps and colour coherence, checked on synthetic images."""

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from latentmorph.animation.motion import (
    Motion,
    affine_matrix,
    match_colours,
    warp,
)
from latentmorph.choices import BORDER_MODES
from latentmorph.errors import InputError

WIDTH, HEIGHT = 81, 61  # odd and not square, so a swapped width/height shows
CENTRE = np.array([(WIDTH - 1) / 2, (HEIGHT - 1) / 2])


def blob(x: float, y: float, sigma: float = 1.5) -> Image.Image:
    """Black L image with a bright Gaussian dot centred on (x, y)."""
    cols, rows = np.meshgrid(np.arange(WIDTH), np.arange(HEIGHT))
    dot = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))
    return Image.fromarray(np.rint(dot * 255).astype(np.uint8))


def centroid(image: Image.Image) -> np.ndarray:
    """Brightness-weighted (x, y) centre of the image."""
    pixels = np.asarray(image, dtype=np.float64)
    rows, cols = np.indices(pixels.shape)
    return np.array([(cols * pixels).sum(), (rows * pixels).sum()]) / pixels.sum()


def noise(size: tuple[int, int] = (WIDTH, HEIGHT), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def screen_angle(point: np.ndarray) -> float:
    """Angle of a point about the centre in degrees, counter-clockwise as seen (y is down)."""
    dx, dy = point - CENTRE
    return math.degrees(math.atan2(-dy, dx))


# --- warp geometry ---------------------------------------------------------------------------


@pytest.mark.parametrize("tx, ty", [(7, 0), (0, 5), (-4, 9), (12, -6)])
def test_translation_moves_a_dot_by_exactly_tx_ty(tx, ty):
    source = np.zeros((HEIGHT, WIDTH), np.uint8)
    source[20, 30] = 255
    moved = np.asarray(warp(Image.fromarray(source), Motion(translation_x=tx, translation_y=ty)))
    assert np.argwhere(moved == 255).tolist() == [[20 + ty, 30 + tx]]
    assert np.count_nonzero(moved) == 1


def test_subpixel_translation_moves_the_centroid():
    moved = warp(blob(30, 20), Motion(translation_x=2.5, translation_y=-1.25), border="zero")
    np.testing.assert_allclose(centroid(moved), [32.5, 18.75], atol=0.05)


@pytest.mark.parametrize("zoom", [0.5, 0.8, 1.25, 1.6])
def test_zoom_scales_the_distance_from_the_centre(zoom):
    start = CENTRE + [14, -9]
    moved = centroid(warp(blob(*start), Motion(zoom=zoom), border="zero"))
    r = np.linalg.norm(start - CENTRE)
    assert np.linalg.norm(moved - CENTRE) == pytest.approx(r * zoom, abs=0.15)
    assert screen_angle(moved) == pytest.approx(screen_angle(start), abs=0.5)


@pytest.mark.parametrize("angle", [30.0, -45.0, 90.0, 170.0])
def test_rotation_turns_counter_clockwise_about_the_centre(angle):
    start = CENTRE + [18, 0]
    moved = centroid(warp(blob(*start), Motion(angle=angle), border="zero"))
    turn = math.radians(angle)
    expected = CENTRE + 18 * np.array([math.cos(turn), -math.sin(turn)])  # y is down
    assert np.linalg.norm(moved - expected) < 0.25
    turned = (screen_angle(moved) - screen_angle(start) + 180) % 360 - 180
    assert turned == pytest.approx(angle, abs=1.0)


def test_positive_angle_moves_a_point_right_of_centre_up():
    moved = centroid(warp(blob(*(CENTRE + [18, 0])), Motion(angle=10), border="zero"))
    assert moved[1] < CENTRE[1] - 2


def test_affine_matrix_follows_the_documented_formula():
    motion = Motion(zoom=1.3, angle=25, translation_x=4, translation_y=-7)
    matrix = affine_matrix(motion, (WIDTH, HEIGHT))
    assert matrix.shape == (2, 3)
    a = math.radians(25)
    rotation = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    points = np.array([[0, 0], [80, 60], [13, 47], [CENTRE[0], CENTRE[1]]])
    expected = CENTRE + 1.3 * (points - CENTRE) @ rotation.T + [4, -7]
    np.testing.assert_allclose(points @ matrix[:, :2].T + matrix[:, 2], expected, atol=1e-9)


def test_combined_move_lands_a_dot_where_the_matrix_says():
    motion = Motion(zoom=1.2, angle=-20, translation_x=3, translation_y=5)
    start = np.array([25.0, 40.0])
    expected = affine_matrix(motion, (WIDTH, HEIGHT)) @ [*start, 1]
    moved = centroid(warp(blob(*start), motion, border="zero"))
    assert np.linalg.norm(moved - expected) < 0.25


@pytest.mark.parametrize("border", BORDER_MODES)
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_identity_returns_an_identical_image(border, mode):
    image = noise().convert(mode)
    result = warp(image, Motion(), border=border)
    assert result is not image
    assert result.mode == image.mode and result.size == image.size
    assert np.array_equal(np.asarray(result), np.asarray(image))


def test_is_identity():
    assert Motion().is_identity
    assert Motion(zoom=1, angle=0.0).is_identity
    assert not Motion(zoom=1.01).is_identity
    assert not Motion(angle=1).is_identity
    assert not Motion(translation_y=-0.5).is_identity


def test_border_modes_fill_the_uncovered_area_as_documented():
    source = np.asarray(noise())
    shift = 10  # content moves right: columns 0..9 of the output are uncovered
    out = {b: np.asarray(warp(noise(), Motion(translation_x=shift), b)) for b in BORDER_MODES}
    for result in out.values():
        assert np.array_equal(result[:, shift:], source[:, :-shift])
    assert not out["zero"][:, :shift].any()
    assert np.array_equal(out["replicate"][:, :shift], np.repeat(source[:, :1], shift, axis=1))
    # mirrored about the edge column, which is not repeated: column j shows source column 10 - j
    assert np.array_equal(out["reflect"][:, :shift], source[:, shift:0:-1])


def test_zero_border_is_transparent_with_alpha():
    image = Image.new("RGBA", (20, 10), (200, 100, 50, 255))
    result = np.asarray(warp(image, Motion(translation_y=-3), border="zero"))
    assert not result[-3:].any()
    assert (result[:-3] == (200, 100, 50, 255)).all()


def test_two_translations_add():
    image = noise()
    twice = warp(warp(image, Motion(translation_x=3, translation_y=-2)), Motion(translation_x=4))
    once = warp(image, Motion(translation_x=7, translation_y=-2))
    assert np.array_equal(np.asarray(twice)[:-2, 7:], np.asarray(once)[:-2, 7:])


def test_two_zooms_multiply_and_two_rotations_add():
    start = blob(*(CENTRE + [12, 8]))
    first = warp(start, Motion(zoom=1.2, angle=15), "zero")
    twice = warp(first, Motion(zoom=1.1, angle=20), "zero")
    once = warp(start, Motion(zoom=1.32, angle=35), "zero")
    assert np.linalg.norm(centroid(twice) - centroid(once)) < 0.1


def test_matrices_about_the_centre_compose_as_expected():
    def full(motion: Motion) -> np.ndarray:
        return np.vstack([affine_matrix(motion, (WIDTH, HEIGHT)), [0, 0, 1]])

    composed = full(Motion(zoom=0.9, angle=-30)) @ full(Motion(zoom=1.5, angle=50))
    np.testing.assert_allclose(composed, full(Motion(zoom=1.35, angle=20)), atol=1e-9)
    composed = full(Motion(translation_x=2, translation_y=1)) @ full(Motion(translation_x=-5))
    np.testing.assert_allclose(composed, full(Motion(translation_x=-3, translation_y=1)))


# --- colour coherence ------------------------------------------------------------------------


def lab(image: Image.Image) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3)


def scene(size: tuple[int, int], seed: int) -> np.ndarray:
    """Float RGB in 0..1: smooth gradients plus noise, a stand-in for a rendered frame."""
    rng = np.random.default_rng(seed)
    cols, rows = np.meshgrid(np.linspace(0, 1, size[0]), np.linspace(0, 1, size[1]))
    base = np.stack([cols, rows, 1 - (cols + rows) / 2], axis=-1)
    return np.clip(0.15 + 0.7 * base + rng.normal(0, 0.08, base.shape), 0, 1)


def to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8))


QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]


def test_shifted_colours_are_matched_to_the_reference():
    reference = to_image(scene((96, 64), seed=1))
    # another frame, darker, low-contrast and tinted towards blue-green
    shifted = to_image(0.5 * scene((96, 64), seed=2) * [0.6, 0.9, 1.2] + 0.05)
    matched = match_colours(shifted, reference)
    want = np.quantile(lab(reference), QUANTILES, axis=0)
    before = np.abs(np.quantile(lab(shifted), QUANTILES, axis=0) - want)
    after = np.abs(np.quantile(lab(matched), QUANTILES, axis=0) - want)
    assert before.max() > 15  # the check below would catch a no-op
    assert after.max() < 2.0
    np.testing.assert_allclose(lab(matched).mean(0), lab(reference).mean(0), atol=1.0)


def test_matching_an_image_to_itself_changes_almost_nothing():
    image = to_image(scene((64, 48), seed=3))
    matched = np.asarray(match_colours(image, image), dtype=int)
    difference = np.abs(matched - np.asarray(image, dtype=int))
    assert difference.max() <= 1
    assert difference.mean() < 0.05


def test_matching_keeps_the_size_when_the_reference_size_differs():
    image = to_image(scene((40, 30), seed=4) * 0.5)
    reference = to_image(scene((120, 70), seed=5))
    matched = match_colours(image, reference)
    assert matched.size == (40, 30) and matched.mode == "RGB"
    want = np.quantile(lab(reference), QUANTILES, axis=0)
    assert np.abs(np.quantile(lab(matched), QUANTILES, axis=0) - want).max() < 3.0


def test_matching_keeps_alpha():
    rgba = to_image(scene((32, 24), seed=6)).convert("RGBA")
    alpha = np.random.default_rng(7).integers(0, 256, (24, 32), dtype=np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    matched = match_colours(rgba, to_image(scene((32, 24), seed=8)))
    assert matched.mode == "RGBA"
    assert np.array_equal(np.asarray(matched.getchannel("A")), alpha)


def test_matching_to_a_flat_reference_gives_its_colour():
    image = to_image(scene((20, 16), seed=9))
    flat = Image.new("RGB", (5, 5), (180, 40, 90))
    assert (np.abs(np.asarray(match_colours(image, flat), int) - (180, 40, 90)) <= 1).all()


MODES = st.sampled_from(["L", "LA", "RGB", "RGBA"])


@st.composite
def small_images(draw, modes=MODES):
    mode = draw(modes)
    width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    channels = len(mode)
    data = draw(st.binary(min_size=width * height * channels, max_size=width * height * channels))
    return Image.frombytes(mode, (width, height), data)


@settings(max_examples=60, deadline=None)
@given(image=small_images(), reference=small_images())
def test_match_colours_keeps_size_and_mode(image, reference):
    matched = match_colours(image, reference)
    assert matched.size == image.size
    assert matched.mode == image.mode


@settings(max_examples=60, deadline=None)
@given(
    image=small_images(),
    zoom=st.floats(0.1, 4),
    angle=st.floats(-360, 360),
    shift=st.tuples(st.floats(-20, 20), st.floats(-20, 20)),
    border=st.sampled_from(BORDER_MODES),
)
def test_warp_keeps_size_and_mode(image, zoom, angle, shift, border):
    result = warp(image, Motion(zoom, angle, *shift), border)
    assert result.size == image.size
    assert result.mode == image.mode


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("zoom", [0, 0.0, -1.5])
def test_zoom_must_be_above_zero(zoom):
    with pytest.raises(InputError, match="zoom"):
        Motion(zoom=zoom)


@pytest.mark.parametrize("field", ["zoom", "angle", "translation_x", "translation_y"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1", None, True])
def test_fields_must_be_finite_numbers(field, value):
    with pytest.raises(InputError, match=field):
        Motion(**{field: value})


@pytest.mark.parametrize("border", ["wrap", "", "Zero", None])
def test_bad_border_lists_the_allowed_modes(border):
    with pytest.raises(InputError, match="replicate, reflect, zero"):
        warp(noise(), Motion(zoom=1.1), border=border)


def test_bad_border_is_rejected_even_for_the_identity():
    with pytest.raises(InputError, match="border"):
        warp(noise(), Motion(), border="wrap")


def test_unwarpable_mode_is_rejected():
    with pytest.raises(InputError, match="mode"):
        warp(noise().convert("P"), Motion(zoom=1.1))
