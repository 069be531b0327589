"""The adapter of Stable Diffusion 3 / 3.5 pipelines."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .adapter import Conditioning, guided
from .flow import FlowAdapter, Velocity
from .flow_control import SD3_CONTROLNETS, SD3ControlNets

SD3_TEXT_LENGTH = 256
"""T5 tokens per prompt, as `StableDiffusion3Pipeline` uses by default."""


class SD3Adapter(FlowAdapter):
    """Diffusion through an SD3/SD3.5 pipeline: two CLIP encoders and a T5 joined into one
    sequence plus pooled CLIP embeddings, an MMDiT velocity, classifier-free guidance."""

    family = "sd3"
    max_shift_default = 1.16
    t5_tokenizer_name = "tokenizer_3"
    family_text_length = SD3_TEXT_LENGTH
    controlnet_kind = SD3_CONTROLNETS

    @property
    def size_multiple(self) -> int:
        """Width and height must be multiples of this many pixels (VAE factor times patch)."""
        return int(self.pipe.vae_scale_factor) * int(self.pipe.transformer.config.patch_size)

    def _encode_plain(self, prompts: Sequence[str], negative_prompt: str) -> Conditioning:
        embeds, negative, pooled, negative_pooled = self.pipe.encode_prompt(
            prompt=list(prompts),
            prompt_2=None,
            prompt_3=None,
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=[negative_prompt] * len(prompts),
            max_sequence_length=self.text_length,
        )
        return Conditioning(
            {
                "embeds": embeds,
                "negative_embeds": negative,
                "pooled": pooled,
                "negative_pooled": negative_pooled,
            }
        )

    def _image_seq_len(self, latents: torch.Tensor) -> int:
        patch = int(self.pipe.transformer.config.patch_size)
        return (latents.shape[-2] // patch) * (latents.shape[-1] // patch)

    def _guidance(self, models: list, scales: list[float]) -> SD3ControlNets:
        return SD3ControlNets(models, scales, self.pipe.transformer)

    def _forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        hidden: torch.Tensor,
        pooled: torch.Tensor,
        control: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The velocity, with the ControlNets' block samples (`control`) added."""
        return self.pipe.transformer(
            hidden_states=x,
            timestep=t.expand(x.shape[0]),
            encoder_hidden_states=hidden,
            pooled_projections=pooled,
            block_controlnet_hidden_states=control,
            return_dict=False,
        )[0]

    def _velocity(self, cond: Conditioning, guidance: torch.Tensor) -> Velocity:
        t = cond.tensors
        cfg = bool((guidance > 1).any())
        if cfg:
            hidden = torch.cat([t["negative_embeds"], t["embeds"]])
            pooled = torch.cat([t["negative_pooled"], t["pooled"]])
        else:
            hidden, pooled = t["embeds"], t["pooled"]
        g = guidance.view(-1, 1, 1, 1).to(self.dtype)
        transformer = self._transformer_call()
        conditions = self._control_conditions(cond)
        if conditions is not None and cfg:  # the ControlNets guide both halves
            conditions = [torch.cat([c, c]) for c in conditions]

        def velocity(x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            x = torch.cat([x, x]) if cfg else x
            control = None
            if conditions is not None:
                control = self.control.samples(x, timestep, hidden, pooled, conditions)
            pred = transformer(x, timestep, hidden, pooled, control)
            return guided(pred, g) if cfg else pred

        return velocity
