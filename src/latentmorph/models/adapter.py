"""The one interface through which everything above `models/` runs diffusion.

An adapter wraps a diffusers pipeline of one family and offers batched text encoding, seeded
noise, partial denoising over a step range with batched classifier-free guidance, and decoding.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, EulerDiscreteScheduler
from PIL import Image

from ..checks import check_choice
from ..choices import COMPILE_MODES, VAE_DTYPES
from ..pixels import to_images
from .compiled import CompiledCall
from .control import (
    CONTROL_KEY,
    SD_CONTROLNETS,
    ControlNetKind,
    ControlNets,
    control_pixels,
    load_controlnet,
)
from .device import DTYPES

log = logging.getLogger(__name__)
StepHook = Callable[[int, torch.Tensor], torch.Tensor]
Prediction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""What the denoiser predicts for latents at timestep t, as the scheduler's `step` takes it."""

DETERMINISTIC_SCHEDULERS = (EulerDiscreteScheduler, DDIMScheduler)
MASK_KEY = "inpaint_mask"
"""The conditioning key of an inpainting denoiser's mask (1 where it may repaint)."""
MASKED_IMAGE_KEY = "masked_image_latents"
"""The conditioning key of the latents of the image an inpainting denoiser keeps."""


@dataclass(frozen=True)
class FamilyDefaults:
    """Settings that suit a model family when the user gives none."""

    steps: int
    guidance_scale: float
    width: int
    height: int
    parental_crossfeed: tuple[float, float, float]
    few_step: bool = False


@dataclass(frozen=True)
class Conditioning:
    """Conditioning of a batch (text embeddings, control images, an inpainting model's mask and
    masked image): named tensors that share batch dimension 0."""

    tensors: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def __getitem__(self, index: int | slice) -> Conditioning:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Conditioning({k: v[index] for k, v in self.tensors.items()})

    def lerp(self, other: Conditioning, t: float) -> Conditioning:
        """Linear interpolation: self at t=0, other at t=1."""
        return Conditioning(
            {k: torch.lerp(v, other.tensors[k], t) for k, v in self.tensors.items()}
        )

    @staticmethod
    def cat(items: Sequence[Conditioning]) -> Conditioning:
        """Concatenation along the batch."""
        keys = items[0].tensors
        return Conditioning({k: torch.cat([c.tensors[k] for c in items]) for k in keys})


