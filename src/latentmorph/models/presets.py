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
    "demo": Preset(str(DEMO_MODEL_DIR), None, "bundled SDXL-architecture demo model, offline"),
    "tiny-sd": Preset("tiny-sd", TINY_DEFAULTS, "tiny random SD pipeline built in code (noise)"),
    "tiny-sdxl": Preset(
        "tiny-sdxl", TINY_DEFAULTS, "tiny random SDXL pipeline built in code (noise)"
    ),
}


def preset_for_source(source: str) -> Preset | None:
    """The preset whose hub id is `source`, so that a hub id gets its preset's defaults too."""
    return next((p for p in PRESETS.values() if p.source == source), None)
