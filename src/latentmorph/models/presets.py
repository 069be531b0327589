"""Named models: where each comes from and the settings that suit it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .adapter import FamilyDefaults

DEMO_MODEL_DIR = Path(__file__).resolve().parent / "demo"
"""The folder of the bundled, trained demo model (a diffusers SDXL pipeline)."""

SD_DEFAULTS = FamilyDefaults(30, 7.5, 512, 512, (0.3, 0.6, 0.9))
SDXL_DEFAULTS = FamilyDefaults(30, 4.0, 1024, 1024, (0.3, 0.6, 0.9))
TURBO_DEFAULTS = FamilyDefaults(4, 0.0, 512, 512, (1.0, 1.0, 1.0), few_step=True)
TINY_DEFAULTS = FamilyDefaults(8, 0.0, 64, 64, (0.3, 0.6, 0.9))
SD3_DEFAULTS = FamilyDefaults(28, 4.5, 1024, 1024, (0.3, 0.6, 0.9))
SD35_MEDIUM_DEFAULTS = FamilyDefaults(40, 4.5, 1024, 1024, (0.3, 0.6, 0.9))
SD35_LARGE_DEFAULTS = FamilyDefaults(28, 3.5, 1024, 1024, (0.3, 0.6, 0.9))
FLOW_TURBO_DEFAULTS = FamilyDefaults(4, 0.0, 1024, 1024, (1.0, 1.0, 1.0), few_step=True)
FLUX_DEV_DEFAULTS = FamilyDefaults(28, 3.5, 1024, 1024, (0.3, 0.6, 0.9))


@dataclass(frozen=True)
class Preset:
    """A model known by a short name: a hub id, a bundled folder or a tiny built pipeline."""

    source: str
    defaults: FamilyDefaults | None
    description: str


PRESETS: dict[str, Preset] = {
    "sdxl-turbo": Preset("stabilityai/sdxl-turbo", TURBO_DEFAULTS, "SDXL-Turbo, 1-4 steps"),
    "sd-turbo": Preset("stabilityai/sd-turbo", TURBO_DEFAULTS, "SD-Turbo (SD 2.1 base), 1-4 steps"),
    "sdxl": Preset("stabilityai/stable-diffusion-xl-base-1.0", SDXL_DEFAULTS, "SDXL base 1.0"),
    "sd15": Preset("stable-diffusion-v1-5/stable-diffusion-v1-5", SD_DEFAULTS, "SD 1.5"),
    "sd21": Preset(
        "stabilityai/stable-diffusion-2-1",
        FamilyDefaults(30, 7.5, 768, 768, (0.3, 0.6, 0.9)),
        "SD 2.1 (v-prediction, 768px)",
    ),
    "sd35-medium": Preset(
        "stabilityai/stable-diffusion-3.5-medium", SD35_MEDIUM_DEFAULTS, "SD 3.5 Medium (2.5B)"
    ),
    "sd35-large": Preset(
        "stabilityai/stable-diffusion-3.5-large", SD35_LARGE_DEFAULTS, "SD 3.5 Large (8B)"
    ),
    "sd35-large-turbo": Preset(
        "stabilityai/stable-diffusion-3.5-large-turbo",
        FLOW_TURBO_DEFAULTS,
        "SD 3.5 Large Turbo (8B), 4 steps",
    ),
    "flux-schnell": Preset(
        "black-forest-labs/FLUX.1-schnell", FLOW_TURBO_DEFAULTS, "FLUX.1 [schnell] (12B), 1-4 steps"
    ),
    "flux-dev": Preset(
        "black-forest-labs/FLUX.1-dev", FLUX_DEV_DEFAULTS, "FLUX.1 [dev] (12B), guidance embedded"
    ),
    "demo": Preset(str(DEMO_MODEL_DIR), None, "bundled SDXL-architecture demo model, offline"),
    "tiny-sd": Preset("tiny-sd", TINY_DEFAULTS, "tiny random SD pipeline built in code (noise)"),
    "tiny-sdxl": Preset(
        "tiny-sdxl", TINY_DEFAULTS, "tiny random SDXL pipeline built in code (noise)"
    ),
    "tiny-sd-inpaint": Preset(
        "tiny-sd-inpaint", TINY_DEFAULTS, "tiny random SD inpainting pipeline built in code (noise)"
    ),
    "tiny-sdxl-inpaint": Preset(
        "tiny-sdxl-inpaint",
        TINY_DEFAULTS,
        "tiny random SDXL inpainting pipeline built in code (noise)",
    ),
    "tiny-sd3": Preset(
        "tiny-sd3", TINY_DEFAULTS, "tiny random SD3.5 pipeline built in code (noise)"
    ),
    "tiny-flux": Preset(
        "tiny-flux", TINY_DEFAULTS, "tiny random FLUX.1 pipeline built in code (noise)"
    ),
}


def preset_for_source(source: str) -> Preset | None:
    """The preset whose hub id is `source`, so that a hub id gets its preset's defaults too."""
    return next((p for p in PRESETS.values() if p.source == source), None)
