"""Contact sheets of transition trees: the computed images with the distance of every gap, and
the tree of branches by fraction and injection step, one block per segment."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from ..output_files import cannot_write, remove_stale_partials, temporary_sibling
from .tree import TransitionTree

TILE = 96
"""Longest side of an image's tile, in pixels."""
MAX_COLUMNS = 10
GAP = 48  # least room between tiles, for a distance label
MARGIN = 16
TITLE_HEIGHT = 26
CAPTION_HEIGHT = 18
ROW_SPACING = 8
PLOT_HEIGHT = 150
AXIS_WIDTH = 56  # left of the tree diagram, for the step labels
MIN_WIDTH = 480
DOT = 4
LABEL_SIZE = 12  # font size of titles and distances
CAPTION_SIZE = 11  # font size of captions and axes

BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
FAINT = (130, 130, 130)
GRID = (225, 225, 225)
LINK = (170, 170, 170)
LARGEST = (205, 30, 30)
LARGEST_BAND = (253, 226, 226)
LEVEL_COLOURS = [(40, 40, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189)]

Box = tuple[int, int, int, int]
"""left, top, right, bottom in sheet pixels (right and bottom exclusive)."""


@dataclass(frozen=True)
class TreeOutline:
    """What a sheet shows of one transition tree: thumbnails in transition order, each branch's
    fraction, level, injection step and parents (indices into the branches, None for
    keyframes), and the distance of each gap between neighbours."""

    thumbnails: list[Image.Image]
    fractions: list[float]
    levels: list[int]
    starts: list[int]
    parents: list[tuple[int, int] | None]
    distances: list[float]


@dataclass(frozen=True)
class GapLabel:
    """The label of the gap between tiles `index` and `index + 1`."""

    index: int
    text: str
    centre: tuple[int, int]
    largest: bool


@dataclass(frozen=True)
class SegmentLayout:
    """Where one tree's block was drawn: its title, tiles, gap labels and diagram dots."""

    title: str
    box: Box
    tiles: list[Box]
    gaps: list[GapLabel]
    dots: list[tuple[int, int]]


@dataclass(frozen=True)
class Sheet:
    """A drawn contact sheet and where everything on it is."""

    image: Image.Image
    segments: list[SegmentLayout]


def outline(tree: TransitionTree) -> TreeOutline:
    """The outline of `tree`, its images shrunk (or enlarged) to tiles."""
    index = {id(branch): i for i, branch in enumerate(tree.branches)}
    size = tile_size(tree.branches[0].image.size)
    return TreeOutline(
        thumbnails=[b.image.convert("RGB").resize(size, Image.LANCZOS) for b in tree.branches],
        fractions=[b.fraction for b in tree.branches],
        levels=[b.level for b in tree.branches],
        starts=[b.start for b in tree.branches],
        parents=[
            (index[id(b.parents[0])], index[id(b.parents[1])]) if b.parents else None
            for b in tree.branches
        ],
        distances=list(tree.distances),
    )


def tile_size(size: tuple[int, int]) -> tuple[int, int]:
    """The tile of an image of `size` (width, height): its longest side TILE pixels."""
    scale = TILE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def distance_label(distance: float) -> str:
    """A gap's distance as printed on the sheet (3 significant digits)."""
    return f"{distance:.3g}"


def check_sheet_path(path: str | Path) -> Path:
    """`path` made absolute; InputError unless it names a .png file in a writable folder."""
    target = Path(os.path.abspath(Path(path).expanduser()))
    if target.suffix.lower() != ".png":
        raise InputError(f"sheet: {str(path)!r} is not allowed; give a file name ending in .png")
    if not target.parent.is_dir():
        raise InputError(
            f"sheet: {str(path)!r} is not allowed; its folder {target.parent} does not exist"
        )
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise InputError(
            f"sheet: {str(path)!r} is not allowed; its folder {target.parent} is not writable"
        )
    if target.is_dir():
        raise InputError(f"sheet: {str(path)!r} is not allowed; it is a folder, give a .png file")
    return target


