"""What ControlNet guidance the user asks for, and its control images read and preprocessed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .checks import check_choice, check_keys, check_text, show
from .choices import CONTROL_PREPROCESSORS
from .errors import InputError
from .image_files import fit_image, read_image
from .inputs import in_folder
from .limits import CONTROL_SCALE

if TYPE_CHECKING:
    from .models.adapter import Conditioning, DiffusionAdapter

SPEC_KEYS = ("model", "images", "scale", "preprocess")
CANNY_THRESHOLDS = (100, 200)
"""Canny's hysteresis thresholds on 8-bit grey levels (what ControlNet canny models were
trained with)."""


@dataclass(frozen=True)
class ControlSpec:
    """A ControlNet (hub id or local folder) with its control images (one for every keyframe,
    or one per keyframe), the scale of its residuals and how its images are preprocessed
    (`none`: used as they are; `canny`: Canny edges, white on black)."""

    model: str
    images: tuple[str, ...]
    scale: float = 1.0
    preprocess: str = "none"

    def as_dict(self) -> dict[str, Any]:
        """Plain values, as written to project files."""
        return {
            "model": self.model,
            "images": list(self.images),
            "scale": self.scale,
            "preprocess": self.preprocess,
        }


def control_specs(value: Any, name: str = "controlnet") -> tuple[ControlSpec, ...]:
    """ControlNet specs given as themselves or as {model, images, scale, preprocess} mappings
    (`images` a path or a list of paths); errors name the item and field
    (`controlnet[1].scale`). Image paths, and a model that is a local folder, are made
    absolute."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InputError(
            f"{name}: {show(value)} is not allowed; give a list of {{model, images, scale, "
            "preprocess}}"
        )
    return tuple(_spec(item, f"{name}[{i}]") for i, item in enumerate(value))


def _spec(item: Any, name: str) -> ControlSpec:
    if isinstance(item, ControlSpec):
        item = item.as_dict()
    if not isinstance(item, dict):
        raise InputError(f"{name}: {show(item)} is not allowed; give a mapping with model, images")
    check_keys(f"{name}.", item, SPEC_KEYS)
    model = check_text(f"{name}.model", _text(item.get("model")), empty=False)
    if os.path.isdir(os.path.expanduser(model)):
        model = _absolute(model)
    images = item.get("images")
    if isinstance(images, str | os.PathLike):
        images = [images]
    if isinstance(images, list | tuple) and not images:
        raise InputError(
            f"{name}.images: missing; give an image path, or a list of them (one for every "
            "keyframe, or one per keyframe)"
        )
    if not isinstance(images, list | tuple):
        raise InputError(
            f"{name}.images: {show(images)} is not allowed; give an image path, or a list of "
            "them (one for every keyframe, or one per keyframe)"
        )
    images = [
        _absolute(check_text(f"{name}.images[{j}]", _text(path), empty=False))
        for j, path in enumerate(images)
    ]
    scale = item.get("scale", 1.0)
    CONTROL_SCALE.check(scale, f"{name}.scale")
    preprocess = item.get("preprocess", "none")
    check_choice(f"{name}.preprocess", preprocess, CONTROL_PREPROCESSORS)
    return ControlSpec(model, tuple(images), float(scale), preprocess)


def check_control_count(specs: Sequence[ControlSpec], keyframes: int) -> None:
    """InputError when a ControlNet has neither one image for all keyframes nor one per
    keyframe."""
    for i, spec in enumerate(specs):
        if len(spec.images) not in (1, keyframes):
            raise InputError(
                f"controlnet[{i}].images: {len(spec.images)} given for {keyframes} keyframes; "
                f"give one image for all keyframes or one per keyframe ({keyframes})"
            )


def control_paths(specs: Sequence[ControlSpec]) -> list[tuple[str, Path]]:
    """(field, path) of every control image."""
    return [
        (f"controlnet[{i}].images[{j}]", Path(path))
        for i, spec in enumerate(specs)
        for j, path in enumerate(spec.images)
    ]


