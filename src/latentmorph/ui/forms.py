"""Form values of the page (a name → value mapping) to settings and animations, and back."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..animation.schedules import format_prompt_schedule, parse_prompt_schedule
from ..animation.settings import Animation, Coherence
from ..blending.settings import DEFAULT_BRANCHES, BlendSettings
from ..checks import check_choice
from ..errors import InputError

BRANCH_MODES = ("branches", "time budget", "quality", "plan")
NO_AUDIO_COMPONENT = "off"

BLEND_DEFAULTS: dict[str, Any] = {
    "steps": 0,
    "width": 0,
    "height": 0,
    "guidance_scale": None,
    "guidance_damper": 0.7,
    "depth_strength": 0.5,
    "branch_mode": "branches",
    "branches": DEFAULT_BRANCHES,
    "time_budget": 60.0,
    "quality": "medium",
    "plan": "",
    "placement": "adaptive",
    "compile": "auto",
    "fillers": "flow",
    "kf_power": 0.0,
    "kf_range": 0.0,
    "kf_decay": 0.0,
    "parental_default": True,
    "p_power": 0.3,
    "p_range": 0.6,
    "p_decay": 0.9,
    "prompt_weighting": False,
    "fps": 30.0,
    "mask": None,
    "cn_model": "",
    "cn_image": None,
    "cn_scale": 1.0,
    "cn_preprocess": "none",
}
MOVIE_DEFAULTS: dict[str, Any] = {"negative_prompt": "", "segment_duration": 3.0}
ANIMATION_DEFAULTS: dict[str, Any] = {
    "a_prompts": "0: a calm lake at dawn\n48: a stormy sea at night",
    "a_negative_prompt": "",
    "a_mode": "auto",
    "a_seed": None,
    "a_duration": None,
    "a_guidance": "",
    "a_strength": "0.6",
    "a_zoom": "1.0",
    "a_angle": "0",
    "a_tx": "0",
    "a_ty": "0",
    "a_border": "replicate",
    "a_curve": "linear",
    "a_frequencies": "1.0",
    "a_curve_points": "",
    "a_fixed_noise": False,
    "a_colour_match": False,
    "a_coh_scale": 0.0,
    "a_coh_alpha": 0.5,
    "a_coh_steps": 1000,
    "a_coh_noise": 0.0,
    "a_audio": None,
    "a_audio_keyframes": NO_AUDIO_COMPONENT,
    "a_audio_timing": NO_AUDIO_COMPONENT,
    "a_audio_reduce": "max",
    "a_init_video": None,
}


def _whole(name: str, value: Any, zero_means_default: bool = True) -> int | None:
    if value in (None, ""):
        return None
    if float(value) != int(value):
        raise InputError(f"{name}: {value!r} is not allowed; use a whole number")
    number = int(value)
    return None if zero_means_default and number == 0 else number


def _number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _text(value: Any) -> str | None:
    text = (value or "").strip()
    return text or None


def blend_settings(form: Mapping[str, Any]) -> BlendSettings:
    """The blending settings in the form; 0 or empty means the model's default."""
    mode = form["branch_mode"]
    check_choice("branch mode", mode, BRANCH_MODES)
    parental = (form["p_power"], form["p_range"], form["p_decay"])
    return BlendSettings(
        steps=_whole("steps", form["steps"]),
        branches=_whole("branches", form["branches"]) if mode == "branches" else None,
        time_budget=_number(form["time_budget"]) if mode == "time budget" else None,
        quality=form["quality"] if mode == "quality" else None,
        plan=_text(form["plan"]) if mode == "plan" else None,
        depth_strength=float(form["depth_strength"]),
        placement=form["placement"],
        compile=form["compile"],
        fillers=form["fillers"],
        guidance_scale=_number(form["guidance_scale"]),
        guidance_damper=float(form["guidance_damper"]),
        negative_prompt=form.get("negative_prompt") or "",
        prompt_weighting=bool(form["prompt_weighting"]),
        width=_whole("width", form["width"]),
        height=_whole("height", form["height"]),
        keyframe_crossfeed=(form["kf_power"], form["kf_range"], form["kf_decay"]),
        parental_crossfeed=None if form["parental_default"] else parental,
        mask=form["mask"] or None,
        controlnet=_controlnet(form),
    )


