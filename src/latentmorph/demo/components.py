"""Untrained components of the demo model: word tokenizer, text encoders, VAE, UNet, scheduler."""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

from latentmorph.demo.dataset import IMAGE_SIZE, PALETTE, SHAPES, SIZES

WORDS = ("a", "on", "background", *PALETTE, *SHAPES, *(s for s in SIZES if s != "medium"))
MAX_TOKENS = 16
TEXT_DIM = 64
TIME_DIM = 16
VAE_FACTOR = 8
LATENT_SIZE = IMAGE_SIZE // VAE_FACTOR
LATENT_CHANNELS = 8


def _word_merges(words: list[str]) -> list[tuple[str, str]]:
    """BPE merges that join each word left to right into one end-of-word token."""
    merges: list[tuple[str, str]] = []
    for word in sorted(words, key=lambda w: (-len(w), w)):
        pieces = [*word[:-1], word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            if (left, right) not in merges:
                merges.append((left, right))
            left += right
    return merges


def build_tokenizer(folder: Path) -> CLIPTokenizer:
    """A CLIP tokenizer written to `folder` in which every demo vocabulary word is one token.

    Other text falls back to single printable ASCII characters.
    """
    folder.mkdir(parents=True, exist_ok=True)
    chars = [chr(i) for i in range(33, 127)]
    merges = _word_merges([w for w in WORDS if len(w) > 1])
    tokens = [*chars, *(c + "</w>" for c in chars), *(a + b for a, b in merges)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n")
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=MAX_TOKENS
    )
    for word in WORDS:
        if len(tokenizer.tokenize(word)) != 1:
            raise RuntimeError(f"tokenizer splits {word!r}")
    return tokenizer


def text_config(tokenizer: CLIPTokenizer) -> CLIPTextConfig:
    """The configuration shared by both text encoders."""
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=4 * TEXT_DIM,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=MAX_TOKENS,
        projection_dim=TEXT_DIM,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=eos,
        pad_token_id=eos,
    )


def text_encoders(tokenizer: CLIPTokenizer) -> tuple[CLIPTextModel, CLIPTextModelWithProjection]:
    """The two randomly initialised SDXL text encoders."""
    config = text_config(tokenizer)
    return CLIPTextModel(config), CLIPTextModelWithProjection(config)


def vae() -> AutoencoderKL:
    """A randomly initialised VAE mapping 64x64 RGB images to 8x8x8 latents."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[16, 32, 64, 64],
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=IMAGE_SIZE,
        mid_block_add_attention=False,
    )


def unet() -> UNet2DConditionModel:
    """A randomly initialised SDXL-style UNet (text-time added conditioning) on 8x8 latents."""
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(64, 128),
        layers_per_block=2,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
        cross_attention_dim=2 * TEXT_DIM,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_DIM,
        projection_class_embeddings_input_dim=6 * TIME_DIM + TEXT_DIM,
    )


def scheduler() -> DDIMScheduler:
    """Deterministic v-prediction scheduler with zero-terminal-SNR rescaled betas."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        clip_sample=False,
        set_alpha_to_one=False,
    )
