"""ControlNet guidance of an animation: one control image for every frame, or a control video
whose frame k guides frame k."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from PIL import Image

from ..control_inputs import ControlSpec, preprocessed
from ..errors import InputError, MediaError
from ..image_files import fit_image, read_image
from ..inputs import check_input_file, is_video
from ..models.adapter import Conditioning, DiffusionAdapter
from .video_input import VideoInput


class ControlFrames:
    """The control images of each frame for each ControlNet, read in frame order (a control
    video's last frame is held past its end)."""

    def __init__(
        self, specs: Sequence[ControlSpec], size: tuple[int, int], model: DiffusionAdapter
    ) -> None:
        for i, spec in enumerate(specs):
            if len(spec.images) != 1:
                raise InputError(
                    f"controlnet[{i}].images: {len(spec.images)} given; an animation takes one "
                    "control image or control video per ControlNet"
                )
        self.specs = tuple(specs)
        self.size = size
        self.notices: list[str] = []
        self._sources = [self._source(i, spec) for i, spec in enumerate(self.specs)]
        self._last: list[Image.Image | None] = [None] * len(self.specs)
        self._frame = 0
        model.use_controlnets([s.model for s in self.specs], [s.scale for s in self.specs])

    def _source(self, index: int, spec: ControlSpec) -> Image.Image | Iterator[Image.Image]:
        """A still control image, or the video's frames as they are read (its first one read
        here, so that a notice about its size comes before the render starts)."""
        path, field = spec.images[0], f"controlnet[{index}].images[0]"
        if not is_video(path):
            image = read_image(path, field)
            return self._fitted(image, path, spec)
        check_input_file(path, field, "a control image or video")
        frames = (self._fitted(frame, path, spec, video=True) for frame in VideoInput(path))
        first = next(frames, None)
        if first is None:
            raise MediaError(f"{field}: {path} holds no video frame; give a control image or video")
        return itertools.chain([first], frames)

    def _fitted(self, image: Image.Image, name: str, spec: ControlSpec, video: bool = False):
        what = "control video" if video else "control image"
        fitted, notice = fit_image(image, *self.size, f"{what} {name}")
        if notice and not any(name in n for n in self.notices):
            self.notices.append(notice)
        return preprocessed(fitted, spec.preprocess)

    def _at(self, frame: int) -> list[Image.Image]:
        """Each ControlNet's control image of `frame` (frames asked for in increasing order)."""
        while self._frame <= frame:
            for i, source in enumerate(self._sources):
                if isinstance(source, Image.Image):
                    self._last[i] = source
                else:
                    self._last[i] = next(source, self._last[i])
            self._frame += 1
        return list(self._last)

    def conditioned(
        self, model: DiffusionAdapter, cond: Conditioning, frames: Sequence[int]
    ) -> Conditioning:
        """`cond`, a row per frame of `frames`, with each frame's control images."""
        if not self.specs:
            return cond
        images = [self._at(frame) for frame in frames]
        return model.with_control(cond, [list(row) for row in zip(*images, strict=True)])
