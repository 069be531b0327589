"""What flow-matching families (SD3, FLUX) share behind the adapter interface.

A transformer predicts a velocity that FlowMatchEulerDiscreteScheduler integrates over a schedule
of sigmas from 1 (pure noise) toward 0. Latents stay unpacked (batch, channels, height, width)
everywhere the engine sees them, as SD's and SDXL's do.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps

from ..errors import InputError
from .adapter import (
    Conditioning,
    DiffusionAdapter,
    FamilyDefaults,
    Prediction,
    latent_scaling,
)
from .compiled import CompiledCall
from .control import CONTROL_KEY

Velocity = Prediction


class FlowAdapter(DiffusionAdapter):
    """Diffusion through a flow-matching transformer pipeline; a family gives its text encoding,
    its velocity call and how its schedule shifts with the image size."""

    family = "flow"
    max_shift_default = 1.15
    """The pipeline's fallback for the scheduler's `max_shift` in its resolution shift."""

    def __init__(self, pipe, defaults: FamilyDefaults, name: str = "") -> None:
        super().__init__(pipe, defaults, name)
        self._compiled_transformer: CompiledCall | None = None

    def _use_deterministic_scheduler(self) -> None:
        """Replaces any other scheduler (or stochastic sampling) by deterministic flow-matching
        Euler, with a notice."""
        scheduler = self.pipe.scheduler
        if isinstance(scheduler, FlowMatchEulerDiscreteScheduler) and not scheduler.config.get(
            "stochastic_sampling", False
        ):
            return
        self.notices.append(
            f"scheduler {type(scheduler).__name__} replaced by deterministic "
            "FlowMatchEulerDiscreteScheduler (latent blending needs a deterministic "
            "single-step scheduler)"
        )
        self.pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
            scheduler.config, stochastic_sampling=False
        )

    t5_tokenizer_name = "tokenizer_2"
    """The pipeline's attribute holding the T5 tokenizer."""

    @property
    def family_text_length(self) -> int:
        """T5 tokens per prompt as the family's pipeline reads them."""
        raise NotImplementedError

    @property
    def text_length(self) -> int:
        """T5 tokens per prompt: the family's length, or the tokenizer's limit if that is less."""
        tokenizer = getattr(self.pipe, self.t5_tokenizer_name, None)
        limit = getattr(tokenizer, "model_max_length", None) or self.family_text_length
        return min(self.family_text_length, int(limit))

    @property
    def text_reader(self) -> tuple[object, int]:
        tokenizer = getattr(self.pipe, self.t5_tokenizer_name, None)
        return super().text_reader if tokenizer is None else (tokenizer, self.text_length)

    @property
    def denoiser(self) -> torch.nn.Module:
        """The network that predicts the flow (the transformer)."""
        return self.pipe.transformer

    @classmethod
    def denoiser_channels(cls, latent_channels: int) -> dict[int, str]:
        return {latent_channels: "text-to-image"}

    def _encode_weighted(self, prompts: Sequence[str], negative_prompt: str) -> Conditioning:
        raise InputError(
            f"prompt_weighting: not available for {self.family} models; "
            "use it with SD 1.x/2.x or SDXL models"
        )

    # --- schedule ---------------------------------------------------------------------------

    def _image_seq_len(self, latents: torch.Tensor) -> int:
        """Image tokens the transformer sees for latents of this shape."""
        raise NotImplementedError

    def _timestep_options(self, steps: int, latents: torch.Tensor | None) -> dict:
        """Arguments of `set_timesteps` besides the step count, as the family's pipeline passes
        them (custom sigmas, the resolution shift `mu`)."""
        config = self.pipe.scheduler.config
        if not config.get("use_dynamic_shifting", False) or latents is None:
            return {}
        mu = calculate_shift(
            self._image_seq_len(latents),
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", self.max_shift_default),
        )
        return {"mu": mu}

    def scheduler(self, steps: int, latents: torch.Tensor | None = None):
        """A fresh scheduler set to `steps` steps for latents shaped like `latents` (with dynamic
        shifting the schedule depends on the image size)."""
        options = self._timestep_options(steps, latents)
        key = (steps, options.get("mu"))
        if key not in self._schedulers:
            scheduler = copy.deepcopy(self.pipe.scheduler)
            retrieve_timesteps(scheduler, steps, self.device, **options)
            self._schedulers[key] = scheduler
        return copy.deepcopy(self._schedulers[key])

    # --- latents ----------------------------------------------------------------------------

    def initial_latents(self, unit_noise: torch.Tensor, steps: int) -> torch.Tensor:
        """Unit noise as it is: flow-matching schedules start at sigma 1, pure noise."""
        return unit_noise

    def noised(
        self, clean: torch.Tensor, unit_noise: torch.Tensor, steps: int, start: int
    ) -> torch.Tensor:
        """Clean latents noised to the level at which step `start` of the schedule begins
        (sigma·noise + (1 − sigma)·clean)."""
        scheduler = self.scheduler(steps, clean)
        scheduler.set_begin_index(start)
        t = scheduler.timesteps[start : start + 1].repeat(clean.shape[0])
        return scheduler.scale_noise(clean, t, unit_noise)

    # --- denoising --------------------------------------------------------------------------

    def _forward(self, x: torch.Tensor, t: torch.Tensor, *conditioning) -> torch.Tensor:
        """The transformer's velocity for latents `x` at timestep `t` (a scalar), every other
        argument a tensor with a row per row of `x` (or None)."""
        raise NotImplementedError

    def _transformer_call(self) -> CompiledCall:
        """`_forward`, compiled as `compile` says (see `models.compiled`)."""
        if self._compiled_transformer is None:
            self._compiled_transformer = CompiledCall(
                self.pipe.transformer, self._forward, "transformer"
            )
        self._compiled_transformer.set_mode(self.compile)
        return self._compiled_transformer

    # --- ControlNets ------------------------------------------------------------------------

    def _control_conditions(self, cond: Conditioning) -> list[torch.Tensor] | None:
        """Each ControlNet's input for the rows of `cond` (see `flow_control`); None without
        ControlNets or control images."""
        if self.control is None or CONTROL_KEY.format(0) not in cond.tensors:
            return None
        pixels = [cond.tensors[CONTROL_KEY.format(i)] for i in range(len(self.control.models))]
        scale, shift = latent_scaling(self.pipe.vae)
        return self.control.conditions(pixels, self._control_means, scale, shift)

    @torch.no_grad()
    def _control_means(self, pixels: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
        """The means of the VAE's latent distributions of control images (rows of RGB in
        [0, 1]), in the denoiser's dtype; rows equal to an earlier one are encoded once, the
        others in batches."""
        distinct: list[torch.Tensor] = []
        which = []
        for row in pixels:
            same = next((j for j, seen in enumerate(distinct) if torch.equal(row, seen)), None)
            if same is None:
                same = len(distinct)
                distinct.append(row)
            which.append(same)
        means = []
        with self._working_vae() as vae:
            for chunk in torch.stack(distinct).split(batch_size):
                posterior = vae.encode((chunk * 2 - 1).to(self.device, vae.dtype)).latent_dist
                means.append(posterior.mean.to(self.dtype))
        return torch.cat(means)[which]

    def _velocity(self, cond: Conditioning, guidance: torch.Tensor) -> Velocity:
        """The family's velocity prediction `(latents, t) -> velocity` for a batch with this
        conditioning and per-row guidance."""
        raise NotImplementedError

    def _predictor(
        self, cond: Conditioning, guidance: torch.Tensor, latents: torch.Tensor, scheduler
    ) -> Velocity:
        """The family's velocity; guidance works as in the family's pipeline (SD3:
        classifier-free when above 1, batched with the rest; FLUX: the guidance embedding,
        where the model has one)."""
        return self._velocity(cond, guidance)
