"""Finished segments of a movie kept beside its output (`movie.parts/`), so that a render
stopped part-way (a crash, Ctrl-C, kill -9) recomputes only the segments not finished.

Each segment is a folder named by a hash of everything that shapes its images (`segment_key`)
holding its images as lossless PNGs and `part.json`: the tree's distances and outline and the
SHA-256 of every image and of the record itself. A part is written under a temporary name and
renamed when complete; one that does not match its checksums is removed and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from PIL import Image

from ..blending.tree import Branch, TransitionTree
from ..output_files import cannot_write, remove_output, remove_stale_partials, temporary_sibling

RECORD = "part.json"
IMAGE_NAME = "{index:03d}.png"
# settings that change how images are batched or shown, not what they are
_NOT_SHAPING = ("batched", "max_batch", "fillers")
_LIBRARIES = ("latentmorph", "torch", "diffusers", "transformers", "pillow")


def parts_folder(output: Path) -> Path:
    """The parts folder of an output: `movie.mp4` -> `movie.parts`."""
    return output.with_suffix(".parts")


def library_versions() -> dict[str, str]:
    """The versions of the libraries that compute images."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "none"
    return versions


def segment_key(
    model: str,
    dtype: str,
    keyframes: list[tuple[str, int]],
    settings: dict[str, Any],
) -> str:
    """The hash of what shapes a segment: the model and dtype, the (prompt, seed) of its
    keyframes (with keyframe crossfeed, of every keyframe up to its end, since each one is
    pulled toward the one before it), the resolved settings and the library versions."""
    shaping = {k: v for k, v in settings.items() if k not in _NOT_SHAPING}
    text = json.dumps(
        [model, dtype, keyframes, shaping, library_versions()], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked_record(fields: dict[str, Any]) -> str:
    """`fields` as JSON with the checksum of their canonical form."""
    body = json.dumps(fields, sort_keys=True)
    return json.dumps({"fields": fields, "sha256": _digest(body.encode())}, sort_keys=True)


class PartsFolder:
    """The finished segments of one output: `load` those found intact, `save` new ones, `remove`
    the folder after a complete render."""

    def __init__(self, path: Path, fresh: bool = False) -> None:
        self.path = path
        if fresh:
            remove_output(path)

    def load(self, key: str) -> TransitionTree | None:
        """The segment's tree (images, distances, outline; no latents) if its part is there
        and intact; a part that fails its checksums is removed."""
        folder = self.path / key
        if not folder.is_dir():
            return None
        tree = self._read(folder)
        if tree is None:
            remove_output(folder)
        return tree

    @staticmethod
    def _read(folder: Path) -> TransitionTree | None:
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
            fields = record["fields"]
            if _digest(json.dumps(fields, sort_keys=True).encode()) != record["sha256"]:
                return None
            images = []
            for index, digest in enumerate(fields["images"]):
                data = (folder / IMAGE_NAME.format(index=index)).read_bytes()
                if _digest(data) != digest:
                    return None
                path = folder / IMAGE_NAME.format(index=index)
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            return _tree(images, fields)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def save(self, key: str, tree: TransitionTree) -> None:
        """Writes the segment's part under a temporary name and renames it into place."""
        target = self.path / key
        partial = temporary_sibling(target, "")
        try:
            self.path.mkdir(exist_ok=True)
            remove_stale_partials(target, "")
            partial.mkdir()
            digests = []
            for index, image in enumerate(tree.images):
                path = partial / IMAGE_NAME.format(index=index)
                image.convert("RGB").save(path, format="PNG")
                digests.append(_digest(path.read_bytes()))
            fields = _fields(tree, digests)
            (partial / RECORD).write_text(_checked_record(fields), encoding="utf-8")
            remove_output(target)
            os.replace(partial, target)
        except OSError as error:
            remove_output(partial)
            raise cannot_write(target, error) from None

    def remove(self) -> None:
        """Removes the folder and everything in it."""
        remove_output(self.path)


def detached(tree: TransitionTree) -> TransitionTree:
    """The tree's images, distances and outline, its branches without latents or pixels (what a
    part keeps, and what a worker sends back)."""
    return _tree(tree.images, _fields(tree, []))


def _fields(tree: TransitionTree, digests: list[str]) -> dict[str, Any]:
    index = {id(branch): i for i, branch in enumerate(tree.branches)}
    return {
        "images": digests,
        "distances": tree.distances,
        "fractions": tree.fractions,
        "levels": [b.level for b in tree.branches],
        "starts": [b.start for b in tree.branches],
        "parents": [
            [index[id(b.parents[0])], index[id(b.parents[1])]] if b.parents else None
            for b in tree.branches
        ],
    }


def _tree(images: list[Image.Image], fields: dict[str, Any]) -> TransitionTree:
    """The tree recorded in a part's fields, its branches without latents."""
    branches: list[Branch] = []
    for image, fraction, level, start in zip(
        images, fields["fractions"], fields["levels"], fields["starts"], strict=True
    ):
        branches.append(Branch(float(fraction), int(level), int(start), [], image))
    for branch, parents in zip(branches, fields["parents"], strict=True):
        if parents is not None:
            branch.parents = (branches[parents[0]], branches[parents[1]])
    distances = [float(d) for d in fields["distances"]]
    if len(distances) != len(branches) - 1:
        raise ValueError("distances do not match the images")
    tree = TransitionTree(branches[0], branches[-1], distances[0])
    tree.branches, tree.distances = branches, distances
    return tree
