"""ControlNets: loading them for a model family, and their guidance of SD and SDXL UNets.

A control image travels in a keyframe's `Conditioning` under `control_0`, `control_1`, ... (one
key per ControlNet, RGB in [0, 1] at the frame size, as diffusers' ControlNet pipelines give it
to the ControlNet), so a per-keyframe control image is blended like the text and each row of a
batch carries its own. Guidance follows `StableDiffusionControlNetPipeline` and its SDXL twin:
conditioning scale per ControlNet, the ControlNet applied for every step, and guess mode (the
ControlNet sees only the conditional half) where the ControlNet's config asks for it. The flow
families' guidance is in `flow_control`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import ControlNetModel
from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel
from PIL import Image

from ..errors import ModelLoadError

CONTROL_KEY = "control_{}"
"""The conditioning key of the control image of ControlNet i."""
Residuals = Callable[[torch.Tensor, torch.Tensor], dict]
"""`(UNet input, t) -> UNet keyword arguments` with the ControlNets' residuals."""
MADE_FOR = {
    "ControlNetModel": "SD 1.x, SD 2.x or SDXL",
    "SD3ControlNetModel": "SD3 or SD3.5",
    "FluxControlNetModel": "FLUX.1",
}
"""The bases the ControlNets of each diffusers class are made for."""


@dataclass(frozen=True)
class ControlNetKind:
    """The ControlNets a model family takes: their diffusers class, and the sizes (read from a
    config) in which a ControlNet must agree with the family's denoiser to fit it."""

    model_class: type
    sizes: Callable[[Any], dict[str, Any]]
    refusal: Callable[[Any], str | None] = lambda config: None
    """Why a ControlNet of the right class and sizes is still not taken (None: it is)."""

    @property
    def base(self) -> str:
        return MADE_FOR[self.model_class.__name__]


@dataclass
class ControlNets:
    """ControlNets with the scale each one's residuals are multiplied by."""

    models: list[ControlNetModel]
    scales: list[float]

    def __post_init__(self) -> None:
        self.multi = MultiControlNetModel(self.models)

    @property
    def guess_mode(self) -> bool:
        """Whether the ControlNet reads its image without the prompt (its config's
        `global_pool_conditions`, as the pipelines take it from the first ControlNet)."""
        return bool(self.models[0].config.global_pool_conditions)

    def residuals(self, cond_tensors: dict, unet_kwargs: dict, cfg: bool) -> Residuals:
        """The UNet keyword arguments that add the ControlNets' residuals, for a batch with
        these conditioning tensors and UNet arguments (the guided batch when `cfg`)."""
        images = [cond_tensors[CONTROL_KEY.format(i)] for i in range(len(self.models))]
        guess = self.guess_mode and cfg
        kwargs = unet_kwargs
        if guess:
            kwargs = _second_half(unet_kwargs)
        elif cfg:
            images = [torch.cat([image, image]) for image in images]

        def residuals(x: torch.Tensor, t: torch.Tensor) -> dict:
            down, mid = self.multi(
                x.chunk(2)[1] if guess else x,
                t,
                controlnet_cond=images,
                conditioning_scale=self.scales,
                guess_mode=self.guess_mode,
                return_dict=False,
                **kwargs,
            )
            if guess:
                down = [torch.cat([torch.zeros_like(d), d]) for d in down]
                mid = torch.cat([torch.zeros_like(mid), mid])
            return {
                "down_block_additional_residuals": tuple(down),
                "mid_block_additional_residual": mid,
            }

        return residuals


def _unet_sizes(config) -> dict[str, Any]:
    """The sizes in which an SD ControlNet must agree with a UNet; `in_channels` are those of
    the latents (an inpainting UNet's 9 = latents, mask, masked image: its ControlNet reads the
    4 of the latents, as diffusers' ControlNet inpainting pipelines give them)."""
    sizes = {k: config.get(k) for k in ("cross_attention_dim", "addition_embed_type")}
    channels = config.get("in_channels")
    sizes["in_channels"] = (channels - 1) // 2 if channels == 9 else channels
    return sizes