def specs_from_folder(value: Any, folder: Path) -> Any:
    """ControlNet specs as a project file in `folder` gives them, with relative image paths
    (and relative model folders that exist) taken from that folder; anything malformed is left
    as it is for `control_specs` to name."""
    if not isinstance(value, list):
        return value
    specs = []
    for item in value:
        if isinstance(item, dict):
            item = dict(item)
            images = item.get("images")
            if isinstance(images, str):
                item["images"] = in_folder(images, folder)
            elif isinstance(images, list):
                item["images"] = [in_folder(path, folder) for path in images]
            model = item.get("model")
            if isinstance(model, str) and model and (folder / model).is_dir():
                item["model"] = in_folder(model, folder)
        specs.append(item)
    return specs


def _text(value: Any) -> Any:
    """A path as text; anything else as it is."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


@dataclass
class ControlImages:
    """The control images of each ControlNet, one per keyframe, as read (not yet fitted), and
    the SHA-256 of all their files' contents (`digest`)."""

    specs: tuple[ControlSpec, ...]
    images: list[list[Image.Image]]
    names: list[list[str]]
    digest: str = ""

    @classmethod
    def read(cls, specs: Sequence[ControlSpec], keyframes: int) -> ControlImages:
        """Reads every control image (errors name the field and file); a ControlNet's one
        image stands for every keyframe."""
        check_control_count(specs, keyframes)
        images, names = [], []
        digest = hashlib.sha256()
        for i, spec in enumerate(specs):
            read = [
                read_image(path, f"controlnet[{i}].images[{j}]")
                for j, path in enumerate(spec.images)
            ]
            for path in spec.images:
                digest.update(Path(path).read_bytes())
            images.append(read * keyframes if len(read) == 1 else read)
            shown = list(spec.images)
            names.append(shown * keyframes if len(shown) == 1 else shown)
        return cls(tuple(specs), images, names, digest.hexdigest())

    def prepare(self, model: DiffusionAdapter, width: int, height: int) -> list[str]:
        """Loads the ControlNets into `model` (none: the model runs without) and fits the
        images to the frame; returns notices of the images whose size changed."""
        model.use_controlnets([s.model for s in self.specs], [s.scale for s in self.specs])
        self.images, notices = self.fitted(width, height)
        return notices

    def conditioned(
        self, model: DiffusionAdapter, conds: Sequence[Conditioning]
    ) -> list[Conditioning]:
        """Each keyframe's conditioning with its control images (after `prepare`)."""
        if not self.specs:
            return list(conds)
        return [
            model.with_control(cond, [[images[k]] for images in self.images])
            for k, cond in enumerate(conds)
        ]

    def fitted(self, width: int, height: int) -> tuple[list[list[Image.Image]], list[str]]:
        """Each ControlNet's images fitted to the frame (scaled to cover it and cropped around
        the centre) and preprocessed, with a notice per image whose size changed."""
        out, notices = [], []
        for spec, images, names in zip(self.specs, self.images, self.names, strict=True):
            done: dict[int, Image.Image] = {}
            row = []
            for image, name in zip(images, names, strict=True):
                if id(image) not in done:
                    fitted, notice = fit_image(image, width, height, f"control image {name}")
                    notices += [notice] if notice else []
                    done[id(image)] = preprocessed(fitted, spec.preprocess)
                row.append(done[id(image)])
            out.append(row)
        return out, notices


def preprocessed(image: Image.Image, preprocess: str) -> Image.Image:
    """The control image as the ControlNet reads it after `preprocess` (none, canny)."""
    if preprocess == "canny":
        return canny_edges(image)
    return image.convert("RGB")


def canny_edges(image: Image.Image) -> Image.Image:
    """Canny edges of an image (OpenCV), white on black, as an RGB image."""
    import cv2

    grey = np.asarray(image.convert("L"))
    edges = cv2.Canny(grey, *CANNY_THRESHOLDS)
    return Image.fromarray(np.repeat(edges[:, :, None], 3, axis=2))
