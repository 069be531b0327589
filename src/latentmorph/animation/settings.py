"""The animation project: a prompt schedule with its parameter schedules and inputs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..blending.settings import BlendSettings, paths_from_folder
from ..checks import (
    check_choice,
    check_device,
    check_flag,
    check_keys,
    check_text,
    show,
)
from ..choices import (
    ANIMATION_MODES,
    AUDIO_COMPONENTS,
    AUDIO_REDUCTIONS,
    BORDER_MODES,
    CURVES,
    DTYPES,
)
from ..control_inputs import control_paths
from ..errors import InputError
from ..image_files import check_image
from ..inputs import in_folder, is_video
from ..limits import (
    FRACTION,
    FRAME,
    MAX_GUIDANCE,
    MAX_MOTION_ANGLE,
    MAX_MOTION_ZOOM,
    MAX_SIZE,
    NOISE,
    STEPS,
    check_duration,
    check_fps,
    check_seed,
)
from ..movie.timing import frame_count
from . import DEFAULT_FPS
from .motion import Motion
from .schedules import (
    ParameterSchedule,
    PromptKeyframe,
    check_prompt_keyframes,
    parse_curve,
    parse_frequencies,
    parse_parameter_schedule,
    scale_keyframes,
)

SHARED_WITH_BLEND = ("steps", "negative_prompt", "width", "height", "guidance_scale")
MEDIA_FIELDS = ("audio", "init_video")
SCHEDULED = ("guidance_scale", "strength", "zoom", "angle", "translation_x", "translation_y")
SCHEDULE_RANGES = {
    "guidance_scale": (0.0, MAX_GUIDANCE),
    "strength": (0.0, 1.0),
    "zoom": (1 / MAX_MOTION_ZOOM, MAX_MOTION_ZOOM),
    "angle": (-MAX_MOTION_ANGLE, MAX_MOTION_ANGLE),
    "translation_x": (-MAX_SIZE, MAX_SIZE),
    "translation_y": (-MAX_SIZE, MAX_SIZE),
}
"""Values each parameter schedule allows (per frame for motion: pixels for translations)."""


@dataclass(frozen=True)
class Coherence:
    """Pulls each frame's latents toward a running reference of earlier frames' latents.

    For the first `steps` steps of each frame: latents ← latents − scale·(latents − ref[i]),
    plus `noise`·N(0, 1) of fresh seeded noise; then ref[i] ← alpha·latents + (1 − alpha)·ref[i].
    A scale of 0 turns it off.
    """

    scale: float = 0.0
    alpha: float = 0.5
    steps: int = 1000
    noise: float = 0.0

    def __post_init__(self) -> None:
        FRACTION.check(self.scale, "coherence.scale")
        FRACTION.check(self.alpha, "coherence.alpha")
        STEPS.check(self.steps, "coherence.steps")
        NOISE.check(self.noise, "coherence.noise")

    @property
    def active(self) -> bool:
        return self.scale > 0


@dataclass
class Animation:
    """Everything needed to render a keyframed animation again.

    Schedules are kept as text (`0:(1.0), 30:(1.05)` or a plain number) and parsed on use.
    """

    prompts: list[PromptKeyframe]
    model: str = "demo"
    fps: float | None = None
    duration: float | None = None
    mode: str = "auto"
    seed: int | None = None
    steps: int | None = None
    negative_prompt: str = ""
    width: int | None = None
    height: int | None = None
    guidance_scale: str | None = None
    strength: str = "0.6"
    zoom: str = "1.0"
    angle: str = "0"
    translation_x: str = "0"
    translation_y: str = "0"
    border: str = "replicate"
    curve: str = "linear"
    frequencies: str = "1.0"
    curve_points: str | None = None
    fixed_noise: bool = False
    colour_match: bool = False
    coherence: Coherence = field(default_factory=Coherence)
    audio: str | None = None
    audio_keyframes: str | None = None
    audio_timing: str | None = None
    audio_reduce: str = "max"
    init_video: str | None = None
    blend: BlendSettings = field(default_factory=BlendSettings)
    device: str | None = None
    dtype: str | None = None
    source: Path | None = field(default=None, compare=False, kw_only=True)
    """The project file or prompt schedule it was read from (not saved): outputs never replace
    it."""

    def __post_init__(self) -> None:
        if not self.prompts:
            raise InputError("prompts: no keyframes; give at least one FRAME: prompt line")
        self.coherence = _nested("coherence", self.coherence, Coherence)
        self.blend = _nested("blend", self.blend, BlendSettings)
        check_text("model", self.model, empty=False)
        for name in ("fixed_noise", "colour_match"):
            check_flag(name, getattr(self, name))
        for name in ("audio", "init_video"):
            if getattr(self, name) is not None:
                check_text(name, getattr(self, name))
        if self.device is not None:
            check_device(self.device)
        if self.dtype is not None:
            check_choice("dtype", self.dtype, DTYPES)
        check_choice("mode", self.mode, ANIMATION_MODES)
        check_choice("border", self.border, BORDER_MODES)
        check_choice("curve", self.curve, CURVES)
        check_choice("audio_reduce", self.audio_reduce, AUDIO_REDUCTIONS)
        for name in ("audio_keyframes", "audio_timing"):
            if getattr(self, name) is not None:
                check_choice(name, getattr(self, name), AUDIO_COMPONENTS)
        if self.fps is not None:
            check_fps(self.fps)
        if self.duration is not None:
            check_duration(self.duration)
            if self.fps is not None or not self.init_video:
                frames = frame_count(self.duration, self.fps or DEFAULT_FPS)
                if len(self.prompts) > 1 and not self.audio_keyframes:
                    scale_keyframes(self.prompts, frames)
        if self.seed is not None:
            check_seed(self.seed)
        if (self.audio_keyframes or self.audio_timing) and not self.audio:
            raise InputError("audio_keyframes/audio_timing: need an audio file (--audio)")
        if self.curve == "curve" and not self.curve_points:
            raise InputError("curve: 'curve' needs curve points, e.g. '0: (0.0), 50: (1.0)'")
        parse_frequencies(self.frequencies)
        if self.curve_points:
            parse_curve(self.curve_points)
        for name in SCHEDULED:
            self.schedule(name)
        guidance = self.schedule("guidance_scale")
        self.blend = self.blend.replace(
            steps=self.steps,
            negative_prompt=self.negative_prompt,
            width=self.width,
            height=self.height,
            guidance_scale=guidance.value_at(0) if guidance and guidance.is_constant else None,
        )
        if self.mode == "blend" and not self.blend_fits:
            raise InputError(f"mode: 'blend' cannot be used with {self._walk_reason()}; use walk")

    def inputs(self) -> list[tuple[str, Path]]:
        """The files it reads, as (field, path) pairs: outputs never replace them."""
        files = (("source file", self.source), ("audio", self.audio))
        files += (("init_video", self.init_video), ("mask", self.blend.mask))
        found = [(name, Path(path)) for name, path in files if path]
        return found + control_paths(self.blend.controlnet)

    def check_media(self) -> None:
        """MediaError naming the field unless the audio and the video inputs decode (their
        first moments are tried), InputError unless the mask and the control images are images
        of allowed size (their headers are read): checked before a render starts."""
        if self.audio:
            from .audio import check_audio_file

            check_audio_file(self.audio, "audio")
        videos = [("init_video", self.init_video)] if self.init_video else []
        images = [("blend.mask", self.blend.mask)] if self.blend.mask is not None else []
        for name, path in control_paths(self.blend.controlnet):
            (videos if is_video(path) else images).append((f"blend.{name}", path))
        if videos:
            from .video_input import check_video_file

            for name, path in videos:
                check_video_file(path, name)
        for name, path in images:
            check_image(path, name)

    def schedule(self, name: str) -> ParameterSchedule | None:
        """The parsed parameter schedule `name` (None: guidance from the model)."""
        text = getattr(self, name)
        if text is None:
            return None
        low, high = SCHEDULE_RANGES[name]
        return parse_parameter_schedule(text, source=name, minimum=low, maximum=high)

    def motion_at(self, frame: int) -> Motion:
        """The camera move from frame − 1 to `frame`."""
        return Motion(
            zoom=self.schedule("zoom").value_at(frame),
            angle=self.schedule("angle").value_at(frame),
            translation_x=self.schedule("translation_x").value_at(frame),
            translation_y=self.schedule("translation_y").value_at(frame),
        )

    @property
    def has_motion(self) -> bool:
        still = {"zoom": 1.0, "angle": 0.0, "translation_x": 0.0, "translation_y": 0.0}
        return any(
            not (self.schedule(n).is_constant and self.schedule(n).value_at(0) == v)
            for n, v in still.items()
        )

    def _walk_reason(self) -> str:
        if len(self.prompts) < 2 and not self.audio_keyframes:
            return "a single prompt keyframe"
        if self.init_video:
            return "a video input"
        if self.has_motion:
            return "motion"
        if self.coherence.active:
            return "coherence"
        if self.guidance_scale is not None and not self.schedule("guidance_scale").is_constant:
            return "a guidance schedule"
        if self.curve != "linear" or self.audio_timing:
            return "a non-linear curve or audio timing"
        return ""

    @property
    def blend_fits(self) -> bool:
        """Whether the prompt segments can be rendered as latent-blending transitions."""
        return not self._walk_reason()

    @property
    def uses_blend(self) -> bool:
        return self.mode == "blend" or (self.mode == "auto" and self.blend_fits)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the project file."""
        data = {"kind": "animation"}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            if f.name == "prompts":
                value = [{"frame": k.frame, "prompt": k.prompt} for k in value]
            elif f.name == "coherence":
                value = dataclasses.asdict(value)
            elif f.name == "blend":
                value = {k: v for k, v in value.as_dict().items() if k not in SHARED_WITH_BLEND}
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path | None = None) -> Animation:
        """The animation described by plain data, with its audio, video and mask paths taken
        relative to `folder` when given; raises InputError naming the field."""
        allowed = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
        ignored = ("kind", "latentmorph", "versions")
        check_keys("", {k: v for k, v in data.items() if k not in ignored}, allowed)
        values = {k: v for k, v in data.items() if k in allowed and k != "prompts"}
        if folder is not None:
            for key in MEDIA_FIELDS:
                if values.get(key):
                    values[key] = in_folder(check_text(key, values[key]), folder)
            if isinstance(values.get("blend"), dict):
                values["blend"] = paths_from_folder(values["blend"], folder)
        return cls(prompts=_prompt_keyframes(data.get("prompts")), **values)