class DiffusionAdapter:
    """Diffusion through a Stable Diffusion 1.x/2.x pipeline (one text encoder)."""

    family = "sd"

    def __init__(self, pipe, defaults: FamilyDefaults, name: str = "") -> None:
        self.pipe = pipe
        self.defaults = defaults
        self.name = name or getattr(pipe, "name_or_path", "") or pipe.__class__.__name__
        self.notices: list[str] = []
        self._use_deterministic_scheduler()
        pipe.set_progress_bar_config(disable=True)
        self._schedulers: dict = {}
        self._vae_lock = threading.Lock()
        self.compile = "auto"
        self.vae_dtype = "auto"
        self._compiled_unet: CompiledCall | None = None
        self.control = None  # the guidance of the ControlNets in use (see `_guidance`)
        self._controlnets: dict = {}
        self._blank_latents: dict[tuple[int, int], torch.Tensor] = {}

    def configure(self, compile: str = "auto", vae_dtype: str = "auto") -> None:
        """Sets how the denoiser runs (`compile`: auto, on or off; see `models.compiled`) and
        the dtype decoding runs in (`vae_dtype`: auto, float32, bfloat16 or float16; auto is
        bfloat16 on cuda where supported, else the VAE's own dtype, or float32 where its config
        asks for that in half precision)."""
        check_choice("compile", compile, COMPILE_MODES)
        check_choice("vae_dtype", vae_dtype, VAE_DTYPES)
        self.compile, self.vae_dtype = compile, vae_dtype

    controlnet_kind: ControlNetKind = SD_CONTROLNETS
    """The ControlNets the family's denoiser takes."""

    def use_controlnets(self, sources: Sequence[str], scales: Sequence[float]) -> None:
        """Guides denoising with ControlNets (hub ids or local folders, each loaded once), each
        one's residuals times its scale; with none, no ControlNet. Their control images travel
        in the conditioning (see `with_control`)."""
        if not sources:
            self.control = None
            return
        for source in sources:
            if source not in self._controlnets:
                self._controlnets[source] = load_controlnet(
                    source, self.controlnet_kind, self.denoiser, self.dtype, self.device
                )
        models = [self._controlnets[s] for s in sources]
        self.control = self._guidance(models, [float(s) for s in scales])

    def _guidance(self, models: list, scales: list[float]):
        """The family's guidance by these loaded ControlNets, each with its scale."""
        return ControlNets(models, scales)

    def with_control(
        self, cond: Conditioning, images: Sequence[Sequence[Image.Image]]
    ) -> Conditioning:
        """`cond` with a control image per ControlNet (`images[i]`: one image per row of
        `cond`, all the frame's size), as the ControlNets take them."""
        tensors = dict(cond.tensors)
        for i, rows in enumerate(images):
            tensors[CONTROL_KEY.format(i)] = control_pixels(rows, self.device, self.dtype)
        return Conditioning(tensors)

    def _use_deterministic_scheduler(self) -> None:
        """Replaces a stochastic scheduler by Euler, with a notice (latent blending needs a
        deterministic single-step scheduler)."""
        pipe = self.pipe
        if not isinstance(pipe.scheduler, DETERMINISTIC_SCHEDULERS):
            self.notices.append(
                f"scheduler {type(pipe.scheduler).__name__} replaced by EulerDiscreteScheduler "
                "(latent blending needs a deterministic single-step scheduler)"
            )
            pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)

    @property
    def denoiser(self) -> torch.nn.Module:
        """The network that predicts the noise (the UNet)."""
        return self.pipe.unet

    @property
    def device(self) -> torch.device:
        """Where the model runs (with model CPU offload: where each part runs when in use)."""
        if hasattr(self.denoiser, "_hf_hook"):  # offloaded: asking the pipeline scans it all
            return self.pipe._execution_device
        return self.denoiser.device

    @property
    def dtype(self) -> torch.dtype:
        return self.denoiser.dtype

    @property
    def size_multiple(self) -> int:
        """Width and height must be multiples of this many pixels."""
        return int(self.pipe.vae_scale_factor)

    @property
    def latent_channels(self) -> int:
        """Channels of the VAE's latents (the denoiser's input, less an inpainting model's mask
        and masked image)."""
        return int(self.pipe.vae.config.latent_channels)

    @classmethod
    def denoiser_channels(cls, latent_channels: int) -> dict[int, str]:
        """The input channels the family's denoiser may take with latents of
        `latent_channels` channels, each with what that denoiser is."""
        return {
            latent_channels: "text-to-image",
            2 * latent_channels + 1: "inpainting: latents, mask and masked image",
        }

    @property
    def inpainting(self) -> bool:
        """Whether the denoiser also takes a mask and a masked image's latents (an inpainting
        UNet); see `with_masked_image`."""
        return int(self.denoiser.config.in_channels) == 2 * self.latent_channels + 1

    # --- text -------------------------------------------------------------------------------

    @torch.no_grad()
    def encode(
        self, prompts: Sequence[str], negative_prompt: str = "", weighted: bool = False
    ) -> Conditioning:
        """Conditioning for each prompt, with the negative prompt's as the unconditional half.

        With `weighted`, prompts may use Compel's weighting syntax, e.g. `a (red)1.3 circle`,
        `a red++ circle`, `a cat.and(a dog)`.
        """
        if weighted:
            return self._encode_weighted(prompts, negative_prompt)
        return self._encode_plain(prompts, negative_prompt)

    def _encode_plain(self, prompts: Sequence[str], negative_prompt: str) -> Conditioning:
        """`encode` without prompt weighting, through the pipeline's own text encoding."""
        embeds, negative = self.pipe.encode_prompt(
            list(prompts),
            self.device,
            1,
            True,
            negative_prompt=[negative_prompt] * len(prompts),
        )
        return Conditioning({"embeds": embeds, "negative_embeds": negative})

    @property
    def text_reader(self) -> tuple[object, int]:
        """The tokenizer of the text encoder that reads the most tokens, and how many it reads."""
        tokenizer = self.pipe.tokenizer
        return tokenizer, int(tokenizer.model_max_length)

    def cut_prompts(self, prompts: Sequence[str]) -> list[tuple[int, int, str]]:
        """(index, token limit, words not read) of each prompt longer than the model reads."""
        tokenizer, limit = self.text_reader
        cut = []
        for i, prompt in enumerate(prompts):
            ids = tokenizer(prompt, add_special_tokens=True).input_ids
            if len(ids) > limit:
                cut.append((i, limit, tokenizer.decode(ids[limit:], skip_special_tokens=True)))
        return cut

    def _encode_weighted(self, prompts: Sequence[str], negative_prompt: str) -> Conditioning:
        from compel import CompelForSD

        out = CompelForSD(self.pipe)(list(prompts), [negative_prompt] * len(prompts))
        return Conditioning({"embeds": out.embeds, "negative_embeds": out.negative_embeds})

    def _unet_kwargs(self, cond: Conditioning, cfg: bool, latents: torch.Tensor) -> dict:
        t = cond.tensors
        hidden = torch.cat([t["negative_embeds"], t["embeds"]]) if cfg else t["embeds"]
        return {"encoder_hidden_states": hidden}

    def with_masked_image(
        self, cond: Conditioning, keep: np.ndarray, image: Image.Image
    ) -> Conditioning:
        """`cond` with, on every row, what an inpainting denoiser takes besides the latents: the
        mask of where it may repaint (where `keep`, the kept share of each pixel at the frame
        size, is at most one half) and the latents of `image` where it is kept (grey where
        repainted), as diffusers' inpainting pipelines prepare them (the latents are the mean
        of the VAE's distribution; the pipelines draw a sample). `cond` as it is for a
        denoiser that takes neither."""
        if not self.inpainting:
            return cond
        repaint = torch.from_numpy(np.asarray(keep <= 0.5, dtype=np.float32))[None, None]
        latents = self._encode_pixels(_signed_pixels([image]) * (1 - repaint))
        rows = len(cond)
        return Conditioning(
            {
                **cond.tensors,
                MASK_KEY: self._latent_mask(repaint, latents).repeat(rows, 1, 1, 1),
                MASKED_IMAGE_KEY: latents.repeat(rows, 1, 1, 1),
            }
        )

    def _latent_mask(self, repaint: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """A pixel mask (1, 1, H, W) at the size of `latents`, nearest pixel as the pipelines
        resize it."""
        mask = F.interpolate(repaint, size=tuple(latents.shape[-2:]))
        return mask.to(self.device, self.dtype)

    def _inpainting_input(self, cond: Conditioning, latents: torch.Tensor) -> torch.Tensor:
        """The mask and masked image's latents of each row (N, 1 + channels, h, w): those in
        `cond`, or without them all repainted from a blank image, as the pipelines do when the
        whole image is masked."""
        if MASK_KEY in cond.tensors:
            return torch.cat([cond.tensors[MASK_KEY], cond.tensors[MASKED_IMAGE_KEY]], dim=1)
        size = tuple(latents.shape[-2:])
        if size not in self._blank_latents:
            f = self.size_multiple
            blank = torch.zeros(1, 3, size[0] * f, size[1] * f)
            encoded = self._encode_pixels(blank)
            mask = torch.ones_like(encoded[:, :1])
            self._blank_latents[size] = torch.cat([mask, encoded], dim=1)
        return self._blank_latents[size].expand(latents.shape[0], -1, -1, -1)

    # --- latents ----------------------------------------------------------------------------

    def scheduler(self, steps: int, latents: torch.Tensor | None = None):
        """A fresh scheduler set to `steps` steps (`latents`: see `FlowAdapter.scheduler`)."""
        if steps not in self._schedulers:
            scheduler = copy.deepcopy(self.pipe.scheduler)
            scheduler.set_timesteps(steps, device=self.device)
            self._schedulers[steps] = scheduler
        return copy.deepcopy(self._schedulers[steps])

    def unit_noise(self, seeds: Sequence[int], width: int, height: int) -> torch.Tensor:
        """Standard normal latents, one CPU generator per seed, so a batch equals its seeds
        run alone and a seed gives the same noise on every device."""
        f = int(self.pipe.vae_scale_factor)
        shape = (1, self.latent_channels, height // f, width // f)
        noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s)) for s in seeds]
        return torch.cat(noise).to(self.device, self.dtype)

    def initial_latents(self, unit_noise: torch.Tensor, steps: int) -> torch.Tensor:
        """Unit noise scaled to the noise level at which a `steps`-step schedule starts."""
        return unit_noise * self.scheduler(steps).init_noise_sigma

    def noise(self, seeds: Sequence[int], width: int, height: int, steps: int) -> torch.Tensor:
        """Starting latents of a `steps`-step schedule for each seed."""
        return self.initial_latents(self.unit_noise(seeds, width, height), steps)

    def noised(
        self, clean: torch.Tensor, unit_noise: torch.Tensor, steps: int, start: int
    ) -> torch.Tensor:
        """Clean latents noised to the level at which step `start` of the schedule begins."""
        scheduler = self.scheduler(steps)
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        t = scheduler.timesteps[start : start + 1].repeat(clean.shape[0])
        return scheduler.add_noise(clean, unit_noise, t)

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Clean latents of images (the mean of the VAE's latent distribution)."""
        return self._encode_pixels(_signed_pixels(images))

    @torch.no_grad()
    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Clean latents of RGB pixels (N, 3, H, W) in [-1, 1] (the mean of the VAE's latent
        distribution)."""
        with self._working_vae() as vae:
            posterior = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist
            scale, shift = latent_scaling(vae)
            return ((posterior.mean - shift) * scale).to(self.dtype)

    @torch.no_grad()
    def denoise(
        self,
        latents: torch.Tensor,
        cond: Conditioning,
        steps: int,
        start: int = 0,
        stop: int | None = None,
        guidance_scale: float | torch.Tensor = 0.0,
        on_step: StepHook | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[torch.Tensor]:
        """Runs steps [start, stop) of a `steps`-step schedule for the whole batch.

        Returns the latents that entered each step, then the final latents (stop - start + 1
        tensors). `on_step(i, latents)` is called before step i and returns the latents to use.
        Guidance works as in the family's pipeline (SD, SDXL, SD3: classifier-free when a scale
        is above 1, batched with the rest; FLUX: the guidance embedding, where the model has one).
        """
        stop = steps if stop is None else stop
        scheduler = self.scheduler(steps, latents)
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        guidance = torch.as_tensor(guidance_scale, dtype=torch.float32).flatten()
        guidance = guidance.expand(latents.shape[0]).to(self.device)
        predict = self._predictor(cond, guidance, latents, scheduler)
        trajectory = []
        for i in range(start, stop):
            if on_step is not None:
                latents = on_step(i, latents)
            trajectory.append(latents)
            t = scheduler.timesteps[i]
            latents = scheduler.step(predict(latents, t), t, latents, return_dict=False)[0]
            if progress is not None:
                progress(latents.shape[0])
        trajectory.append(latents)
        return trajectory

    def _predictor(
        self, cond: Conditioning, guidance: torch.Tensor, latents: torch.Tensor, scheduler
    ) -> Prediction:
        """The UNet's prediction `(latents, t) -> prediction` that the scheduler steps with, for
        a batch with this conditioning and per-row guidance (on the device)."""
        cfg = bool((guidance > 1).any())
        kwargs = self._unet_kwargs(cond, cfg, latents)
        g = guidance.view(-1, 1, 1, 1).to(self.dtype)
        unet = self._unet_call()
        control = None
        if self.control is not None and CONTROL_KEY.format(0) in cond.tensors:
            control = self.control.residuals(cond.tensors, kwargs, cfg)
        extra = self._inpainting_input(cond, latents) if self.inpainting else None
        if extra is not None and cfg:
            extra = torch.cat([extra, extra])

        def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x = scheduler.scale_model_input(torch.cat([x, x]) if cfg else x, t)
            residuals = control(x, t) if control is not None else {}
            if extra is not None:
                x = torch.cat([x, extra], dim=1)
            pred = unet(x, t, **kwargs, **residuals)
            return guided(pred, g) if cfg else pred

        return predict

    def _unet_call(self) -> CompiledCall:
        """The UNet's call, compiled as `compile` says (see `models.compiled`)."""
        if self._compiled_unet is None:
            unet = self.pipe.unet

            def forward(x: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
                return unet(x, t, return_dict=False, **kwargs)[0]

            self._compiled_unet = CompiledCall(unet, forward, "UNet")
        self._compiled_unet.set_mode(self.compile)
        return self._compiled_unet

    # --- images -----------------------------------------------------------------------------

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, batch_size: int = 8) -> list[Image.Image]:
        """Images of final latents, decoded in batches (see `decode_pixels`)."""
        return to_images(self.decode_pixels(latents, batch_size))

    @torch.no_grad()
    def decode_pixels(self, latents: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
        """8-bit RGB images (N, 3, H, W) of final latents, left on the device; decoded in batches
        in the dtype `vae_dtype` gives. A batch decoded in half precision that has NaN or inf
        is decoded again in float32."""
        chunks = latents.split(batch_size)
        with self._working_vae(self._decode_dtype(latents.device)) as vae:
            dtype = vae.dtype
            decoded = [_decode(vae, dtype, chunk) for chunk in chunks]
        redo = [i for i, pixels in enumerate(decoded) if pixels is None]
        if redo:
            log.warning(
                "decoding in %s gave NaN or inf in %d of %d batches; decoded them again in float32",
                str(dtype).removeprefix("torch."),
                len(redo),
                len(chunks),
            )
            with self._working_vae(torch.float32) as vae:
                for i in redo:
                    decoded[i] = _decode(vae, torch.float32, chunks[i])
        return torch.cat(decoded)

    def _decode_dtype(self, device: torch.device) -> torch.dtype | None:
        """The dtype decoding on `device` runs in; None: the VAE's usual one (see
        `_working_vae`)."""
        if self.vae_dtype != "auto":
            return DTYPES[self.vae_dtype]
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None

    @contextmanager
    def _working_vae(self, dtype: torch.dtype | None = None) -> Iterator:
        """The VAE in `dtype` while in use, one user at a time; its own weights are put back
        afterwards, so none lose precision. None: float32 when the VAE is in half precision and
        its config asks for the upcast (SDXL's VAE overflows in float16), else its own dtype."""
        vae = self.pipe.vae
        own = vae.dtype
        if dtype is None:
            upcast = own != torch.float32 and getattr(vae.config, "force_upcast", False)
            dtype = torch.float32 if upcast else own
        with self._vae_lock:
            if dtype == own:
                yield vae
                return
            params = [(p, p.data) for p in vae.parameters()]
            buffers = [(m, k, b) for m in vae.modules() for k, b in m._buffers.items()]
            # torch's own `to`: diffusers' override logs a warning on every dtype change
            torch.nn.Module.to(vae, dtype)
            try:
                yield vae
            finally:
                for p, data in params:
                    p.data = data
                for module, name, buffer in buffers:
                    module._buffers[name] = buffer


def _signed_pixels(images: Sequence[Image.Image]) -> torch.Tensor:
    """RGB images (all one size) as a batch (N, 3, H, W) in [-1, 1]."""
    arrays = [np.asarray(i.convert("RGB"), dtype=np.float32) / 127.5 - 1 for i in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def guided(pred: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance of a prediction batched as (unconditional, conditional) halves:
    uncond + scale·(cond − uncond), `scale` one value per row of a half."""
    uncond, text = pred.chunk(2)
    return uncond + scale * (text - uncond)


def _decode(vae, dtype: torch.dtype, latents: torch.Tensor) -> torch.Tensor | None:
    """8-bit RGB pixels (N, 3, H, W) of latents decoded by the VAE in `dtype` (its dtype); None
    when a half-precision decode gave NaN or inf."""
    scale, shift = latent_scaling(vae)
    pixels = vae.decode(latents.to(dtype) / scale + shift, return_dict=False)[0]
    if dtype != torch.float32 and not bool(torch.isfinite(pixels).all()):
        return None
    return ((pixels.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)


def latent_scaling(vae) -> tuple[float, float]:
    """(scaling factor, shift) between the VAE's latents and the diffusion model's."""
    scale = getattr(vae.config, "scaling_factor", 1.0)
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return scale, shift


class SDXLAdapter(DiffusionAdapter):
    """Diffusion through an SDXL pipeline: two text encoders, pooled embeddings, size time ids."""

    family = "sdxl"

    def _encode_plain(self, prompts: Sequence[str], negative_prompt: str) -> Conditioning:
        n = len(prompts)
        embeds, negative, pooled, negative_pooled = self.pipe.encode_prompt(
            list(prompts),
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=[negative_prompt] * n if negative_prompt else None,
        )
        return Conditioning(
            {
                "embeds": embeds,
                "negative_embeds": negative,
                "pooled": pooled,
                "negative_pooled": negative_pooled,
            }
        )

    def _encode_weighted(self, prompts: Sequence[str], negative_prompt: str) -> Conditioning:
        from compel import CompelForSDXL

        out = CompelForSDXL(self.pipe)(
            list(prompts), negative_prompt=[negative_prompt] * len(prompts)
        )
        return Conditioning(
            {
                "embeds": out.embeds,
                "negative_embeds": out.negative_embeds,
                "pooled": out.pooled_embeds,
                "negative_pooled": out.negative_pooled_embeds,
            }
        )

    def _unet_kwargs(self, cond: Conditioning, cfg: bool, latents: torch.Tensor) -> dict:
        t = cond.tensors
        f = self.size_multiple
        height, width = latents.shape[-2] * f, latents.shape[-1] * f
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=self.dtype)
        pooled = torch.cat([t["negative_pooled"], t["pooled"]]) if cfg else t["pooled"]
        kwargs = super()._unet_kwargs(cond, cfg, latents)
        kwargs["added_cond_kwargs"] = {
            "text_embeds": pooled,
            "time_ids": time_ids.to(self.device).expand(pooled.shape[0], -1),
        }
        return kwargs
