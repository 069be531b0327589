"""Loading a model by preset name, hub id, local diffusers folder or single .safetensors file."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

from ..errors import ModelLoadError
from .adapter import DiffusionAdapter, FamilyDefaults, SDXLAdapter
from .device import resolve_device, resolve_dtype
from .presets import PRESETS, SD_DEFAULTS, SDXL_DEFAULTS, preset_for_source
from .tiny import tiny_sd_pipeline, tiny_sdxl_pipeline

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
WHAT_TO_DO = (
    "connect to the network (and run `hf auth login` for gated models), "
    "pass a local diffusers folder or .safetensors file, or use --model demo"
)


def load_pipeline(
    model: str = "demo",
    device: str | None = None,
    dtype: str | None = None,
    allow_pickle: bool = False,
) -> DiffusionAdapter:
    """Loads `model` (preset name, hub id, local diffusers folder or single .safetensors file).

    Device `auto` picks cuda, then mps, then cpu; dtype `auto` is float16 on cuda, else float32.
    Pickle checkpoints (.ckpt, .bin, ...) are refused unless `allow_pickle` is set.
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    preset = PRESETS.get(model)
    source = preset.source if preset else model
    if source == "tiny-sd":
        pipe = tiny_sd_pipeline()
    elif source == "tiny-sdxl":
        pipe = tiny_sdxl_pipeline()
    else:
        pipe = _load_diffusers(source, torch_device, torch_dtype, allow_pickle)
        preset = preset or preset_for_source(source)
    if pipe.unet.dtype != torch_dtype:
        pipe.to(torch_dtype)
    if pipe.unet.device != torch_device:
        pipe.to(torch_device)
    return adapter_for(pipe, preset.defaults if preset else None, model)


def adapter_for(pipe, defaults: FamilyDefaults | None = None, name: str = "") -> DiffusionAdapter:
    """Wraps a diffusers pipeline in the adapter of its family."""
    if isinstance(pipe, StableDiffusionXLPipeline):
        cls, family_defaults = SDXLAdapter, SDXL_DEFAULTS
    elif isinstance(pipe, StableDiffusionPipeline):
        cls, family_defaults = DiffusionAdapter, SD_DEFAULTS
    else:
        raise ModelLoadError(
            f"model {name or ''}: pipeline class {type(pipe).__name__} is not supported; "
            "use a Stable Diffusion 1.x/2.x or SDXL text-to-image model"
        )
    if defaults is None:
        defaults = _folder_defaults(pipe) or _native_size_defaults(pipe, family_defaults)
    return cls(pipe, defaults, name)


def _native_size_defaults(pipe, defaults: FamilyDefaults) -> FamilyDefaults:
    size = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
    return FamilyDefaults(
        defaults.steps, defaults.guidance_scale, size, size, defaults.parental_crossfeed
    )


def _folder_defaults(pipe) -> FamilyDefaults | None:
    """Defaults recorded in a model folder's `latentmorph.json`, if it has one."""
    folder = Path(getattr(pipe, "name_or_path", "") or "")
    path = folder / "latentmorph.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return FamilyDefaults(
        steps=int(data["steps"]),
        guidance_scale=float(data["guidance_scale"]),
        width=int(data["width"]),
        height=int(data["height"]),
        parental_crossfeed=tuple(data.get("parental_crossfeed", (0.3, 0.6, 0.9))),
        few_step=bool(data.get("few_step", False)),
    )


def _load_diffusers(source: str, device: torch.device, dtype: torch.dtype, allow_pickle: bool):
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelLoadError(
            f"model {source!r}: pickle checkpoints ({', '.join(PICKLE_SUFFIXES)}) can run code "
            "when loaded and are refused; convert it to .safetensors or pass --allow-pickle"
        )
    if suffix in PICKLE_SUFFIXES + (".safetensors",):
        if not path.is_file():
            raise ModelLoadError(f"model {source!r}: no such file")
        return _load_single_file(path, dtype)
    if path.is_dir():
        return _from_pretrained(str(path), device, dtype, allow_pickle)
    if not HUB_ID.match(source):
        raise ModelLoadError(
            f"model {source!r} is not a preset ({', '.join(PRESETS)}), a local folder, "
            "a .safetensors file or a hub id of the form owner/name"
        )
    return _from_pretrained(source, device, dtype, allow_pickle)


def _from_pretrained(source: str, device: torch.device, dtype: torch.dtype, allow_pickle: bool):
    warnings.filterwarnings(
        "ignore", message=".*torch_dtype.*is deprecated", category=FutureWarning
    )
    kwargs = {"torch_dtype": dtype, "use_safetensors": None if allow_pickle else True}
    try:
        if dtype == torch.float16 and device.type == "cuda":
            try:
                return DiffusionPipeline.from_pretrained(source, variant="fp16", **kwargs)
            except (OSError, ValueError):
                pass  # no fp16 variant published: load the default weights
        return DiffusionPipeline.from_pretrained(source, **kwargs)
    except Exception as error:  # the hub client raises many types; all end here
        raise ModelLoadError(_explain(source, error)) from error


def _load_single_file(path: Path, dtype: torch.dtype):
    from safetensors import safe_open

    if path.suffix.lower() == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            sdxl = any(k.startswith("conditioner.embedders.1.") for k in f.keys())  # noqa: SIM118
    else:
        sdxl = False
    cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    try:
        return cls.from_single_file(str(path), torch_dtype=dtype)
    except Exception as error:  # the hub client raises many types; all end here
        raise ModelLoadError(_explain(str(path), error)) from error


def _explain(source: str, error: Exception) -> str:
    """One line saying why `source` could not be loaded and what to do about it."""
    name = type(error).__name__
    text = str(error).splitlines()[0] if str(error) else name
    if "Gated" in name or "401" in text or "403" in text:
        return f"model {source!r} is gated or private on the hub: {WHAT_TO_DO}"
    if "RepositoryNotFound" in name or "404" in text:
        return f"model {source!r} was not found on the hub: check the id, or {WHAT_TO_DO}"
    offline_words = ("offline", "connect", "not fully cached", "outgoing traffic")
    if "LocalEntryNotFound" in name or any(w in text.lower() for w in offline_words):
        return (
            f"model {source!r} is not in the local cache and the hub cannot be reached: "
            + WHAT_TO_DO
        )
    return f"model {source!r} could not be loaded ({name}: {text}); {WHAT_TO_DO}"
