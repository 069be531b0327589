"""Train the bundled demo model from scratch on rendered shapes and write it as a diffusers folder.

Run it as ``latentmorph train-demo --output DIR [--seed N] [--device cpu|cuda]``.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionXLPipeline
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from latentmorph.demo import components
from latentmorph.demo.dataset import IMAGE_SIZE, all_samples, render
from latentmorph.demo.model_card import write_model_card
from latentmorph.models.device import resolve_device

TIME_IDS = (IMAGE_SIZE, IMAGE_SIZE, 0, 0, IMAGE_SIZE, IMAGE_SIZE)


@dataclass(frozen=True)
class Settings:
    """Optimisation settings of one training run."""

    vae_steps: int = 2000
    vae_batch: int = 16
    vae_lr: float = 2e-3
    kl_weight: float = 1e-6
    unet_steps: int = 3200
    unet_batch: int = 64
    unet_lr: float = 1e-3
    cond_dropout: float = 0.1
    ema_decay: float = 0.999


@dataclass(frozen=True)
class Recommended:
    """Generation defaults written to ``latentmorph.json``."""

    steps: int = 20
    guidance_scale: float = 3.0
    width: int = IMAGE_SIZE
    height: int = IMAGE_SIZE


def _lr_factor(step: int, total: int, warmup: int = 100) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _optimizer(params: Iterable[torch.nn.Parameter], lr: float, total: int):
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total))
    return optimizer, scheduler


def _images() -> tuple[torch.Tensor, list[str]]:
    """Every distinct training image in [-1, 1] (N, 3, 64, 64) and its caption."""
    samples = all_samples()
    pixels = np.stack([render(s) for s in samples]).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), [s.caption for s in samples]


def train_vae(vae, images: torch.Tensor, settings: Settings, generator, bar: tqdm) -> float:
    """Fit the VAE to the images; returns the latent scaling factor (1 / latent std)."""
    device = images.device
    vae.to(device).train()
    optimizer, schedule = _optimizer(vae.parameters(), settings.vae_lr, settings.vae_steps)
    for _ in range(settings.vae_steps):
        index = torch.randint(0, len(images), (settings.vae_batch,), generator=generator)
        batch = images[index.to(device)]
        posterior = vae.encode(batch).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(device)
        recon = vae.decode(posterior.mean + posterior.std * noise).sample
        error = recon - batch
        loss = error.abs().mean() + error.pow(2).mean() + settings.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(phase="vae", loss=f"{loss.item():.4f}")
        bar.update()
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in images.split(64)])
    return float(1.0 / latents.std())


def _encode_text(text_encoder, text_encoder_2, ids: torch.Tensor):
    """Prompt embeddings and pooled embeddings the way the SDXL pipeline computes them."""
    first = text_encoder(ids, output_hidden_states=True)
    second = text_encoder_2(ids, output_hidden_states=True)
    embeds = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
    return embeds, second.text_embeds


def train_unet(
    parts: dict, latents: torch.Tensor, ids: torch.Tensor, settings: Settings, generator, bar: tqdm
) -> None:
    """Fit UNet and both text encoders to the cached latents with v-prediction."""
    device = latents.device
    unet, te1, te2, noise_schedule = (
        parts["unet"],
        parts["text_encoder"],
        parts["text_encoder_2"],
        parts["scheduler"],
    )
    for module in (unet, te1, te2):
        module.to(device).train()
    params = [p for m in (unet, te1, te2) for p in m.parameters()]
    optimizer, schedule = _optimizer(params, settings.unet_lr, settings.unet_steps)
    ema = EMAModel(params, decay=settings.ema_decay, use_ema_warmup=True, power=0.75)
    time_ids = torch.tensor([TIME_IDS], dtype=torch.float32, device=device)
    time_ids = time_ids.expand(settings.unet_batch, -1)
    for _ in range(settings.unet_steps):
        index = torch.randint(0, len(latents), (settings.unet_batch,), generator=generator)
        x0 = latents[index.to(device)]
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(
            0, noise_schedule.config.num_train_timesteps, (len(x0),), generator=generator
        ).to(device)
        keep = (torch.rand(len(x0), generator=generator) >= settings.cond_dropout).to(device)
        embeds, pooled = _encode_text(te1, te2, ids[index.to(device)])
        embeds = embeds * keep[:, None, None]
        pooled = pooled * keep[:, None]
        noisy = noise_schedule.add_noise(x0, noise, t)
        prediction = unet(
            noisy, t, embeds, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}
        ).sample
        loss = (prediction - noise_schedule.get_velocity(x0, noise, t)).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        ema.step(params)
        bar.set_postfix(phase="unet", loss=f"{loss.item():.4f}")
        bar.update()
    ema.copy_to(params)
    for module in (unet, te1, te2):
        module.eval()


def _save(parts: dict, output_dir: Path) -> StableDiffusionXLPipeline:
    """Write the pipeline with fp16 safetensors weights; returns it in fp32 on the CPU.

    The text encoder configs ask for float32 so that a plain ``from_pretrained`` loads every
    component in the same dtype.
    """
    pipeline = StableDiffusionXLPipeline(
        **parts, tokenizer_2=parts["tokenizer"], force_zeros_for_empty_prompt=True
    )
    pipeline.to("cpu", torch.float16)
    pipeline.save_pretrained(output_dir, safe_serialization=True)
    for name in ("text_encoder", "text_encoder_2"):
        config_path = output_dir / name / "config.json"
        config = json.loads(config_path.read_text())
        config["dtype"] = "float32"
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return pipeline.to(torch.float32)


def train_demo(
    output_dir: Path,
    seed: int = 0,
    device: str = "auto",
    settings: Settings | None = None,
    command: str | None = None,
) -> Path:
    """Train the demo model end to end (data, VAE, text encoders, UNet) and write it.

    The folder gets the diffusers pipeline, ``training.json`` (command, seed, duration, device,
    steps), ``latentmorph.json`` (recommended generation settings) and a model card ``README.md``
    with quality rates measured by `latentmorph.demo.quality`. Returns ``output_dir``.
    """
    settings = settings or Settings()
    output_dir = Path(output_dir)
    target = resolve_device(device)
    started = time.monotonic()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, captions = _images()
    tokenizer = components.build_tokenizer(output_dir / "tokenizer")
    text_encoder, text_encoder_2 = components.text_encoders(tokenizer)
    parts = {
        "vae": components.vae(),
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
        "tokenizer": tokenizer,
        "unet": components.unet(),
        "scheduler": components.scheduler(),
    }
    ids = tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(target)
    with tqdm(total=settings.vae_steps + settings.unet_steps, desc="train-demo") as bar:
        scale = train_vae(parts["vae"], images.to(target), settings, generator, bar)
        parts["vae"].register_to_config(scaling_factor=scale)
        with torch.no_grad():
            latents = torch.cat(
                [parts["vae"].encode(c).latent_dist.mean for c in images.to(target).split(64)]
            )
        train_unet(parts, latents * scale, ids, settings, generator, bar)
    duration = time.monotonic() - started
    pipeline = _save(parts, output_dir)
    record = {
        "command": command
        or shlex.join(
            [
                "latentmorph",
                "train-demo",
                "--output",
                str(output_dir),
                "--seed",
                str(seed),
                "--device",
                device,
            ]
        ),
        "seed": seed,
        "device": str(target),
        "duration_s": round(duration, 1),
        "steps": {"vae": settings.vae_steps, "unet_and_text_encoders": settings.unet_steps},
        "settings": asdict(settings),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    (output_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    recommended = Recommended()
    (output_dir / "latentmorph.json").write_text(json.dumps(asdict(recommended), indent=2) + "\n")
    write_model_card(pipeline, output_dir)
    return output_dir
