"""Interpolation of latents and images."""

from __future__ import annotations

import torch

DOT_THRESHOLD = 0.9995


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation per batch item (a at t=0, b at t=1); linear when nearly parallel.

    `t` is a number or one value per batch item.
    """
    t = torch.as_tensor(t, dtype=torch.float32, device=a.device).reshape(-1, *[1] * (a.ndim - 1))
    a32, b32 = a.float(), b.float()
    flat_a, flat_b = a32.flatten(1), b32.flatten(1)
    dot = (flat_a * flat_b).sum(1) / (flat_a.norm(dim=1) * flat_b.norm(dim=1)).clamp_min(1e-12)
    dot = dot.clamp(-1, 1).reshape(-1, *[1] * (a.ndim - 1))
    theta = torch.acos(dot)
    sin = torch.sin(theta)
    parallel = dot.abs() > DOT_THRESHOLD
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, 1 - t, torch.sin((1 - t) * theta) / safe_sin)
    wb = torch.where(parallel, t, torch.sin(t * theta) / safe_sin)
    return (wa * a32 + wb * b32).to(a.dtype)
