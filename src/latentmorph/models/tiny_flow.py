"""Tiny randomly initialised SD3 and FLUX pipelines built from config, for tests and offline runs.

Like the tiny SD and SDXL pipelines: noise-like images, every code path of the full-size family
(CLIP and T5 text encoders, a flow-matching transformer, a VAE with a latent shift), in
milliseconds and with no download.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import (
    CLIPTextModel,
    CLIPTextModelWithProjection,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

from .tiny import TEXT_DIM, char_tokenizer, text_config

T5_DIM = 2 * TEXT_DIM  # SD3 pads the two CLIP encoders' joined states to T5's width

FLUX_SCHEDULER = dict(
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)
"""FLUX.1's scheduler configuration (its resolution-dependent shift)."""


def char_t5_tokenizer() -> T5Tokenizer:
    """A T5 tokenizer whose pieces are single printable ASCII characters."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(chr(i), -1.0) for i in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def t5_encoder(tokenizer: T5Tokenizer, d_model: int) -> T5EncoderModel:
    """A tiny T5 v1.1-style encoder (gated GELU) for `tokenizer`."""
    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=d_model,
            d_kv=8,
            d_ff=2 * d_model,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            dropout_rate=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    )


def _vae(scaling_factor: float, shift_factor: float) -> AutoencoderKL:
    """A VAE as SD3's and FLUX's: no quantisation convolutions, latents scaled and shifted."""
    return AutoencoderKL(
        block_out_channels=[16, 32, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def tiny_sd3_pipeline(seed: int = 0) -> StableDiffusion3Pipeline:
    """A tiny SD3.5-style pipeline: two CLIP encoders and a T5, an MMDiT with dual attention and
    RMS-normalised queries and keys, a shifted flow-matching schedule."""
    torch.manual_seed(seed)
    tokenizer, t5_tokenizer = char_tokenizer(), char_t5_tokenizer()
    config = text_config(tokenizer)
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(
            sample_size=16,
            patch_size=2,
            in_channels=4,
            out_channels=4,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=T5_DIM,
            caption_projection_dim=32,
            pooled_projection_dim=2 * TEXT_DIM,
            pos_embed_max_size=16,
            dual_attention_layers=(0,),
            qk_norm="rms_norm",
        ),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_vae(1.5305, 0.0609),
        text_encoder=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer_2=tokenizer,
        text_encoder_3=t5_encoder(t5_tokenizer, T5_DIM),
        tokenizer_3=t5_tokenizer,
    )


def tiny_flux_pipeline(seed: int = 0, guidance_embeds: bool = True) -> FluxPipeline:
    """A tiny FLUX.1-style pipeline: CLIP (pooled) and T5 encoders, a transformer over packed
    2x2 latent patches with rotary image ids, a resolution-shifted flow-matching schedule; with
    a guidance embedding as FLUX.1-dev, or without as FLUX.1-schnell."""
    torch.manual_seed(seed)
    tokenizer, t5_tokenizer = char_tokenizer(), char_t5_tokenizer()
    return FluxPipeline(
        transformer=FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=TEXT_DIM,
            pooled_projection_dim=TEXT_DIM,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=(4, 4, 8),
        ),
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        vae=_vae(0.3611, 0.1159),
        text_encoder=CLIPTextModel(text_config(tokenizer)),
        tokenizer=tokenizer,
        text_encoder_2=t5_encoder(t5_tokenizer, TEXT_DIM),
        tokenizer_2=t5_tokenizer,
    )