def _controlnet(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The form's one ControlNet, with its one control image for every keyframe (none without
    a ControlNet model)."""
    model = _text(form["cn_model"])
    if model is None:
        return []
    if not form["cn_image"]:
        raise InputError("ControlNet: no control image; upload one, or clear the ControlNet")
    return [
        {
            "model": model,
            "images": [form["cn_image"]],
            "scale": float(form["cn_scale"]),
            "preprocess": form["cn_preprocess"],
        }
    ]


def blend_form(settings: BlendSettings) -> dict[str, Any]:
    """Form values showing `settings` (the inverse of `blend_settings`)."""
    mode = next(
        (m for m, v in zip(BRANCH_MODES, _branch_values(settings)) if v is not None), "branches"
    )
    kf, parental = settings.keyframe_crossfeed, settings.parental_crossfeed
    values = {
        "steps": settings.steps or 0,
        "width": settings.width or 0,
        "height": settings.height or 0,
        "guidance_scale": settings.guidance_scale,
        "guidance_damper": settings.guidance_damper,
        "depth_strength": settings.depth_strength,
        "branch_mode": mode,
        "branches": settings.branches or DEFAULT_BRANCHES,
        "time_budget": settings.time_budget or BLEND_DEFAULTS["time_budget"],
        "quality": settings.quality or BLEND_DEFAULTS["quality"],
        "plan": settings.plan or "",
        "placement": settings.placement,
        "compile": settings.compile,
        "fillers": settings.fillers,
        "kf_power": kf.power,
        "kf_range": kf.range,
        "kf_decay": kf.decay,
        "parental_default": parental is None,
        "prompt_weighting": settings.prompt_weighting,
        "negative_prompt": settings.negative_prompt,
        "mask": settings.mask,
    }
    values.update(_controlnet_form(settings))
    if parental is not None:
        values.update(p_power=parental.power, p_range=parental.range, p_decay=parental.decay)
    return values


def _controlnet_form(settings: BlendSettings) -> dict[str, Any]:
    """The ControlNet fields: the first ControlNet with its first control image, or the
    defaults (no ControlNet), so that a loaded project never keeps an earlier one."""
    if not settings.controlnet:
        return {k: BLEND_DEFAULTS[k] for k in ("cn_model", "cn_image", "cn_scale", "cn_preprocess")}
    net = settings.controlnet[0]
    return {
        "cn_model": net.model,
        "cn_image": net.images[0],
        "cn_scale": net.scale,
        "cn_preprocess": net.preprocess,
    }


def shown_settings(settings: BlendSettings) -> BlendSettings:
    """`settings` as the form shows them (see `blend_form`): the first ControlNet only, with
    its first control image for every keyframe."""
    if not settings.controlnet:
        return settings
    net = settings.controlnet[0]
    return settings.replace(controlnet=(dataclasses.replace(net, images=net.images[:1]),))


def _branch_values(settings: BlendSettings) -> tuple:
    return (settings.branches, settings.time_budget, settings.quality, settings.plan)


def _component(value: Any) -> str | None:
    return None if value in (None, "", NO_AUDIO_COMPONENT) else value


def animation(
    form: Mapping[str, Any],
    model: str,
    audio: str | None = None,
    init_video: str | None = None,
) -> Animation:
    """The animation in the form, rendered with `model` and the given (session-local) inputs."""
    blend = blend_settings({**form, "negative_prompt": ""})
    return Animation(
        prompts=parse_prompt_schedule(form["a_prompts"] or ""),
        model=model,
        fps=_number(form["fps"]),
        duration=_number(form["a_duration"]) or None,
        mode=form["a_mode"],
        seed=_whole("seed", form["a_seed"], zero_means_default=False),
        steps=blend.steps,
        negative_prompt=form["a_negative_prompt"] or "",
        width=blend.width,
        height=blend.height,
        guidance_scale=_text(form["a_guidance"]) or _guidance_text(blend.guidance_scale),
        strength=_text(form["a_strength"]) or "0.6",
        zoom=_text(form["a_zoom"]) or "1.0",
        angle=_text(form["a_angle"]) or "0",
        translation_x=_text(form["a_tx"]) or "0",
        translation_y=_text(form["a_ty"]) or "0",
        border=form["a_border"],
        curve=form["a_curve"],
        frequencies=_text(form["a_frequencies"]) or "1.0",
        curve_points=_text(form["a_curve_points"]),
        fixed_noise=bool(form["a_fixed_noise"]),
        colour_match=bool(form["a_colour_match"]),
        coherence=Coherence(
            scale=float(form["a_coh_scale"]),
            alpha=float(form["a_coh_alpha"]),
            steps=_whole("coherence steps", form["a_coh_steps"], zero_means_default=False),
            noise=float(form["a_coh_noise"]),
        ),
        audio=audio,
        audio_keyframes=_component(form["a_audio_keyframes"]),
        audio_timing=_component(form["a_audio_timing"]),
        audio_reduce=form["a_audio_reduce"],
        init_video=init_video,
        blend=blend,
    )


def _guidance_text(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def animation_form(anim: Animation) -> dict[str, Any]:
    """Form values showing `anim` (the inverse of `animation`, less the uploaded files)."""
    values = blend_form(anim.blend)
    values.pop("negative_prompt")
    values.update(
        steps=anim.steps or 0,
        width=anim.width or 0,
        height=anim.height or 0,
        guidance_scale=None,
        fps=anim.fps or BLEND_DEFAULTS["fps"],
        a_prompts=format_prompt_schedule(anim.prompts),
        a_negative_prompt=anim.negative_prompt,
        a_mode=anim.mode,
        a_seed=anim.seed,
        a_duration=anim.duration,
        a_guidance=anim.guidance_scale or "",
        a_strength=anim.strength,
        a_zoom=anim.zoom,
        a_angle=anim.angle,
        a_tx=anim.translation_x,
        a_ty=anim.translation_y,
        a_border=anim.border,
        a_curve=anim.curve,
        a_frequencies=anim.frequencies,
        a_curve_points=anim.curve_points or "",
        a_fixed_noise=anim.fixed_noise,
        a_colour_match=anim.colour_match,
        a_coh_scale=anim.coherence.scale,
        a_coh_alpha=anim.coherence.alpha,
        a_coh_steps=anim.coherence.steps,
        a_coh_noise=anim.coherence.noise,
        a_audio_keyframes=anim.audio_keyframes or NO_AUDIO_COMPONENT,
        a_audio_timing=anim.audio_timing or NO_AUDIO_COMPONENT,
        a_audio_reduce=anim.audio_reduce,
    )
    return values
