"""The project file: keyframes and settings, saved beside every output and reloadable."""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from .blending.plan import quality_settings
from .blending.settings import BlendSettings, paths_from_folder
from .checks import check_choice, check_device, check_keys, check_text, show
from .choices import DTYPES
from .control_inputs import check_control_count, control_paths
from .errors import InputError, OutputError, ProjectFileError
from .image_files import check_image
from .inputs import free_name, in_folder, read_text
from .limits import SEED_LIMIT, check_duration, check_fps, check_length, check_seed
from .movie.timing import keyframe_positions
from .output_files import StagedText, check_name_length, remove_output

FORMAT_VERSION = 1
PROJECT_KEYS = ("model", "fps", "duration", "device", "dtype", "settings", "keyframes")
IGNORED_KEYS = ("latentmorph", "kind", "versions")
KEYFRAME_KEYS = ("prompt", "seed", "duration", "image")
RECORDED_KEYFRAME_KEYS = ("psnr",)
"""Keys a render writes into keyframes for the reader (measurements), ignored when read."""


@dataclass
class Keyframe:
    """A prompt with its seed, and the time in seconds to the next keyframe; with `image` (a
    file), the keyframe is that image (see `BlendingEngine.begin`) and the prompt, which may be
    empty, conditions the way to and from it."""

    prompt: str
    seed: int | None = None
    duration: float | None = None
    image: str | None = None