def write_sheet(
    trees: Iterable[TransitionTree | TreeOutline], steps: int, path: str | Path
) -> Path:
    """Writes the contact sheet of `trees` (one block per segment) as a PNG to `path`.

    `steps` is the number of diffusion steps, the depth of the tree diagram. The file appears
    under `path` only once complete.
    """
    target = check_sheet_path(path)
    sheet = draw_sheet([t if isinstance(t, TreeOutline) else outline(t) for t in trees], steps)
    remove_stale_partials(target, target.suffix)
    partial = temporary_sibling(target, target.suffix)
    try:
        sheet.image.save(partial, format="PNG")
        os.replace(partial, target)
    except OSError as error:
        raise cannot_write(target, error) from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def draw_sheet(outlines: Sequence[TreeOutline], steps: int) -> Sheet:
    """The contact sheet of one or more tree outlines, stacked in order."""
    if not outlines:
        raise InputError("sheet: no transition to draw; render at least one segment first")
    if steps < 1 or max(max(o.starts) for o in outlines) > steps:
        raise InputError(f"steps: {steps!r} is not allowed; give the trees' number of steps")
    grid = _Grid.fitting(outlines)
    width = max(MIN_WIDTH, grid.width)
    heights = [_block_height(grid, len(o.thumbnails)) for o in outlines]
    image = Image.new("RGB", (width, sum(heights)), BACKGROUND)
    pen = ImageDraw.Draw(image)
    segments, top = [], 0
    for number, (tree, height) in enumerate(zip(outlines, heights), 1):
        block = _Block(pen, image, (0, top, width, top + height), grid, steps)
        segments.append(block.render(tree, _title(tree, number, len(outlines))))
        top += height
    return Sheet(image, segments)


@dataclass(frozen=True)
class _Grid:
    """Where tiles go: `columns` per row, `gap` pixels apart, each `tile` (width, height)."""

    tile: tuple[int, int]
    columns: int
    gap: int

    @classmethod
    def fitting(cls, outlines: Sequence[TreeOutline]) -> _Grid:
        """The grid that holds every outline's tiles, and its gap labels between them."""
        tile = (
            max(o.thumbnails[0].width for o in outlines),
            max(o.thumbnails[0].height for o in outlines),
        )
        rows = [math.ceil(len(o.thumbnails) / MAX_COLUMNS) for o in outlines]
        columns = max(math.ceil(len(o.thumbnails) / r) for o, r in zip(outlines, rows))
        label = max(
            _font(LABEL_SIZE).getlength(distance_label(d)) for o in outlines for d in o.distances
        )
        return cls(tile, columns, max(GAP, math.ceil(label) + 12))

    @property
    def width(self) -> int:
        """Width of a row of tiles, each followed by its gap, with the margins."""
        return 2 * MARGIN + self.columns * (self.tile[0] + self.gap)

    def rows_height(self, images: int) -> int:
        return math.ceil(images / self.columns) * (self.tile[1] + CAPTION_HEIGHT + ROW_SPACING)

    def position(self, index: int) -> tuple[int, int]:
        """Offset of tile `index` from the top left of the rows."""
        row, column = divmod(index, self.columns)
        return column * (self.tile[0] + self.gap), row * (
            self.tile[1] + CAPTION_HEIGHT + ROW_SPACING
        )


def _block_height(grid: _Grid, images: int) -> int:
    return TITLE_HEIGHT + grid.rows_height(images) + PLOT_HEIGHT + CAPTION_HEIGHT + 2 * MARGIN


def _largest_gap(tree: TreeOutline) -> int:
    return max(range(len(tree.distances)), key=lambda i: tree.distances[i])


def _title(tree: TreeOutline, number: int, count: int) -> str:
    name = "transition" if count == 1 else f"segment {number} of {count}"
    gap = _largest_gap(tree)
    return (
        f"{name}: {len(tree.thumbnails)} images, largest gap "
        f"{distance_label(tree.distances[gap])} between images {gap + 1} and {gap + 2}"
    )


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


