"""Loading a model by preset name, hub id, local diffusers folder or single .safetensors file."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import torch
from diffusers import (
    DiffusionPipeline,
    FluxPipeline,
    StableDiffusion3Pipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)

from ..errors import ModelLoadError
from .adapter import DiffusionAdapter, FamilyDefaults, SDXLAdapter
from .device import resolve_device, resolve_dtype
from .flux import FluxAdapter
from .presets import (
    FLOW_TURBO_DEFAULTS,
    FLUX_DEV_DEFAULTS,
    PRESETS,
    SD3_DEFAULTS,
    SD_DEFAULTS,
    SDXL_DEFAULTS,
    preset_for_source,
)
from .sd3 import SD3Adapter
from .tiny import (
    tiny_sd_inpaint_pipeline,
    tiny_sd_pipeline,
    tiny_sdxl_inpaint_pipeline,
    tiny_sdxl_pipeline,
)
from .tiny_flow import tiny_flux_pipeline, tiny_sd3_pipeline

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
WHAT_TO_DO = (
    "connect to the network (and run `hf auth login` for gated models), "
    "pass a local diffusers folder or .safetensors file, or use --model demo"
)
TINY_PIPELINES = {
    "tiny-sd": tiny_sd_pipeline,
    "tiny-sdxl": tiny_sdxl_pipeline,
    "tiny-sd-inpaint": tiny_sd_inpaint_pipeline,
    "tiny-sdxl-inpaint": tiny_sdxl_inpaint_pipeline,
    "tiny-sd3": tiny_sd3_pipeline,
    "tiny-flux": tiny_flux_pipeline,
}
FLOW_SINGLE_FILE_KEYS = ("joint_blocks.", "double_blocks.")
"""Key parts of single-file SD3 (MMDiT) and FLUX checkpoints."""
FLOW_PIPELINES = ("StableDiffusion3Pipeline", "FluxPipeline")


def load_pipeline(
    model: str = "demo",
    device: str | None = None,
    dtype: str | None = None,
    allow_pickle: bool = False,
    offload: bool = False,
) -> DiffusionAdapter:
    """Loads `model` (preset name, hub id, local diffusers folder or single .safetensors file).

    Device `auto` picks cuda, then mps, then cpu; dtype `auto` is float16 on cuda (bfloat16
    for SD3 and FLUX models, whose T5 encoder overflows in float16), else float32.
    Pickle checkpoints (.ckpt, .bin, ...) are refused unless `allow_pickle` is set. With
    `offload` on cuda, each model of the pipeline (text encoders, UNet or transformer, VAE) is
    moved to the GPU only while it runs (diffusers' model CPU offload); elsewhere it is ignored,
    with a notice.
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    preset = PRESETS.get(model)
    source = preset.source if preset else model
    if (
        torch_dtype == torch.float16
        and dtype in (None, "auto")
        and torch.cuda.is_bf16_supported()
        and is_flow_source(source)
    ):
        torch_dtype = torch.bfloat16
    if source in TINY_PIPELINES:
        pipe = TINY_PIPELINES[source]()
    else:
        pipe = _load_diffusers(source, torch_device, torch_dtype, allow_pickle)
        preset = preset or preset_for_source(source)
    adapter = adapter_for(pipe, preset.defaults if preset else None, model)
    _place(adapter, torch_device, torch_dtype, offload)
    return adapter


def is_flow_source(source: str) -> bool:
    """Whether `source` declares a flow-matching (SD3, FLUX) pipeline, as far as its
    `model_index.json` tells before loading."""
    if source in TINY_PIPELINES:
        return TINY_PIPELINES[source] in (tiny_sd3_pipeline, tiny_flux_pipeline)
    path = Path(source).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES + (".safetensors",):
        return False
    if not (path.is_dir() or HUB_ID.match(source)):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = DiffusionPipeline.load_config(str(path) if path.is_dir() else source)
    except Exception:  # unreadable here: loading it says why
        return False
    return config.get("_class_name") in FLOW_PIPELINES


def _place(
    adapter: DiffusionAdapter, device: torch.device, dtype: torch.dtype, offload: bool
) -> None:
    """Puts the adapter's pipeline in `dtype` on `device`, offloaded if asked and possible."""
    pipe = adapter.pipe
    if adapter.dtype != dtype:
        pipe.to(dtype)
    if offload and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
        return
    if offload:
        adapter.notices.append(
            f"offload ignored on {device.type}: model CPU offload is for cuda devices"
        )
    if adapter.device != device:
        pipe.to(device)


def adapter_for(pipe, defaults: FamilyDefaults | None = None, name: str = "") -> DiffusionAdapter:
    """Wraps a diffusers pipeline in the adapter of its family."""
    if isinstance(pipe, StableDiffusionXLPipeline | StableDiffusionXLInpaintPipeline):
        cls, family_defaults = SDXLAdapter, SDXL_DEFAULTS
    elif isinstance(pipe, StableDiffusionPipeline | StableDiffusionInpaintPipeline):
        cls, family_defaults = DiffusionAdapter, SD_DEFAULTS
    elif isinstance(pipe, StableDiffusion3Pipeline):
        cls, family_defaults = SD3Adapter, SD3_DEFAULTS
    elif isinstance(pipe, FluxPipeline):
        guided = pipe.transformer.config.guidance_embeds
        cls, family_defaults = FluxAdapter, FLUX_DEV_DEFAULTS if guided else FLOW_TURBO_DEFAULTS
    else:
        raise ModelLoadError(
            f"model {name or ''}: pipeline class {type(pipe).__name__} is not supported; "
            "use a Stable Diffusion 1.x/2.x, SDXL, SD3/3.5 or FLUX.1 text-to-image model, "
            "or an SD 1.x/2.x or SDXL inpainting model"
        )
    _check_denoiser_channels(pipe, cls, name)
    if defaults is None:
        defaults = _folder_defaults(pipe) or _native_size_defaults(pipe, family_defaults)
    return cls(pipe, defaults, name)


def _check_denoiser_channels(pipe, cls: type[DiffusionAdapter], name: str) -> None:
    """ModelLoadError when the pipeline's denoiser takes input channels its family does not
    (such as an inpainting transformer, or a UNet that takes a depth map or an image)."""
    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    channels = int(denoiser.config.in_channels)
    allowed = cls.denoiser_channels(int(pipe.vae.config.latent_channels))
    if channels not in allowed:
        what = ", ".join(f"{count} ({kind})" for count, kind in allowed.items())
        raise ModelLoadError(
            f"model {name or ''}: its {type(denoiser).__name__} takes {channels} input channels; "
            f"allowed for {cls.family} models: {what}"
        )


def _native_size_defaults(pipe, defaults: FamilyDefaults) -> FamilyDefaults:
    """The family's defaults at the size the pipeline makes when given none."""
    sample_size = getattr(pipe, "default_sample_size", None) or pipe.unet.config.sample_size
    size = int(sample_size) * int(pipe.vae_scale_factor)
    return dataclasses.replace(defaults, width=size, height=size)


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
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"model {source!r}: the folder holds no model_index.json, so it is not a "
                "diffusers pipeline; give a folder saved by diffusers (save_pretrained), a "
                ".safetensors file, a hub id (owner/name) or a preset"
            )
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
        raise ModelLoadError(explain_load_error(source, error)) from error


