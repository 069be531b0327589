"""Choice of torch device and dtype."""

from __future__ import annotations

import torch

from ..checks import check_device
from ..errors import InputError

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def resolve_device(name: str | None = None) -> torch.device:
    """The device named by `name` (`auto` or None: cuda, then mps, then cpu)."""
    name = check_device(name or "auto")
    base = name.split(":")[0]
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise InputError("device: 'cuda' was asked for but no CUDA GPU is available")
    if base == "mps" and not torch.backends.mps.is_available():
        raise InputError("device: 'mps' was asked for but Apple's MPS backend is not available")
    return torch.device(name)


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """The dtype named by `name` (`auto` or None: float16 on cuda, float32 elsewhere)."""
    if name in (None, "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise InputError(f"dtype: {name!r} is not allowed; use auto or one of {', '.join(DTYPES)}")
    return DTYPES[name]


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error raised by torch means the device ran out of memory."""
    message = str(error)
    return (
        isinstance(error, torch.cuda.OutOfMemoryError)
        or "out of memory" in message
        or "can't allocate memory" in message
    )


def release_memory(device: torch.device) -> None:
    """Returns cached blocks of the device's allocator, after an out-of-memory error."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