@dataclass
class Project:
    """Keyframes, model and settings: everything needed to render a movie again."""

    keyframes: list[Keyframe]
    model: str = "demo"
    fps: float = 30.0
    duration: float = 10.0
    settings: BlendSettings = field(default_factory=BlendSettings)
    device: str | None = None
    dtype: str | None = None
    source: Path | None = field(default=None, compare=False, kw_only=True)
    """The project file it was read from (not saved): outputs never replace it."""

    def __post_init__(self) -> None:
        if len(self.keyframes) < 2:
            raise InputError(f"keyframes: {len(self.keyframes)} given; at least 2 are needed")
        for i, kf in enumerate(self.keyframes):
            if kf.image is not None:
                self.keyframes[i] = kf = _with_image_checked(kf, f"keyframes[{i}].image")
            if kf.prompt is not None:
                check_text(f"keyframes[{i}].prompt", kf.prompt)
            if kf.image is None and (kf.prompt is None or not kf.prompt.strip()):
                raise InputError(
                    f"keyframes[{i}].prompt: missing; give a non-empty prompt or an image"
                )
            if kf.seed is not None:
                check_seed(kf.seed, f"keyframes[{i}].seed")
            if kf.duration is not None:
                check_duration(kf.duration, f"keyframes[{i}].duration")
        check_text("model", self.model, empty=False)
        if self.device is not None:
            check_device(self.device)
        if self.dtype is not None:
            check_choice("dtype", self.dtype, DTYPES)
        check_fps(self.fps)
        check_duration(self.duration)
        check_length(sum(self.durations), self.fps)
        keyframe_positions(self.durations, self.fps)
        check_control_count(self.settings.controlnet, len(self.keyframes))
        if self.settings.mask is not None:
            check_image(self.settings.mask, "settings.mask")
        for field_name, path in control_paths(self.settings.controlnet):
            check_image(path, f"settings.{field_name}")

    def inputs(self) -> list[tuple[str, Path]]:
        """The files it was read from, as (field, path) pairs: outputs never replace them."""
        files = [("project file", self.source), ("mask", self.settings.mask)]
        files += [(f"keyframe {i + 1} image", kf.image) for i, kf in enumerate(self.keyframes)]
        found = [(name, Path(path)) for name, path in files if path is not None]
        return found + control_paths(self.settings.controlnet)

    @property
    def durations(self) -> list[float]:
        """Seconds of each segment between consecutive keyframes."""
        return [kf.duration or self.duration for kf in self.keyframes[:-1]]

    @property
    def segment_frames(self) -> int:
        """Frames of an average segment: what quality presets are sized for."""
        positions = keyframe_positions(self.durations, self.fps)
        return round(positions[-1] / (len(positions) - 1))

    def check_quality(self, name: str = "quality") -> None:
        """InputError naming `name` when the quality preset gives more branches than allowed
        for the segments' length (checked before a render starts)."""
        if self.settings.quality is not None:
            quality_settings(self.settings.quality, self.segment_frames, name)

    def with_seeds(self) -> Project:
        """A copy in which every keyframe without a seed has a random one."""
        keyframes = [
            dataclasses.replace(
                kf, seed=secrets.randbelow(SEED_LIMIT) if kf.seed is None else kf.seed
            )
            for kf in self.keyframes
        ]
        return dataclasses.replace(self, keyframes=keyframes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data as written to a project file."""
        data: dict[str, Any] = {"kind": "movie", "model": self.model}
        data.update(fps=self.fps, duration=self.duration, device=self.device, dtype=self.dtype)
        data["settings"] = self.settings.as_dict()
        data["keyframes"] = []
        for i, kf in enumerate(self.keyframes):
            item: dict[str, Any] = {"prompt": kf.prompt, "seed": kf.seed}
            if kf.image is not None:
                item["image"] = kf.image
            if i < len(self.keyframes) - 1:
                item["duration"] = self.durations[i]
            data["keyframes"].append(item)
        return data

    def save(self, path: str | Path) -> Path:
        """Writes the project file."""
        return save_project_data(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> Project:
        """Reads a movie project file; errors name the file and the field."""
        data = read_project_data(path)
        if project_kind(data) != "movie":
            raise ProjectFileError(f"{path}: holds an animation, not a movie of keyframes")
        with errors_naming(path):
            project = cls.from_dict(data, folder=Path(path).parent)
        project.source = Path(path)
        return project

    @classmethod
    def from_dict(cls, data: Any, folder: Path | None = None) -> Project:
        """The project described by plain data, with the paths of the mask, keyframe images and
        control images taken relative to `folder` when given; raises InputError naming the
        field."""
        if not isinstance(data, dict):
            raise InputError("the file must hold a mapping with a 'keyframes' list")
        check_keys("", data, PROJECT_KEYS + IGNORED_KEYS)
        keyframes = data.get("keyframes")
        if keyframes is None:
            raise InputError("keyframes: missing; give a list of {prompt, seed, duration}")
        if not isinstance(keyframes, list):
            raise InputError(
                f"keyframes: {show(keyframes)} is not allowed; give a list of "
                "{prompt, seed, duration}"
            )
        parsed = []
        for i, item in enumerate(keyframes):
            if isinstance(item, str):
                item = {"prompt": item}
            if not isinstance(item, dict):
                raise InputError(f"keyframes[{i}]: give a mapping with a prompt")
            check_keys(f"keyframes[{i}].", item, KEYFRAME_KEYS + RECORDED_KEYFRAME_KEYS)
            image = item.get("image")
            if folder is not None:
                image = in_folder(image, folder)
            parsed.append(
                Keyframe(item.get("prompt"), item.get("seed"), item.get("duration"), image)
            )
        settings = data.get("settings") or {}
        if not isinstance(settings, dict):
            raise InputError("settings: give a mapping of setting names to values")
        allowed = tuple(f.name for f in dataclasses.fields(BlendSettings))
        check_keys("settings.", settings, allowed)
        if folder is not None:
            settings = paths_from_folder(settings, folder)
        options = {k: data[k] for k in PROJECT_KEYS[:5] if data.get(k) is not None}
        return cls(keyframes=parsed, settings=BlendSettings(**settings), **options)


def _with_image_checked(keyframe: Keyframe, field: str) -> Keyframe:
    """The keyframe with its image's path made absolute once the file's header shows an image
    of allowed size (its prompt "" when none is given)."""
    image = keyframe.image
    image = os.fspath(image) if isinstance(image, os.PathLike) else image
    path = check_text(field, image, empty=False)
    path = os.path.abspath(check_image(os.path.expanduser(path), field))
    return dataclasses.replace(keyframe, image=path, prompt=keyframe.prompt or "")


MAX_NESTING = 64
"""Depth of nested mappings and lists in a project file (its own keys go 3 deep)."""
PLAIN_TAGS = tuple(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map")
)


class _Refused(yaml.MarkedYAMLError):
    """YAML that is well formed but not allowed in a project file."""


class PlainLoader(yaml.SafeLoader):
    """A SafeLoader for plain data only: anchors and aliases (which let a few bytes expand to
    gigabytes), tags other than the standard ones (`!!python/object`, ...) and nesting deeper
    than MAX_NESTING are refused while the file is composed, before any object is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                problem="anchors and aliases (&name, *name) are not allowed; write the values out",
                problem_mark=event.start_mark,
            )
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in PLAIN_TAGS and tag != "!":
            written = tag.replace("tag:yaml.org,2002:", "!!", 1)
            raise _Refused(
                problem=f"tag {show(written)} is not allowed; project files hold plain values "
                "without tags",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise _Refused(
                    problem=f"nested more than {MAX_NESTING} levels deep; allowed: at most "
                    f"{MAX_NESTING}",
                    problem_mark=event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_project_data(path: str | Path) -> Any:
    """The plain data of a project file (UTF-8 YAML of at most MAX_PROJECT_FILE_BYTES, without
    anchors, aliases or tags); errors name the file."""
    path = Path(path)
    try:
        text = read_text(path, "project file (.yaml)")
    except InputError as error:
        raise ProjectFileError(str(error)) from None
    try:
        return yaml.load(text, Loader=PlainLoader)
    except _Refused as error:
        where = error.problem_mark
        raise ProjectFileError(f"{path}: line {where.line + 1}: {error.problem}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        problem = getattr(error, "problem", None)
        detail = f" ({problem})" if problem else ""
        raise ProjectFileError(f"{path}: malformed YAML{line}{detail}") from None


def project_kind(data: Any) -> str:
    """What a project file's data describes: "movie" (of keyframes) or "animation"."""
    return "animation" if isinstance(data, dict) and data.get("kind") == "animation" else "movie"


@contextmanager
def errors_naming(path: str | Path) -> Iterator[None]:
    """Turns input errors raised inside into project file errors that name the file."""
    try:
        yield
    except InputError as error:
        raise ProjectFileError(f"{path}: {error}") from None


def _project_text(data: dict[str, Any]) -> str:
    """A project file's YAML text: the format version, `data` and the library versions."""
    data = {"latentmorph": FORMAT_VERSION, **data, "versions": library_versions()}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def save_project_data(data: dict[str, Any], path: str | Path) -> Path:
    """Writes a project file with the library versions (under a temporary name, then renamed);
    OutputError when the system refuses it."""
    return StagedText(Path(path), _project_text(data)).commit()


def library_versions() -> dict[str, str]:
    """Versions of latentmorph and the libraries that shape its output."""
    versions = {}
    for name in ("latentmorph", "torch", "diffusers", "transformers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _beside(output: str | Path) -> Path:
    output = Path(os.fspath(output).rstrip("/\\"))
    return output.with_name(output.stem + ".yaml") if output.suffix else output.with_suffix(".yaml")


def project_path_for(
    output: str | Path, inputs: Iterable[tuple[str, Path]] = (), note: bool = True
) -> Path:
    """Where the project file of an output goes: beside it, with the extension .yaml; or when
    that is one of the `inputs` ((field, path) pairs), NAME.render.yaml, with a logged note
    (unless `note` is false)."""
    path = _beside(output)
    free = free_name(path, [p for _, p in inputs])
    if free != path and note:
        logging.getLogger("latentmorph").warning(
            f"project file written as {free}: {path} is an input and is not overwritten"
        )
    return free


def check_project_path(output: str | Path, inputs: Iterable[tuple[str, Path]] = ()) -> Path:
    """The project file path beside `output`; OutputError when it cannot be written there (an
    existing folder of that name, a name too long). Check the output itself first."""
    path = Path(os.path.abspath(project_path_for(output, inputs, note=False)))
    check_name_length(f"the project file {path}", path)
    if path.is_dir():
        raise OutputError(
            f"cannot write the project file {path} beside {os.fspath(output)}: it is an existing "
            "folder; move it or give the output another name"
        )
    return path


class ProjectFileBeside:
    """The project file of an output, written with it: `stage(data)` writes it under a
    temporary name while the output is still being written; when the `with` block ends well
    it is put in place, else removed. The output never stays without its project file: when
    putting the project file in place fails, the output is removed and OutputError raised.
    """

    def __init__(self, output: Path, inputs: Iterable[tuple[str, Path]] = ()) -> None:
        self.output = output
        inputs = list(inputs)
        check_project_path(output, inputs)
        self.path = project_path_for(output, inputs)
        self._staged: StagedText | None = None

    def stage(self, data: dict[str, Any]) -> None:
        """Writes the project file `data` under its temporary name."""
        self._staged = StagedText(self.path, _project_text(data))

    def __enter__(self) -> ProjectFileBeside:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._staged is None:
            return
        if exc_type is not None:
            self._staged.discard()
            return
        try:
            self._staged.commit()
        except BaseException:
            remove_output(self.output)
            raise
