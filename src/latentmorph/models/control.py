"""ControlNet guidance for SD and SDXL models: loading ControlNets and their UNet residuals.

A control image travels in a keyframe's `Conditioning` under `control_0`, `control_1`, ... (one
key per ControlNet, RGB in [0, 1] at the frame size, as diffusers' ControlNet pipelines give it
to the ControlNet), so a per-keyframe control image is blended like the text and each row of a
batch carries its own. Guidance follows `StableDiffusionControlNetPipeline` and its SDXL twin:
conditioning scale per ControlNet, the ControlNet applied for every step, and guess mode (the
ControlNet sees only the conditional half) where the ControlNet's config asks for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import ControlNetModel
from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel
from PIL import Image

from ..errors import ModelLoadError

CONTROL_KEY = "control_{}"
"""The conditioning key of the control image of ControlNet i."""
CONTROL_FAMILIES = ("sd", "sdxl")
"""Model families that take ControlNets."""
Residuals = Callable[[torch.Tensor, torch.Tensor], dict]
"""`(UNet input, t) -> UNet keyword arguments` with the ControlNets' residuals."""


@dataclass
class ControlNets:
    """ControlNets with the scale each one's residuals are multiplied by."""

    models: list[ControlNetModel]
    scales: list[float]
    names: list[str]

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


def load_controlnet(source: str, unet, dtype: torch.dtype, device: torch.device) -> ControlNetModel:
    """A ControlNet by hub id or local diffusers folder, in `dtype` on `device`; ModelLoadError
    when it cannot be loaded or was not made for a model like `unet`'s."""
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
            net = ControlNetModel.from_pretrained(location, torch_dtype=dtype)
    except Exception as error:  # the hub client raises many types; all end here
        reason = _hub_reason(error)
        raise ModelLoadError(
            explain_load_error(source, reason, "controlnet", what_to_do)
        ) from error
    _check_fits(source, net, unet)
    return net.to(device).eval()


def _hub_reason(error: Exception) -> Exception:
    """The hub client's error behind a loading error (diffusers reports a model that is not in
    the cache, offline, as a missing config file), else the error itself."""
    context = error.__context__
    if isinstance(context, Exception) and type(context).__name__.endswith("NotFoundError"):
        return context
    return error


def _check_fits(source: str, net: ControlNetModel, unet) -> None:
    """ModelLoadError when the ControlNet was made for another kind of UNet."""
    for key in ("cross_attention_dim", "addition_embed_type", "in_channels"):
        mine, theirs = net.config.get(key), unet.config.get(key)
        if mine != theirs:
            raise ModelLoadError(
                f"controlnet {source!r} does not fit this model ({key} {mine!r}, the model's "
                f"{theirs!r}); use a ControlNet made for the model's base (SD 1.x, SD 2.x or SDXL)"
            )
