"""The model card (README.md) of a trained demo model, with measured quality rates."""

from __future__ import annotations

import json
from pathlib import Path

from latentmorph.demo import components
from latentmorph.demo.dataset import PALETTE, SHAPES, all_samples, sample_stream
from latentmorph.demo.quality import TEST_PROMPTS, TEST_SEEDS, QualityReport, evaluate

BROAD_COUNT = 96


def _parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _rates(report: QualityReport) -> str:
    return (
        f"{len(report.cases)} images: colours right {report.colour_rate:.0%}, "
        f"shape right {report.shape_rate:.0%}"
    )


def measure(pipeline, recommended: dict) -> tuple[QualityReport, QualityReport]:
    """Quality on the test prompts (2 seeds each) and on random training captions (1 seed)."""
    broad = sorted({s.caption for s in sample_stream(seed=1234, count=BROAD_COUNT)})
    options = dict(
        steps=recommended["steps"],
        guidance_scale=recommended["guidance_scale"],
        width=recommended["width"],
        height=recommended["height"],
    )
    return (
        evaluate(pipeline, TEST_PROMPTS, TEST_SEEDS, **options),
        evaluate(pipeline, broad, (0,), **options),
    )


def write_model_card(pipeline, folder: Path) -> Path:
    """Measure the pipeline saved in `folder` and write its ``README.md``."""
    training = json.loads((folder / "training.json").read_text())
    recommended = json.loads((folder / "latentmorph.json").read_text())
    test, broad = measure(pipeline, recommended)
    counts = {
        name: _parameters(getattr(pipeline, name))
        for name in ("unet", "vae", "text_encoder", "text_encoder_2")
    }
    unet = pipeline.unet.config
    failures = [c for c in test.cases if not (c.colours_ok and c.shape_ok)]
    failure_lines = [
        f"- `{c.prompt}` seed {c.seed}: saw {c.analysis.colour} {c.analysis.shape} "
        f"(fill {c.analysis.fill:.2f}) on {c.analysis.background}"
        for c in failures
    ] or ["- none"]
    lines = [
        "# latentmorph demo model",
        "",
        "A very small text-to-image latent diffusion model with the Stable Diffusion XL pipeline",
        "architecture, trained from scratch by latentmorph on procedurally rendered images of one",
        "flat shape on a flat background. It exists so that latentmorph runs offline, in seconds,",
        "with images that mean something. It knows nothing outside the vocabulary below.",
        "",
        "Load it with `StableDiffusionXLPipeline.from_pretrained(<this folder>)`.",
        "",
        "## Vocabulary",
        "",
        f"- colours: {', '.join(PALETTE)}",
        f"- shapes: {', '.join(SHAPES)}",
        "- sizes: small, large (no word: medium)",
        "- prompts: `a <colour> <shape> on a <colour> background` and",
        "  `a <small|large> <colour> <shape> on a <colour> background`, the two colours different",
        f"  ({len(all_samples())} distinct captions; the shape is always centred).",
        "",
        "Each vocabulary word is a single token of the bundled tokenizer (shared by both text",
        f"encoders, {components.MAX_TOKENS} tokens at most); other text falls back to characters.",
        "",
        "## Architecture",
        "",
        f"Total parameters: {sum(counts.values()):,} (weights stored as fp16 safetensors).",
        "",
        f"- UNet2DConditionModel ({counts['unet']:,}): blocks {list(unet.block_out_channels)}, "
        f"{unet.layers_per_block} layers per block, cross-attention dim "
        f'{unet.cross_attention_dim}, `addition_embed_type="text_time"`, '
        f"{unet.sample_size}x{unet.sample_size}x{unet.in_channels} latents",
        f"- AutoencoderKL ({counts['vae']:,}): 64x64 RGB to "
        f"{unet.sample_size}x{unet.sample_size}x{unet.in_channels} latents, "
        f"scaling factor {pipeline.vae.config.scaling_factor:.4f}",
        f"- CLIPTextModel ({counts['text_encoder']:,}) and CLIPTextModelWithProjection "
        f"({counts['text_encoder_2']:,}): {components.TEXT_DIM} wide, 2 layers",
        "- DDIMScheduler: v-prediction, zero-terminal-SNR rescaled betas, trailing timesteps "
        "(deterministic)",
        "",
        "## Training",
        "",
        f"- command: `{training['command']}`",
        f"- seed: {training['seed']}, device: {training['device']} "
        f"({training['threads']} threads), duration: {training['duration_s'] / 60:.1f} min",
        f"- steps: VAE {training['steps']['vae']} (batch {training['settings']['vae_batch']}), "
        f"then UNet and both text encoders jointly "
        f"{training['steps']['unet_and_text_encoders']} (batch "
        f"{training['settings']['unet_batch']}) on cached latents, "
        f"{training['settings']['cond_dropout']:.0%} conditioning dropout, EMA weights",
        "",
        "The duration is the wall-clock time of data generation and training, without saving",
        "and measuring.",
        "",
        "## Recommended settings",
        "",
        f"`num_inference_steps={recommended['steps']}`, "
        f"`guidance_scale={recommended['guidance_scale']}`, "
        f"`width={recommended['width']}`, `height={recommended['height']}` "
        "(also in `latentmorph.json`).",
        "",
        "## Measured quality",
        "",
        "Measured on pixels by `latentmorph.demo.quality` (border median = background, largest",
        "region far from it = foreground, nearest palette colour; shape from the fill ratio of",
        "the foreground's bounding box), at the recommended settings:",
        "",
        f"- test prompts (`TEST_PROMPTS` x seeds {list(TEST_SEEDS)}): {_rates(test)}",
        f"- {len(broad.cases)} random training captions, seed 0: {_rates(broad)}",
        "",
        "Test-prompt failures:",
        "",
        *failure_lines,
        "",
        "## Limitations",
        "",
        "- Every caption has exactly one training image (centred shape, fixed sizes), so the seed",
        "  barely changes the image; variety comes from the prompt.",
        "- Edges are soft and squares have rounded corners (8x8 latents decoded to 64x64).",
        "- The pipeline reads the first text encoder's penultimate layer only, so that encoder's",
        "  last layer is unused and stays at its random initialisation.",
        "",
        "## Licence",
        "",
        "Trained by the latentmorph authors on synthetic data; same licence as latentmorph (MIT).",
        "",
    ]
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path
