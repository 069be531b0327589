"""Filler frames: the in-between image at a time t in (0, 1) of two neighbouring computed images.

Two ways (`FILLERS`): `crossfade` mixes the pixels, which looks like a double exposure where the
neighbours differ in place; `flow` estimates dense optical flow both ways (OpenCV's DIS, no model
weights), warps each image toward time t and mixes the warped images, so that what moves is shown
part of the way along its path (Deforum's optical-flow cadence does the same); where the flow
does not explain the change (a colour that changes in place), the images are mixed in place.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from ..checks import check_choice
from ..choices import FILLERS

FLOW_SIDE = 256
"""Flow is estimated on grey images enlarged by a whole factor to at least this short side: DIS's
coarsest pyramid level follows the image size, and on small images (the demo model's 64x64) it
would miss motions of more than a few pixels."""

Filler = Callable[[float], Image.Image]
"""The filler frame at time t in (0, 1) of one pair of neighbours."""


def crossfade(a: Image.Image, b: Image.Image, t: float) -> Image.Image:
    """The pixel mix (1 - t)·a + t·b."""
    return Image.blend(a, b, t)


def dense_flows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The optical flow from `a` to `b` and from `b` to `a` (uint8 RGB arrays of one size), each
    (height, width, 2) float32 in pixels: a(p) ≈ b(p + flow_ab(p))."""
    height, width = a.shape[:2]
    scale = max(1, -(-FLOW_SIDE // min(height, width)))
    greys = []
    for image in (a, b):
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        if scale > 1:
            grey = cv2.resize(grey, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
        greys.append(grey)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = []
    for source, target in ((greys[0], greys[1]), (greys[1], greys[0])):
        flow = dis.calc(source, target, None)
        if scale > 1:
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) / scale
        flows.append(flow.astype(np.float32))
    return flows[0], flows[1]


def explained(a: np.ndarray, b: np.ndarray, flow_ab: np.ndarray) -> np.ndarray:
    """`flow_ab` kept where it explains the change from `a` to `b`: where `b` sampled along it
    matches `a` better than `b` in place; elsewhere (a change of colour rather than of place,
    where flow is spurious) faded to zero, over a soft edge (Gaussian, sigma 1.5 px)."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    moved = np.abs(x - _warp(y, flow_ab)).sum(-1)
    still = np.abs(x - y).sum(-1)
    keep = cv2.GaussianBlur((moved < still).astype(np.float32), (0, 0), 1.5)
    return flow_ab * keep[..., None]


def flow_blend(
    a: np.ndarray, b: np.ndarray, flow_ab: np.ndarray, flow_ba: np.ndarray, t: float
) -> np.ndarray:
    """The in-between of `a` and `b` (uint8 RGB) at time t from their flows both ways.

    The flows from time t back to each image are approximated from the flows between them
    (Super SloMo's approximation: f_t0 = -(1 - t)·t·f_ab + t²·f_ba, f_t1 = (1 - t)²·f_ab -
    t·(1 - t)·f_ba); each image is sampled along its flow and the two are mixed by t.
    """
    to_a = -(1 - t) * t * flow_ab + t * t * flow_ba
    to_b = (1 - t) * (1 - t) * flow_ab - t * (1 - t) * flow_ba
    mixed = (1 - t) * _warp(a, to_a) + t * _warp(b, to_b)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` sampled at p + flow(p) (bilinear, borders repeated), as float32."""
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        image.astype(np.float32),
        xs + flow[..., 0],
        ys + flow[..., 1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def filler(a: Image.Image, b: Image.Image, way: str) -> Filler:
    """The filler frames of neighbours `a` and `b` made the given way (`FILLERS`); `flow`
    estimates the flows once, on the first frame asked for."""
    check_choice("fillers", way, FILLERS)
    if way == "crossfade":
        return lambda t: crossfade(a, b, t)
    flows: list[tuple[np.ndarray, np.ndarray]] = []
    x, y = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))

    def at(t: float) -> Image.Image:
        if not flows:
            forward, backward = dense_flows(x, y)
            flows.append((explained(x, y, forward), explained(y, x, backward)))
        return Image.fromarray(flow_blend(x, y, *flows[0], t)).convert(a.mode)

    return at