class _Block:
    """Draws one tree's block: title, tiles with gap labels, then the tree diagram."""

    def __init__(
        self, pen: ImageDraw.ImageDraw, image: Image.Image, box: Box, grid: _Grid, steps: int
    ) -> None:
        self.pen, self.image, self.box, self.grid, self.steps = pen, image, box, grid, steps

    def render(self, tree: TreeOutline, title: str) -> SegmentLayout:
        left, top, right, _ = self.box
        if top > 0:
            self.pen.line([(MARGIN, top), (right - MARGIN, top)], fill=GRID, width=2)
        self.pen.text((left + MARGIN, top + MARGIN), title, fill=INK, font=_font(LABEL_SIZE))
        rows_top = top + MARGIN + TITLE_HEIGHT
        tiles = self._tiles(tree, rows_top)
        gaps = self._gap_labels(tree, tiles)
        dots = self._diagram(tree, rows_top + self.grid.rows_height(len(tree.thumbnails)))
        return SegmentLayout(title, self.box, tiles, gaps, dots)

    def _tiles(self, tree: TreeOutline, top: int) -> list[Box]:
        boxes = []
        for i, (thumbnail, fraction, start) in enumerate(
            zip(tree.thumbnails, tree.fractions, tree.starts)
        ):
            dx, dy = self.grid.position(i)
            x, y = self.box[0] + MARGIN + dx, top + dy
            self.image.paste(thumbnail, (x, y))
            box = (x, y, x + thumbnail.width, y + thumbnail.height)
            self.pen.rectangle([x - 1, y - 1, box[2], box[3]], outline=GRID)
            caption = f"{i + 1}: {fraction:.3g} @ step {start}"
            self._text((x + thumbnail.width // 2, box[3] + 9), caption, FAINT, "mm")
            boxes.append(box)
        return boxes

    def _gap_labels(self, tree: TreeOutline, tiles: list[Box]) -> list[GapLabel]:
        largest = _largest_gap(tree)
        half = self.grid.gap // 2
        labels = []
        for i, distance in enumerate(tree.distances):
            _, y0, x1, y1 = tiles[i]
            cx, cy = x1 + half, (y0 + y1) // 2
            text = distance_label(distance)
            if i == largest:
                self.pen.rounded_rectangle(
                    [cx - half + 3, cy - 10, cx + half - 3, cy + 10],
                    radius=4,
                    fill=LARGEST_BAND,
                    outline=LARGEST,
                )
            colour = LARGEST if i == largest else INK
            self.pen.text((cx, cy), text, fill=colour, font=_font(LABEL_SIZE), anchor="mm")
            labels.append(GapLabel(i, text, (cx, cy), i == largest))
        return labels

    def _diagram(self, tree: TreeOutline, top: int) -> list[tuple[int, int]]:
        left = self.box[0] + MARGIN + AXIS_WIDTH
        right = self.box[2] - MARGIN - DOT
        plot_top, plot_bottom = top + DOT + 6, top + PLOT_HEIGHT - DOT

        def point(fraction: float, step: int) -> tuple[int, int]:
            x = left + round(fraction * (right - left))
            return x, plot_top + round(step / self.steps * (plot_bottom - plot_top))

        gap = _largest_gap(tree)
        band = point(tree.fractions[gap], 0)[0], point(tree.fractions[gap + 1], 0)[0]
        self.pen.rectangle([band[0], plot_top, band[1], plot_bottom], fill=LARGEST_BAND)
        labelled = -CAPTION_HEIGHT
        for step in sorted({0, self.steps, *tree.starts}):
            y = point(0, step)[1]
            self.pen.line([(left, y), (right, y)], fill=GRID)
            if y - labelled >= 12:
                self._text((left - 8, y), f"step {step}", FAINT, "rm")
                labelled = y
        for fraction, text in ((0.0, "0"), (0.5, "fraction"), (1.0, "1")):
            self._text((point(fraction, 0)[0], plot_bottom + 12), text, FAINT, "mm")
        dots = [point(f, s) for f, s in zip(tree.fractions, tree.starts)]
        for dot, parents in zip(dots, tree.parents):
            for parent in parents or ():
                self.pen.line([dot, dots[parent]], fill=LINK, width=1)
        for (x, y), level in zip(dots, tree.levels):
            colour = LEVEL_COLOURS[level % len(LEVEL_COLOURS)]
            self.pen.ellipse([x - DOT, y - DOT, x + DOT, y + DOT], fill=colour)
        return dots

    def _text(self, xy: tuple[int, int], text: str, fill: tuple[int, int, int], anchor: str):
        self.pen.text(xy, text, fill=fill, font=_font(CAPTION_SIZE), anchor=anchor)
