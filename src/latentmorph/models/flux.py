"""The adapter of FLUX.1 pipelines (schnell, dev and models of their architecture)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from .adapter import Conditioning, FamilyDefaults
from .flow import FlowAdapter, Velocity
from .flow_control import FLUX_CONTROLNETS, FluxControlNets

GUIDED_TEXT_LENGTH = 512
"""T5 tokens per prompt for models with a guidance embedding (FLUX.1-dev), as its pipeline uses."""
UNGUIDED_TEXT_LENGTH = 256
"""T5 tokens per prompt for models without one (FLUX.1-schnell), as its model card uses."""
log = logging.getLogger(__name__)


class FluxAdapter(FlowAdapter):
    """Diffusion through a FLUX.1 pipeline: T5 sequence and pooled CLIP embeddings, a velocity
    over packed 2x2 latent patches, guidance as an embedding (FLUX.1-dev) or none (schnell).

    There is no unconditional branch, so a negative prompt has no effect.
    """

    family = "flux"
    controlnet_kind = FLUX_CONTROLNETS

    def __init__(self, pipe, defaults: FamilyDefaults, name: str = "") -> None:
        super().__init__(pipe, defaults, name)
        self._image_ids: dict[tuple, torch.Tensor] = {}

    @property
    def size_multiple(self) -> int:
        """Width and height must be multiples of this many pixels (VAE factor times the 2x2
        packing)."""
        return int(self.pipe.vae_scale_factor) * 2

    @property
    def latent_channels(self) -> int:
        return int(self.pipe.transformer.config.in_channels) // 4

    @classmethod
    def denoiser_channels(cls, latent_channels: int) -> dict[int, str]:
        return {4 * latent_channels: "text-to-image, latents packed in 2x2 patches"}

    @property
    def guided(self) -> bool:
        """Whether the model takes the guidance scale as an embedding."""
        return bool(self.pipe.transformer.config.guidance_embeds)

    @property
    def family_text_length(self) -> int:
        return GUIDED_TEXT_LENGTH if self.guided else UNGUIDED_TEXT_LENGTH

    def _encode_plain(self, prompts: Sequence[str], negative_prompt: str) -> Conditioning:
        if negative_prompt:
            log.warning("negative prompt ignored: FLUX models have no unconditional branch")
        embeds, pooled, _ = self.pipe.encode_prompt(
            prompt=list(prompts),
            prompt_2=None,
            device=self.device,
            num_images_per_prompt=1,
            max_sequence_length=self.text_length,
        )
        return Conditioning({"embeds": embeds, "pooled": pooled})

    def _image_seq_len(self, latents: torch.Tensor) -> int:
        return (latents.shape[-2] // 2) * (latents.shape[-1] // 2)

    def _timestep_options(self, steps: int, latents: torch.Tensor | None) -> dict:
        """Sigmas evenly from 1 to 1/steps and the resolution shift, as `FluxPipeline` sets
        them."""
        config = self.pipe.scheduler.config
        options = super()._timestep_options(steps, latents)
        if not config.get("use_flow_sigmas", False):
            options["sigmas"] = np.linspace(1.0, 1 / steps, steps)
        return options

    def _guidance(self, models: list, scales: list[float]) -> FluxControlNets:
        return FluxControlNets(models, scales)

    def _forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        guidance: torch.Tensor | None,
        pooled: torch.Tensor,
        embeds: torch.Tensor,
        control: dict | None = None,
    ) -> torch.Tensor:
        """The velocity of unpacked latents (the transformer sees them as 2x2 patches), with the
        ControlNets' block samples (`control`: the transformer's keyword arguments) added."""
        pipe = self.pipe
        height, width = x.shape[-2:]
        f = int(pipe.vae_scale_factor)
        text_ids, image_ids = self._ids(x, embeds)
        pred = pipe.transformer(
            hidden_states=self._packed(x),
            timestep=t.expand(x.shape[0]).to(x.dtype) / 1000,
            guidance=guidance,
            pooled_projections=pooled,
            encoder_hidden_states=embeds,
            txt_ids=text_ids,
            img_ids=image_ids,
            return_dict=False,
            **(control or {}),
        )[0]
        return pipe._unpack_latents(pred, height * f, width * f, f)

    def _packed(self, x: torch.Tensor) -> torch.Tensor:
        """Latents as the transformer sees them: 2x2 patches in a sequence."""
        return self.pipe._pack_latents(x, *x.shape)

    def _ids(self, x: torch.Tensor, embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Position ids of the text tokens and of the packed patches of latents like `x`."""
        text_ids = torch.zeros(embeds.shape[1], 3, device=x.device, dtype=embeds.dtype)
        return text_ids, self._patch_ids(*x.shape[-2:], x.device, embeds.dtype)

    def _patch_ids(
        self, height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """Position ids of the packed patches of latents this size, kept once made (no copy to
        the device at each call, nor inside a captured CUDA graph)."""
        key = (height, width, device, dtype)
        if key not in self._image_ids:
            self._image_ids[key] = self.pipe._prepare_latent_image_ids(
                1, height // 2, width // 2, device, dtype
            )
        return self._image_ids[key]

    def _velocity(self, cond: Conditioning, guidance: torch.Tensor) -> Velocity:
        t = cond.tensors
        embedded = guidance if self.guided else None
        transformer = self._transformer_call()
        conditions = self._control_conditions(cond)

        def velocity(x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            control = None
            if conditions is not None:
                control = self.control.samples(
                    self._packed(x),
                    timestep.expand(x.shape[0]).to(x.dtype) / 1000,
                    guidance,
                    t["pooled"],
                    t["embeds"],
                    self._ids(x, t["embeds"]),
                    conditions,
                )
            return transformer(x, timestep, embedded, t["pooled"], t["embeds"], control)

        return velocity
