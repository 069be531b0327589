"""Settings of a latent-blending transition, validated where they enter."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import check_choice, check_flag, check_keys, check_text, show
from ..choices import COMPILE_MODES, DISTANCES, FILLERS, PLACEMENTS, QUALITIES, VAE_DTYPES
from ..control_inputs import ControlSpec, control_specs, specs_from_folder
from ..errors import InputError
from ..inputs import in_folder
from ..limits import FRACTION, TIME_BUDGET, check_guidance, check_size
from ..models.adapter import DiffusionAdapter
from .crossfeed import Crossfeed
from .plan import (
    BranchingPlan,
    check_branches,
    check_fraction,
    check_steps,
    quality_settings,
)

DEFAULT_BRANCHES = 12


def paths_from_folder(settings: dict, folder: Path) -> dict:
    """Settings as a project file in `folder` gives them, with the relative paths of the mask and
    of the ControlNets' images (and model folders) taken from that folder."""
    settings = dict(settings)
    if "mask" in settings:
        settings["mask"] = in_folder(settings["mask"], folder)
    if "controlnet" in settings:
        settings["controlnet"] = specs_from_folder(settings["controlnet"], folder)
    return settings


def _crossfeed(name: str, value) -> Crossfeed | None:
    """A crossfeed given as itself, a {power, range, decay} mapping or three numbers; errors
    name the setting and the part (`keyframe_crossfeed.power`)."""
    if value is None or isinstance(value, Crossfeed):
        return value
    parts = ("power", "range", "decay")
    if isinstance(value, dict):
        check_keys(f"{name}.", value, parts)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        value = dict(zip(parts, value))
    else:
        raise InputError(
            f"{name}: {show(value)} is not allowed; use three numbers: power range decay"
        )
    for part, number in value.items():
        FRACTION.check(number, f"{name}.{part}")
    return Crossfeed(**value)