def _load_single_file(path: Path, dtype: torch.dtype):
    from safetensors import safe_open

    if path.suffix.lower() == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
        sdxl = any(k.startswith("conditioner.embedders.1.") for k in keys)
        if any(part in k for k in keys for part in FLOW_SINGLE_FILE_KEYS):
            raise ModelLoadError(
                f"model {str(path)!r}: single-file SD3 and FLUX checkpoints are not supported; "
                "use the model's diffusers folder or hub id"
            )
    else:
        sdxl = False
    cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    try:
        return cls.from_single_file(str(path), torch_dtype=dtype)
    except Exception as error:  # the hub client raises many types; all end here
        raise ModelLoadError(explain_load_error(str(path), error)) from error


def explain_load_error(
    source: str, error: Exception, what: str = "model", what_to_do: str = WHAT_TO_DO
) -> str:
    """One line saying why the `what` (model, controlnet) `source` could not be loaded and what
    to do about it."""
    name = type(error).__name__
    text = str(error).splitlines()[0] if str(error) else name
    if "Gated" in name or "401" in text or "403" in text:
        return f"{what} {source!r} is gated or private on the hub: {what_to_do}"
    if "RepositoryNotFound" in name or "404" in text:
        return f"{what} {source!r} was not found on the hub: check the id, or {what_to_do}"
    offline_words = ("offline", "connect", "not fully cached", "outgoing traffic")
    if "LocalEntryNotFound" in name or any(w in text.lower() for w in offline_words):
        return (
            f"{what} {source!r} is not in the local cache and the hub cannot be reached: "
            + what_to_do
        )
    return f"{what} {source!r} could not be loaded ({name}: {text}); {what_to_do}"
