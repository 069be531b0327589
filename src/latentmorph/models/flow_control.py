"""ControlNet guidance of the flow-matching families (SD3/SD3.5, FLUX.1), as diffusers'
`StableDiffusion3ControlNetPipeline` and `FluxControlNetPipeline` give it.

The control images travel in the conditioning as pixels, as SD's do (see `control`): between two
keyframes a ControlNet sees the crossfade of their images, which is still an image, rather than a
mix of latents that no image encodes to. Each denoising call encodes its rows' control images with
the VAE for the ControlNets that read latents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from diffusers import FluxControlNetModel, FluxPipeline, SD3ControlNetModel
from diffusers.models.controlnets.controlnet_flux import FluxMultiControlNetModel
from diffusers.models.controlnets.controlnet_sd3 import SD3MultiControlNetModel

from .control import ControlNetKind

Encoder = Callable[[torch.Tensor], torch.Tensor]
"""Control images (rows of RGB in [0, 1]) -> the means of the VAE's latent distributions."""


def _transformer_sizes(config: Any, keys: Sequence[str]) -> dict[str, Any]:
    """The sizes in which a ControlNet and its transformer agree: `keys` of the config and the
    width of the hidden states (heads times head size), which the ControlNet's samples add to."""
    sizes = {key: config.get(key) for key in keys}
    sizes["width (heads x head size)"] = config.get("num_attention_heads") * config.get(
        "attention_head_dim"
    )
    return sizes


def _union_refusal(config: Any) -> str | None:
    if config.get("num_mode") is None:
        return None
    return (
        "is a union ControlNet (it needs a control mode for each image, which latentmorph does "
        "not set); use a FLUX.1 ControlNet made for one kind of control image"
    )


def _inpainting_refusal(config: Any) -> str | None:
    if not config.get("extra_conditioning_channels"):
        return None
    return (
        "reads extra conditioning channels (an inpainting ControlNet); use an SD3/SD3.5 "
        "ControlNet that reads a control image alone"
    )


SD3_CONTROLNETS = ControlNetKind(
    SD3ControlNetModel,
    lambda config: _transformer_sizes(
        config, ("in_channels", "patch_size", "pooled_projection_dim")
    ),
    _inpainting_refusal,
)
"""ControlNets of SD3/SD3.5 transformers."""
FLUX_CONTROLNETS = ControlNetKind(
    FluxControlNetModel,
    lambda config: _transformer_sizes(
        config, ("in_channels", "joint_attention_dim", "pooled_projection_dim")
    ),
    _union_refusal,
)
"""ControlNets of FLUX.1 transformers."""


class SD3ControlNets:
    """SD3/SD3.5 ControlNets with the scale each one's block samples are multiplied by.

    As `StableDiffusion3ControlNetPipeline` reads the first ControlNet's config: a ControlNet
    that forces zeros for the pooled projection (InstantX's) gets zeros there and latents without
    the VAE's shift; one without a joint attention size (SD3.5's) reads no text; one without its
    own position embedding (SD3.5's) takes the transformer's.
    """

    def __init__(
        self,
        models: list[SD3ControlNetModel],
        scales: list[float],
        transformer: torch.nn.Module,
    ) -> None:
        self.models, self.scales = models, scales
        for net in models:
            if net.pos_embed is None:
                net.pos_embed = net._get_pos_embed_from_transformer(transformer).to(
                    net.device, net.dtype
                )
        self.multi = SD3MultiControlNetModel(models)
        first = models[0].config
        self.zero_pooled = bool(first.force_zeros_for_pooled_projection)
        self.reads_text = first.joint_attention_dim is not None

    def conditions(
        self, pixels: Sequence[torch.Tensor], encode: Encoder, scale: float, shift: float
    ) -> list[torch.Tensor]:
        """Each ControlNet's input for its control images: their latents, scaled (and shifted)
        as the model's."""
        shift = 0.0 if self.zero_pooled else shift
        return [(encode(images) - shift) * scale for images in pixels]

    def samples(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        hidden: torch.Tensor,
        pooled: torch.Tensor,
        conditions: Sequence[torch.Tensor],
    ) -> list[torch.Tensor]:
        """The ControlNets' block samples, summed, for the transformer's input `x` at `t` with
        this text conditioning (each row of `conditions` matching a row of `x`)."""
        return self.multi(
            hidden_states=x,
            timestep=t.expand(x.shape[0]),
            encoder_hidden_states=hidden if self.reads_text else None,
            pooled_projections=torch.zeros_like(pooled) if self.zero_pooled else pooled,
            controlnet_cond=list(conditions),
            conditioning_scale=self.scales,
            return_dict=False,
        )[0]


class FluxControlNets:
    """FLUX.1 ControlNets with the scale each one's block samples are multiplied by.

    As `FluxControlNetPipeline` reads the first ControlNet: one with an input hint block
    (XLabs') reads the control image's pixels and its samples are added to the transformer's
    blocks in turn; any other reads the image's packed latents. A ControlNet with a guidance
    embedding is given the guidance scale.
    """

    def __init__(self, models: list[FluxControlNetModel], scales: list[float]) -> None:
        self.models, self.scales = models, scales
        self.multi = FluxMultiControlNetModel(models)
        self.reads_pixels = models[0].input_hint_block is not None
        self.guided = bool(models[0].config.guidance_embeds)

    def conditions(
        self, pixels: Sequence[torch.Tensor], encode: Encoder, scale: float, shift: float
    ) -> list[torch.Tensor]:
        """Each ControlNet's input for its control images: pixels in [-1, 1], or their latents
        scaled and shifted as the model's and packed in 2x2 patches."""
        if self.reads_pixels:
            return [images * 2 - 1 for images in pixels]
        out = []
        for images in pixels:
            latents = (encode(images) - shift) * scale
            out.append(FluxPipeline._pack_latents(latents, *latents.shape))
        return out

    def samples(
        self,
        packed: torch.Tensor,
        t: torch.Tensor,
        guidance: torch.Tensor,
        pooled: torch.Tensor,
        embeds: torch.Tensor,
        ids: tuple[torch.Tensor, torch.Tensor],
        conditions: Sequence[torch.Tensor],
    ) -> dict[str, Any]:
        """The transformer's keyword arguments that add the ControlNets' block samples, summed,
        for packed latents at `t` (divided by 1000) with this guidance, text conditioning and
        (text, image) position ids."""
        modes = [torch.full((packed.shape[0],), -1, device=packed.device)] * len(conditions)
        blocks, singles = self.multi(
            hidden_states=packed,
            controlnet_cond=list(conditions),
            controlnet_mode=modes,
            conditioning_scale=self.scales,
            timestep=t,
            guidance=guidance if self.guided else None,
            pooled_projections=pooled,
            encoder_hidden_states=embeds,
            txt_ids=ids[0],
            img_ids=ids[1],
            return_dict=False,
        )
        return {
            "controlnet_block_samples": blocks,
            "controlnet_single_block_samples": singles,
            "controlnet_blocks_repeat": self.reads_pixels,
        }
