"""Contact sheets: tiles in order, gap distances, the largest gap, the tree, safe writing."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentmorph import Keyframe, Project, Transition, render_project
from latentmorph.blending import sheet as sheets
from latentmorph.blending.settings import BlendSettings
from latentmorph.blending.sheet import (
    BACKGROUND,
    LARGEST,
    check_sheet_path,
    draw_sheet,
    outline,
    write_sheet,
)
from latentmorph.blending.tree import Branch, TransitionTree
from latentmorph.errors import InputError, OutputError

STEPS = 10
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]


def _tree(distances=(0.123, 0.04567, 0.5, 0.2), colours=COLOURS, size=(64, 48)) -> TransitionTree:
    """Keyframes 0 and 1 and in-betweens at even fractions: the middle one injected at step 4
    from the keyframes, the others at step 7 from their neighbours."""
    count = len(distances) + 1
    images = [Image.new("RGB", size, colours[i % len(colours)]) for i in range(count)]
    first = Branch(0.0, 0, 0, [], images[0])
    last = Branch(1.0, 0, 0, [], images[-1])
    tree = TransitionTree(first, last, 1.0)
    middle = count // 2
    centre = Branch(middle / (count - 1), 1, 4, [], images[middle], (first, last))
    tree.fill(0, [centre], [1.0, 1.0])
    left = [Branch(i / (count - 1), 2, 7, [], images[i], (first, centre)) for i in range(1, middle)]
    right = [
        Branch(i / (count - 1), 2, 7, [], images[i], (centre, last))
        for i in range(middle + 1, count - 1)
    ]
    tree.fill(1, right, [1.0] * (len(right) + 1))
    tree.fill(0, left, [1.0] * (len(left) + 1))
    tree.distances[:] = list(distances)
    return tree


def _pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    return image.getpixel(xy)


def _ink(image: Image.Image, centre: tuple[int, int]) -> int:
    """How many pixels around `centre` are not background (text is drawn there)."""
    x, y = centre
    area = np.asarray(image.crop((x - 20, y - 8, x + 20, y + 9)))
    return int((area != BACKGROUND).any(axis=2).sum())


def _centre(box) -> tuple[int, int]:
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


def test_one_tile_per_image_in_order_and_in_one_row():
    tree = _tree()
    sheet = draw_sheet([outline(tree)], STEPS)
    (segment,) = sheet.segments
    assert len(segment.tiles) == len(tree) == 5
    for box, colour in zip(segment.tiles, COLOURS):
        assert box[2] - box[0] == sheets.TILE and box[3] - box[1] == 72  # 64×48 scaled to 96
        assert _pixel(sheet.image, _centre(box)) == colour
    assert len({box[1] for box in segment.tiles}) == 1
    assert [box[0] for box in segment.tiles] == sorted(box[0] for box in segment.tiles)


def test_gap_labels_are_the_distances_between_neighbouring_tiles():
    sheet = draw_sheet([outline(_tree())], STEPS)
    (segment,) = sheet.segments
    assert [gap.text for gap in segment.gaps] == ["0.123", "0.0457", "0.5", "0.2"]
    for gap, left, right in zip(segment.gaps, segment.tiles, segment.tiles[1:]):
        x, y = gap.centre
        assert left[2] < x < right[0] and left[1] < y < left[3]
        assert _ink(sheet.image, gap.centre) > 20


def test_the_largest_gap_is_marked_in_red():
    sheet = draw_sheet([outline(_tree())], STEPS)
    (segment,) = sheet.segments
    assert [gap.largest for gap in segment.gaps] == [False, False, True, False]
    assert segment.title == "transition: 5 images, largest gap 0.5 between images 3 and 4"

    def red_pixels(gap) -> int:
        x, y = gap.centre
        area = np.asarray(sheet.image.crop((x - 20, y - 10, x + 20, y + 11)))
        return int((area == LARGEST).all(axis=2).sum())

    assert red_pixels(segment.gaps[2]) > 20
    assert [red_pixels(gap) for i, gap in enumerate(segment.gaps) if i != 2] == [0, 0, 0]


def test_many_images_wrap_into_even_rows_and_the_wrapping_gap_is_labelled():
    tree = _tree(distances=[0.01 * (i + 1) for i in range(22)])
    sheet = draw_sheet([outline(tree)], STEPS)
    (segment,) = sheet.segments
    tiles = segment.tiles
    assert len(tiles) == 23
    rows = sorted({box[1] for box in tiles})
    assert len(rows) == 3 and [sum(box[1] == r for box in tiles) for r in rows] == [8, 8, 7]
    wrap = segment.gaps[7]  # between the last tile of row 1 and the first of row 2
    assert tiles[7][2] < wrap.centre[0] < sheet.image.width and tiles[8][1] > tiles[7][3]
    assert segment.gaps[-1].largest and sum(gap.largest for gap in segment.gaps) == 1


def test_the_tree_diagram_puts_fraction_across_and_injection_step_down():
    tree = _tree()
    sheet = draw_sheet([outline(tree)], STEPS)
    (segment,) = sheet.segments
    dots = segment.dots
    assert [x for x, _ in dots] == sorted(x for x, _ in dots)
    assert dots[0][1] == dots[-1][1]  # keyframes at step 0, at the top
    assert dots[0][1] < dots[2][1] < dots[1][1] == dots[3][1]  # steps 0 < 4 < 7
    assert min(y for _, y in dots) > max(box[3] for box in segment.tiles)
    for x, y in dots:
        assert _pixel(sheet.image, (x, y)) != BACKGROUND
    # the middle branch links to both keyframes: the line passes halfway between them
    half = ((dots[0][0] + dots[2][0]) // 2, (dots[0][1] + dots[2][1]) // 2)
    assert _pixel(sheet.image, half) != BACKGROUND


def test_segments_stack_one_block_each():
    outlines = [outline(_tree()), outline(_tree(distances=(0.3, 0.1))), outline(_tree())]
    sheet = draw_sheet(outlines, STEPS)
    titles = [segment.title.split(":")[0] for segment in sheet.segments]
    assert titles == ["segment 1 of 3", "segment 2 of 3", "segment 3 of 3"]
    boxes = [segment.box for segment in sheet.segments]
    assert boxes[0][1] == 0 and boxes[-1][3] == sheet.image.height
    assert all(a[3] == b[1] for a, b in zip(boxes, boxes[1:]))
    assert [len(segment.tiles) for segment in sheet.segments] == [5, 3, 5]
    for segment in sheet.segments:
        top, bottom = segment.box[1], segment.box[3]
        assert all(top < box[1] and box[3] < bottom for box in segment.tiles)
        assert all(top < y < bottom for _, y in segment.dots)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("sheet.jpg", "give a file name ending in .png"),
        ("sheet", "give a file name ending in .png"),
        ("missing/sheet.png", "does not exist"),
        ("folder.png", "it is a folder"),
    ],
)
def test_a_bad_sheet_path_is_a_one_line_input_error(tmp_path, monkeypatch, path, why):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(InputError) as error:
        check_sheet_path(path)
    message = str(error.value)
    assert message.startswith(f"sheet: '{path}' is not allowed; ") and why in message
    assert "\n" not in message


def test_write_sheet_leaves_nothing_behind_when_it_fails(tmp_path, monkeypatch):
    target = tmp_path / "sheet.png"
    assert write_sheet([_tree()], STEPS, target) == target
    with Image.open(target) as written:
        assert written.format == "PNG"
    target.unlink()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(OutputError, match=f"^cannot write {target}: disk full$"):
        write_sheet([_tree()], STEPS, target)
    assert list(tmp_path.iterdir()) == []


def test_steps_too_few_for_the_tree_are_refused():
    with pytest.raises(InputError, match=r"^steps: 5 is not allowed"):
        draw_sheet([outline(_tree())], 5)


def test_transition_writes_its_sheet_beside_the_movie(tiny_sd, tmp_path):
    tr = Transition(tiny_sd, "a", "b", seeds=(1, 2), branches=4, progress=False)
    with pytest.raises(InputError, match=r"^sheet: '.*sheet\.gif' is not allowed"):
        tr.write(tmp_path / "t.mp4", duration=0.5, fps=8, sheet=tmp_path / "sheet.gif")
    assert list(tmp_path.iterdir()) == []
    summary = tr.write(tmp_path / "t.mp4", duration=0.5, fps=8, sheet=tmp_path / "t.png")
    assert summary.sheet == tmp_path / "t.png" and f", sheet: {summary.sheet})" in summary.line()
    with Image.open(tmp_path / "t.png") as written:
        assert written.format == "PNG" and written.width >= sheets.MIN_WIDTH
    assert tr.sheet(tmp_path / "again.png") == tmp_path / "again.png"
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "t.png").read_bytes()


def test_a_movie_sheet_has_one_block_per_segment(tiny_sd, tmp_path, monkeypatch):
    import latentmorph.render

    drawn = []

    def spy(outlines, steps, path) -> Path:
        drawn.append((len(outlines), [len(o.thumbnails) for o in outlines], steps))
        return write_sheet(outlines, steps, path)

    monkeypatch.setattr(latentmorph.render, "write_sheet", spy)
    keyframes = [Keyframe(p, seed=i, duration=0.5) for i, p in enumerate("abc")]
    project = Project(keyframes, model="tiny-sd", fps=8, settings=BlendSettings(branches=3))
    summary = render_project(
        project, tmp_path / "m.mp4", model=tiny_sd, progress=False, sheet=tmp_path / "m.png"
    )
    assert drawn == [(2, [3, 3], 8)] and summary.sheet.is_file()