def _prompt_keyframes(prompts: Any) -> list[PromptKeyframe]:
    """The prompt keyframes of a project file's `prompts` list."""
    if not isinstance(prompts, list) or not all(isinstance(p, dict) for p in prompts):
        raise InputError("prompts: give a list of {frame, prompt}")
    keyframes = []
    for i, item in enumerate(prompts):
        check_keys(f"prompts[{i}].", item, ("frame", "prompt"))
        for key in ("frame", "prompt"):
            if key not in item:
                raise InputError(f"prompts[{i}].{key}: missing; give a frame and a prompt")
        frame = FRAME.check(item["frame"], f"prompts[{i}].frame")
        prompt = check_text(f"prompts[{i}].prompt", item["prompt"], empty=False)
        keyframes.append(PromptKeyframe(frame, prompt.strip()))
    return check_prompt_keyframes(keyframes)


def _nested(name: str, value: Any, kind: type) -> Any:
    """A `kind` (Coherence, BlendSettings) given as itself, a mapping of its fields or None."""
    if isinstance(value, kind):
        return value
    if value is None:
        return kind()
    fields = [f.name for f in dataclasses.fields(kind)]
    if not isinstance(value, dict):
        raise InputError(
            f"{name}: {show(value)} is not allowed; give a mapping with keys from: "
            f"{', '.join(fields)}"
        )
    check_keys(f"{name}.", value, fields)
    return kind(**value)
