"""Tiny randomly initialised SD and SDXL pipelines (text-to-image and inpainting) built from config,
for tests and offline runs.

Their images are noise-like but every code path of a full-size pipeline of the same family runs,
in milliseconds and with no download.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

TEXT_DIM = 32
LATENT_CHANNELS = 4
INPAINT_CHANNELS = 2 * LATENT_CHANNELS + 1
"""UNet input channels of an inpainting model: latents, mask, masked image's latents."""


def char_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose tokens are single printable ASCII characters (no BPE merges)."""
    chars = [chr(i) for i in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with tempfile.TemporaryDirectory(prefix="latentmorph-tok-") as name:
        folder = Path(name)
        (folder / "vocab.json").write_text(json.dumps(vocab))
        (folder / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer(
            str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
        )


def text_config(tokenizer: CLIPTokenizer, **sizes) -> CLIPTextConfig:
    """A CLIP text encoder config for `tokenizer`: tiny unless `sizes` say otherwise."""
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    options = dict(
        hidden_size=TEXT_DIM,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        projection_dim=TEXT_DIM,
    )
    options.update(sizes)
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=eos,
        pad_token_id=eos,
        **options,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=32,
    )


def _scheduler(prediction_type: str, timestep_spacing: str) -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
        timestep_spacing=timestep_spacing,
        steps_offset=1,
    )


def _unet(
    cross_attention_dim: int, sdxl: bool, in_channels: int = LATENT_CHANNELS
) -> UNet2DConditionModel:
    extra = (
        dict(
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM,
        )
        if sdxl
        else {}
    )
    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=in_channels,
        out_channels=LATENT_CHANNELS,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=8,
        **extra,
    )


def tiny_sd_pipeline(
    seed: int = 0,
    prediction_type: str = "epsilon",
    timestep_spacing: str = "leading",
    inpainting: bool = False,
) -> StableDiffusionPipeline | StableDiffusionInpaintPipeline:
    """A tiny SD 1.x/2.x-style pipeline (one text encoder); prediction may be v_prediction; with
    `inpainting`, an inpainting pipeline (its UNet takes latents, mask and masked image)."""
    torch.manual_seed(seed)
    tokenizer = char_tokenizer()
    pipeline = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    return pipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(text_config(tokenizer)),
        tokenizer=tokenizer,
        unet=_unet(TEXT_DIM, sdxl=False, in_channels=_unet_channels(inpainting)),
        scheduler=_scheduler(prediction_type, timestep_spacing),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_sdxl_pipeline(
    seed: int = 0,
    prediction_type: str = "epsilon",
    timestep_spacing: str = "leading",
    inpainting: bool = False,
) -> StableDiffusionXLPipeline | StableDiffusionXLInpaintPipeline:
    """A tiny SDXL-style pipeline (two text encoders, pooled embeddings, text-time conditioning);
    with `inpainting`, an inpainting pipeline."""
    torch.manual_seed(seed)
    tokenizer = char_tokenizer()
    config = text_config(tokenizer)
    pipeline = StableDiffusionXLInpaintPipeline if inpainting else StableDiffusionXLPipeline
    return pipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(config),
        text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=_unet(2 * TEXT_DIM, sdxl=True, in_channels=_unet_channels(inpainting)),
        scheduler=_scheduler(prediction_type, timestep_spacing),
    )


def tiny_sd_inpaint_pipeline(seed: int = 0) -> StableDiffusionInpaintPipeline:
    """A tiny SD inpainting pipeline (its UNet takes latents, mask and masked image)."""
    return tiny_sd_pipeline(seed, inpainting=True)


def tiny_sdxl_inpaint_pipeline(seed: int = 0) -> StableDiffusionXLInpaintPipeline:
    """A tiny SDXL inpainting pipeline (its UNet takes latents, mask and masked image)."""
    return tiny_sdxl_pipeline(seed, inpainting=True)


def _unet_channels(inpainting: bool) -> int:
    return INPAINT_CHANNELS if inpainting else LATENT_CHANNELS
