"""Times one transition with the same plan batched and one branch at a time, and (on cuda, or
with --speed) eager against compiled with its distance from the compute bound.

Usage: python benchmarks/bench_transition.py [--device cpu|cuda] [--full-size] [--repeats N]
       [--speed] [--vae-dtype auto|float32|bfloat16|float16]

Tiny pipelines are built in code and the bundled demo model is loaded (CPU-friendly); with
--full-size, SD 1.5 and SDXL
architectures are built from their published configs with random weights (compute cost does not
depend on the weights) and run in float16 at 512² and 1024² (needs a GPU). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads sleep

import torch
from diffusers.utils import logging as diffusers_logging
from efficiency import dense_peak, transition_flops
from transformers.utils import logging as transformers_logging

from latentmorph.blending.engine import BlendingEngine, EngineStats
from latentmorph.blending.settings import BlendSettings
from latentmorph.models.loading import adapter_for, load_pipeline
from latentmorph.models.presets import SD_DEFAULTS, SDXL_DEFAULTS, TINY_DEFAULTS
from latentmorph.models.tiny import tiny_sd_pipeline, tiny_sdxl_pipeline

PROMPTS = ["a red circle on a blue background", "a yellow square on a green background"]


def run_once(model, settings: BlendSettings) -> tuple[float, EngineStats, float]:
    """Seconds for keyframes + tree (decode and distances included), the engine's stats, and the
    peak GPU memory in GiB (0 off cuda)."""
    engine = BlendingEngine(model, settings, distance=None)
    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    conds = engine.encode(PROMPTS)
    list(engine.transitions(engine.begin(conds, [420, 421]), conds))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    return seconds, engine.stats, peak


def resolved(model, size: int, steps: int, guidance: float, images: int, vae_dtype: str):
    return BlendSettings(
        steps=steps,
        branches=images,
        guidance_scale=guidance,
        width=size,
        height=size,
        distance="pixel",
        placement="even",  # one batch a level: the figures compare the two ways of batching
        vae_dtype=vae_dtype,
    ).resolve(model)[0]


def bench(name: str, model, size: int, steps: int, guidance: float, repeats: int) -> str:
    settings = resolved(model, size, steps, guidance, 12, "auto")
    run_once(model, settings)  # warm-up
    batched, single = settings, settings.replace(batched=False)
    pairs = [(run_once(model, batched), run_once(model, single)) for _ in range(repeats)]
    t_batched = statistics.median(b[0] for b, _ in pairs)
    t_single = statistics.median(s[0] for _, s in pairs)
    # runs alternate, and the speed-up is the median of each pair's ratio, so that drifts in
    # machine speed (common on shared VMs) cancel out
    speedup = statistics.median(s[0] / b[0] for b, s in pairs)
    row = (
        f"| {name} | {size}² | {steps} | {guidance} | {settings.branching_plan().describe()} | "
        f"{t_batched:.3f} s ({pairs[0][0][1].unet_calls} calls) | "
        f"{t_single:.3f} s ({pairs[0][1][1].unet_calls} calls) | "
        f"{speedup:.2f}x |"
    )
    if model.device.type == "cuda":
        row += f" {max(b[2] for b, _ in pairs):.1f} / {max(s[2] for _, s in pairs):.1f} GiB |"
    return row


SPEED_HEADER = (
    "| model | size | steps | guidance | images | UNet calls | image-steps | TFLOP | eager | "
    "compiled (first run) | speed-up | eager / bound | compiled / bound | peak memory (eager / "
    "compiled) |"
)


def speed_row(
    name: str,
    model,
    size: int,
    steps: int,
    guidance: float,
    images: int,
    repeats: int,
    vae_dtype: str,
) -> str:
    """Eager against compiled (CUDA graphs on cuda), batched, with the FLOPs of the run and the
    times over the time the device's dense peak needs for them."""
    settings = resolved(model, size, steps, guidance, images, vae_dtype)
    eager, compiled = settings.replace(compile="off"), settings.replace(compile="on")
    flops = transition_flops(model, settings, lambda: run_once(model, eager)[1])
    first = run_once(model, compiled)[0]  # compiles or captures the graphs
    pairs = [(run_once(model, eager), run_once(model, compiled)) for _ in range(repeats)]
    t_eager = statistics.median(e[0] for e, _ in pairs)
    t_compiled = statistics.median(c[0] for _, c in pairs)
    speedup = statistics.median(e[0] / c[0] for e, c in pairs)
    stats = pairs[0][0][1]
    peak = dense_peak(model.device)
    bound = flops / (peak * 1e12) if peak else None

    def over_bound(seconds: float) -> str:
        return f"{seconds / bound:.1f}x" if bound else "–"

    memory = "–"
    if model.device.type == "cuda":
        memory = f"{max(e[2] for e, _ in pairs):.1f} / {max(c[2] for _, c in pairs):.1f} GiB"

    return (
        f"| {name} | {size}² | {steps} | {guidance} | {stats.images} | {stats.unet_calls} | "
        f"{stats.image_steps} | {flops / 1e12:.3g} | {t_eager:.3f} s | {t_compiled:.3f} s "
        f"({first:.1f} s) | {speedup:.2f}x | {over_bound(t_eager)} | {over_bound(t_compiled)} | "
        f"{memory} |"
    )