@dataclass(frozen=True)
class BlendSettings:
    """Everything that shapes a transition; None means the model family's default.

    Branch count: `branches`, or `time_budget` seconds, or a `quality` preset, or a manual
    `plan` (`COUNT@STRENGTH` / `COUNT@sSTEP` items); with none of them, 12 branches.
    `placement` decides where each level's branches go (`adaptive`, `even`, `sequential`; see
    `blending.placement`). `max_batch` caps the images in one UNet batch (None: a whole round
    of a level; halved automatically when the device runs out of memory). `compile` (auto, on,
    off) runs the UNet from CUDA graphs or compiled (see `models.compiled`) and `vae_dtype`
    (auto, float32, bfloat16, float16) is the dtype of decoding; neither changes the images
    beyond half-precision rounding. `fillers` (flow, crossfade) is how a movie's filler frames
    between computed images are made (see `movie.fillers`). `mask` is the path of a mask image
    (white: may change, black: kept as keyframe 1, grey: partly; see `blending.kept_region`),
    made absolute. `controlnet` guides every image with ControlNets and their control images
    (see `control_inputs.ControlSpec`).
    """

    steps: int | None = None
    branches: int | None = None
    time_budget: float | None = None
    depth_strength: float = 0.5
    quality: str | None = None
    plan: str | None = None
    guidance_scale: float | None = None
    guidance_damper: float = 0.7
    negative_prompt: str = ""
    prompt_weighting: bool = False
    width: int | None = None
    height: int | None = None
    keyframe_crossfeed: Crossfeed = field(default_factory=Crossfeed)
    parental_crossfeed: Crossfeed | None = None
    batched: bool = True
    max_batch: int | None = None
    distance: str = "auto"
    placement: str = "adaptive"
    compile: str = "auto"
    vae_dtype: str = "auto"
    fillers: str = "flow"
    mask: str | None = None
    controlnet: tuple[ControlSpec, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "controlnet", control_specs(self.controlnet))
        set_(self, "keyframe_crossfeed", _crossfeed("keyframe_crossfeed", self.keyframe_crossfeed))
        set_(self, "parental_crossfeed", _crossfeed("parental_crossfeed", self.parental_crossfeed))
        if self.keyframe_crossfeed is None:
            set_(self, "keyframe_crossfeed", Crossfeed())
        if self.steps is not None:
            check_steps(self.steps)
        if self.branches is not None:
            check_branches(self.branches)
        check_flag("batched", self.batched)
        check_flag("prompt_weighting", self.prompt_weighting)
        check_fraction("depth_strength", self.depth_strength)
        check_fraction("guidance_damper", self.guidance_damper)
        chosen = [n for n in ("branches", "time_budget", "quality", "plan") if getattr(self, n)]
        if len(chosen) > 1:
            raise InputError(
                f"{' and '.join(chosen)}: give only one of branches, time_budget, quality, plan"
            )
        if self.time_budget is not None:
            TIME_BUDGET.check(self.time_budget, "time_budget")
        if self.quality is not None:
            check_choice("quality", self.quality, QUALITIES)
        if self.guidance_scale is not None:
            check_guidance(self.guidance_scale)
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                check_size(getattr(self, name), name)
        if self.max_batch is not None and (
            not isinstance(self.max_batch, int)
            or isinstance(self.max_batch, bool)
            or self.max_batch < 1
        ):
            raise InputError(
                f"max_batch: {self.max_batch!r} is not allowed; use a whole number of at least 1"
            )
        if not isinstance(self.negative_prompt, str):
            raise InputError(f"negative_prompt: {self.negative_prompt!r} is not allowed; use text")
        check_choice("distance", self.distance, DISTANCES)
        check_choice("placement", self.placement, PLACEMENTS)
        check_choice("compile", self.compile, COMPILE_MODES)
        check_choice("vae_dtype", self.vae_dtype, VAE_DTYPES)
        check_choice("fillers", self.fillers, FILLERS)
        if self.mask is not None:
            mask = os.fspath(self.mask) if isinstance(self.mask, os.PathLike) else self.mask
            mask = check_text("mask", mask, empty=False)
            set_(self, "mask", os.path.abspath(os.path.expanduser(mask)))
        if self.plan is not None:
            BranchingPlan.parse(self.plan, self.steps or 1000)

    def replace(self, **changes) -> BlendSettings:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """Plain values, as written to project files."""
        data = dataclasses.asdict(self)
        for name in ("keyframe_crossfeed", "parental_crossfeed"):
            if data[name] is not None:
                data[name] = [data[name]["power"], data[name]["range"], data[name]["decay"]]
        data["controlnet"] = [spec.as_dict() for spec in self.controlnet]
        return data

    def resolve(
        self, model: DiffusionAdapter, frames: int = 100
    ) -> tuple[BlendSettings, list[str]]:
        """Settings with the family defaults filled in, the quality preset applied and the size
        rounded to the model's multiple; with notices about what was changed."""
        d = model.defaults
        notices = []
        steps, branches = self.steps, self.branches
        if self.quality:
            preset_steps, branches = quality_settings(self.quality, frames)
            if steps is None and not d.few_step:
                steps = preset_steps
        width, height = self.width or d.width, self.height or d.height
        m = model.size_multiple
        rounded = (max(m, round(width / m) * m), max(m, round(height / m) * m))
        if rounded != (width, height):
            notices.append(
                f"size {width}x{height} rounded to {rounded[0]}x{rounded[1]} "
                f"(a multiple of {m} for this model)"
            )
        resolved = self.replace(
            steps=steps or d.steps,
            branches=branches,
            quality=None,
            guidance_scale=d.guidance_scale if self.guidance_scale is None else self.guidance_scale,
            width=rounded[0],
            height=rounded[1],
            parental_crossfeed=self.parental_crossfeed or Crossfeed(*d.parental_crossfeed),
        )
        if resolved.plan is None and resolved.time_budget is None and branches is None:
            resolved = resolved.replace(branches=DEFAULT_BRANCHES)
        return resolved, notices

    def branching_plan(self) -> BranchingPlan:
        """The plan of resolved settings that are not planned by time budget."""
        if self.plan is not None:
            return BranchingPlan.parse(self.plan, self.steps)
        return BranchingPlan.auto(self.steps, self.branches, self.depth_strength)

    def guidance_at(self, fraction: float) -> float:
        """Guidance at a point of the transition: full at the keyframes, damped in the middle.

        g_eff = g − (g − 1)·(1 − damper)·(1 − |f − 0.5| / 0.5), for g > 1; at the middle
        it is 1 + (g − 1)·damper. A damper of 1 keeps the guidance constant.
        """
        g = self.guidance_scale
        if g <= 1:
            return g
        return g - (g - 1) * (1 - self.guidance_damper) * (1 - abs(fraction - 0.5) / 0.5)
