"""Times one transition per flow-matching family (SD3/SD3.5, FLUX.1), batched and one branch at a
time.

Usage: python benchmarks/bench_flow.py [--device cpu|cuda] [--full-size [--offload]] [--repeats N]

Tiny SD3 and FLUX pipelines are built in code (CPU-friendly). With --full-size, the SD3.5-medium
and FLUX.1-dev architectures (text encoders included: CLIP-L, CLIP-G, T5-XXL) are built from their
published configs with random weights (compute cost does not depend on the weights) in bfloat16
and run at 1024² (needs a GPU: about 16 and 34 GB of weights); with --offload, through diffusers'
model CPU offload. Prints a markdown table, with the peak GPU memory on cuda.
"""

from __future__ import annotations

import argparse
import contextlib
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import torch
from bench_transition import bench, print_table_head

from latentmorph.models.loading import adapter_for
from latentmorph.models.presets import SD35_MEDIUM_DEFAULTS, TINY_DEFAULTS
from latentmorph.models.tiny_flow import tiny_flux_pipeline, tiny_sd3_pipeline

T5_XXL = dict(
    vocab_size=32128,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    feed_forward_proj="gated-gelu",
    dropout_rate=0.0,
)
CLIP_L = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_attention_heads=12,
    num_hidden_layers=12,
    projection_dim=768,
)
CLIP_G = dict(
    hidden_size=1280,
    intermediate_size=5120,
    num_attention_heads=20,
    num_hidden_layers=32,
    projection_dim=1280,
    hidden_act="gelu",
)


@contextlib.contextmanager
def building(device: torch.device, dtype: torch.dtype):
    """Modules built inside are created on `device` in `dtype` (no float32 copy on the host)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _flow_vae(scaling_factor: float, shift_factor: float):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[128, 256, 512, 512],
        latent_channels=16,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        layers_per_block=2,
        sample_size=1024,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def sd35_medium_pipeline():
    """The SD3.5-medium architecture (MMDiT-X, 2.5B) with CLIP-L, CLIP-G and T5-XXL."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from latentmorph.models.tiny import char_tokenizer, text_config
    from latentmorph.models.tiny_flow import char_t5_tokenizer

    tok, t5_tok = char_tokenizer(), char_t5_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(
            sample_size=128,
            patch_size=2,
            in_channels=16,
            out_channels=16,
            num_layers=24,
            attention_head_dim=64,
            num_attention_heads=24,
            joint_attention_dim=4096,
            caption_projection_dim=1536,
            pooled_projection_dim=2048,
            pos_embed_max_size=384,
            dual_attention_layers=tuple(range(13)),
            qk_norm="rms_norm",
        ),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_flow_vae(1.5305, 0.0609),
        text_encoder=CLIPTextModelWithProjection(text_config(tok, **CLIP_L)),
        tokenizer=tok,
        text_encoder_2=CLIPTextModelWithProjection(text_config(tok, **CLIP_G)),
        tokenizer_2=tok,
        text_encoder_3=T5EncoderModel(T5Config(**T5_XXL)),
        tokenizer_3=t5_tok,
    )


def flux_dev_pipeline():
    """The FLUX.1-dev architecture (12B, guidance embedding) with CLIP-L and T5-XXL."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    from latentmorph.models.tiny import char_tokenizer, text_config
    from latentmorph.models.tiny_flow import FLUX_SCHEDULER, char_t5_tokenizer

    tok, t5_tok = char_tokenizer(), char_t5_tokenizer()
    return FluxPipeline(
        transformer=FluxTransformer2DModel(guidance_embeds=True),  # defaults: FLUX.1's sizes
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        vae=_flow_vae(0.3611, 0.1159),
        text_encoder=CLIPTextModel(text_config(tok, **CLIP_L)),
        tokenizer=tok,
        text_encoder_2=T5EncoderModel(T5Config(**T5_XXL)),
        tokenizer_2=t5_tok,
    )


def full_size_models(device: torch.device, offload: bool):
    """SD3.5-medium and FLUX.1-dev architectures in bfloat16, on `device` or offloaded."""
    from latentmorph.models.presets import FLUX_DEV_DEFAULTS

    models = []
    for build, defaults, name in (
        (sd35_medium_pipeline, SD35_MEDIUM_DEFAULTS, "sd35-medium-architecture"),
        (flux_dev_pipeline, FLUX_DEV_DEFAULTS, "flux-dev-architecture"),
    ):
        with building(torch.device("cpu") if offload else device, torch.bfloat16):
            pipe = build()
        if offload:
            pipe.enable_model_cpu_offload(device=device)
        models.append(adapter_for(pipe, defaults, name))
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-size", action="store_true")
    parser.add_argument("--offload", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    print_table_head(device, ", model CPU offload" if args.offload else "")
    if args.full_size:
        sd35, flux = full_size_models(device, args.offload)
        rows = [
            ("SD3.5-medium arch, bf16", sd35, 1024, 40, 4.5),
            ("FLUX.1-dev arch, bf16", flux, 1024, 28, 3.5),
            ("FLUX.1-dev arch, bf16", flux, 1024, 4, 0.0),
        ]
    else:
        sd3 = adapter_for(tiny_sd3_pipeline().to(device), TINY_DEFAULTS, "tiny SD3")
        flux = adapter_for(tiny_flux_pipeline().to(device), TINY_DEFAULTS, "tiny FLUX")
        schnell = adapter_for(
            tiny_flux_pipeline(guidance_embeds=False).to(device), TINY_DEFAULTS, "tiny FLUX"
        )
        rows = [
            ("tiny SD3", sd3, 64, 8, 0.0),
            ("tiny SD3", sd3, 64, 8, 5.0),
            ("tiny FLUX (dev-like)", flux, 64, 8, 3.5),
            ("tiny FLUX (schnell-like)", schnell, 64, 4, 0.0),
        ]
    for label, model, size, steps, guidance in rows:
        print(bench(label, model, size, steps, guidance, args.repeats), flush=True)


if __name__ == "__main__":
    main()