def _inpainting_input_refusal(config) -> str | None:
    if config.get("in_channels") == 9:
        return (
            "takes an inpainting UNet's 9 input channels; ControlNets read the 4 of the latents "
            "(use one made for the text-to-image base)"
        )
    return None


SD_CONTROLNETS = ControlNetKind(ControlNetModel, _unet_sizes, _inpainting_input_refusal)
"""ControlNets of SD 1.x/2.x and SDXL UNets (text-to-image or inpainting)."""


def _second_half(value):
    """Every tensor in `value` (inside dicts too) cut to the second half of its rows."""
    if isinstance(value, torch.Tensor):
        return value.chunk(2)[1]
    if isinstance(value, dict):
        return {k: _second_half(v) for k, v in value.items()}
    return value


def control_pixels(
    images: Sequence[Image.Image], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """RGB images (all one size) as a batch in [0, 1], as the ControlNet takes them."""
    arrays = [np.asarray(i.convert("RGB"), dtype=np.float32) / 255 for i in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(device, dtype)


def load_controlnet(
    source: str, kind: ControlNetKind, denoiser, dtype: torch.dtype, device: torch.device
):
    """A ControlNet of `kind` by hub id or local diffusers folder, in `dtype` on `device`;
    ModelLoadError when it cannot be loaded or was not made for a model like `denoiser`'s."""
    from .loading import HUB_ID, explain_load_error

    path = Path(source).expanduser()
    what_to_do = (
        "connect to the network once to download it, or pass a local ControlNet folder "
        "(saved by diffusers)"
    )
    if not path.is_dir() and not HUB_ID.match(source):
        raise ModelLoadError(
            f"controlnet {source!r} is not a local folder or a hub id of the form owner/name"
        )
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelLoadError(
            f"controlnet {source!r}: the folder holds no config.json, so it is not a ControlNet "
            "saved by diffusers"
        )
    location = str(path) if path.is_dir() else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check_class(source, kind, kind.model_class.load_config(location))
            net = kind.model_class.from_pretrained(location, torch_dtype=dtype)
    except ModelLoadError:
        raise
    except Exception as error:  # the hub client raises many types; all end here
        reason = _hub_reason(error)
        raise ModelLoadError(
            explain_load_error(source, reason, "controlnet", what_to_do)
        ) from error
    _check_fits(source, kind, net, denoiser)
    return net.to(device).eval()


def _hub_reason(error: Exception) -> Exception:
    """The hub client's error behind a loading error (diffusers reports a model that is not in
    the cache, offline, as a missing config file), else the error itself."""
    context = error.__context__
    if isinstance(context, Exception) and type(context).__name__.endswith("NotFoundError"):
        return context
    return error


def _check_class(source: str, kind: ControlNetKind, config: dict) -> None:
    """ModelLoadError when the config is of another class of ControlNet than the family takes."""
    found = config.get("_class_name")
    if found is None or found == kind.model_class.__name__:
        return
    made_for = "not a kind latentmorph takes"
    if found in MADE_FOR:
        made_for = f"made for {MADE_FOR[found]}"
    raise ModelLoadError(
        f"controlnet {source!r} is a {found} ({made_for}); use a ControlNet made for the model's "
        f"base ({kind.base})"
    )


def _check_fits(source: str, kind: ControlNetKind, net, denoiser) -> None:
    """ModelLoadError when the ControlNet was made for another kind of denoiser, or is one the
    family does not take."""
    mine, theirs = kind.sizes(net.config), kind.sizes(denoiser.config)
    for key, size in mine.items():
        if size != theirs[key]:
            raise ModelLoadError(
                f"controlnet {source!r} does not fit this model ({key} {size!r}, the model's "
                f"{theirs[key]!r}); use a ControlNet made for the model's base ({kind.base})"
            )
    refusal = kind.refusal(net.config)
    if refusal is not None:
        raise ModelLoadError(f"controlnet {source!r} {refusal}")