def full_size_models(device: torch.device):
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from latentmorph.models.tiny import char_tokenizer, text_config

    tok = char_tokenizer()
    sched = EulerDiscreteScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1
    )
    vae = dict(
        block_out_channels=[128, 256, 512, 512],
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        layers_per_block=2,
    )
    clip_l = text_config(
        tok,
        hidden_size=768,
        intermediate_size=3072,
        num_attention_heads=12,
        num_hidden_layers=12,
        projection_dim=768,
    )
    sd = StableDiffusionPipeline(
        vae=AutoencoderKL(**vae),
        text_encoder=CLIPTextModel(clip_l),
        tokenizer=tok,
        unet=UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8),
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    clip_g = text_config(
        tok,
        hidden_size=1280,
        intermediate_size=5120,
        num_attention_heads=20,
        num_hidden_layers=32,
        projection_dim=1280,
    )
    sdxl = StableDiffusionXLPipeline(
        vae=AutoencoderKL(**vae, force_upcast=True),
        text_encoder=CLIPTextModel(clip_l),
        text_encoder_2=CLIPTextModelWithProjection(clip_g),
        tokenizer=tok,
        tokenizer_2=tok,
        unet=UNet2DConditionModel(
            sample_size=128,
            cross_attention_dim=2048,
            attention_head_dim=[5, 10, 20],
            block_out_channels=[320, 640, 1280],
            transformer_layers_per_block=[1, 2, 10],
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
            use_linear_projection=True,
        ),
        scheduler=sched,
    )
    for pipe in (sd, sdxl):
        pipe.to(device, torch.float16)
    return adapter_for(sd, SD_DEFAULTS, "sd15-architecture"), adapter_for(
        sdxl, SDXL_DEFAULTS, "sdxl-architecture"
    )


def print_table_head(device: torch.device, note: str = "") -> None:
    """Quiets the libraries' loading bars and prints the run's device line and the head of the
    batched-against-one-at-a-time table (with a peak-memory column on cuda)."""
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    print(
        f"device: {name or 'cpu'}"
        f", threads: {torch.get_num_threads()}, torch {torch.__version__}, "
        f"date: {datetime.date.today()}{note}"
    )
    header = "| model | size | steps | guidance | plan | batched | one at a time | speed-up |"
    rule = "|---|---|---|---|---|---|---|---|"
    if device.type == "cuda":
        header, rule = header + " peak memory (batched / one at a time) |", rule + "---|"
    print(header)
    print(rule)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-size", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--speed", action="store_true", help="eager against compiled (the default on cuda)"
    )
    parser.add_argument("--vae-dtype", default="auto", help="for eager against compiled")
    args = parser.parse_args()
    device = torch.device(args.device)
    print_table_head(device)
    rows, speed_rows = [], []
    if args.full_size:
        sd, sdxl = full_size_models(device)
        rows += [
            ("SD 1.5 arch, fp16", sd, 512, 30, 7.5),
            ("SDXL arch, fp16", sdxl, 1024, 30, 4.0),
            ("SDXL arch, fp16", sdxl, 512, 4, 0.0),
        ]
        speed_rows += [
            ("SDXL-Turbo arch, fp16", sdxl, 512, 4, 0.0, 32),
            ("SDXL arch, fp16", sdxl, 1024, 30, 4.0, 12),
            ("SD 1.5 arch, fp16", sd, 512, 30, 7.5, 12),
        ]
    else:
        for name, pipe in (("tiny SD", tiny_sd_pipeline()), ("tiny SDXL", tiny_sdxl_pipeline())):
            model = adapter_for(pipe.to(device), TINY_DEFAULTS, name)
            rows += [(name, model, size, 8, g) for size in (32, 64) for g in (0.0, 5.0)]
        demo = load_pipeline("demo", device=args.device)
        rows += [("demo", demo, 64, 20, 3.0), ("demo", demo, 64, 20, 0.0)]
        speed_rows += [("demo", demo, 64, 20, 3.0, 12)]
    for name, model, size, steps, guidance in rows:
        print(bench(name, model, size, steps, guidance, args.repeats), flush=True)
    if not (args.speed or device.type == "cuda"):
        return
    peak = dense_peak(device)
    print(f"\neager against compiled; bound: the FLOPs at {peak or 'an unknown'} TFLOP/s dense")
    print(SPEED_HEADER)
    print("|---" * SPEED_HEADER.count(" | ") + "|---|")
    for row in speed_rows:
        print(speed_row(*row, repeats=args.repeats, vae_dtype=args.vae_dtype), flush=True)


if __name__ == "__main__":
    main()
