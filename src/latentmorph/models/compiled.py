"""A module's call without per-call launch overhead: batches padded to a few bucket sizes, then
replayed from captured CUDA graphs (cuda) or run through torch.compile (other devices).

Why graphs of the eager module on cuda rather than torch.compile: measured on an H100 with the
SDXL-Turbo UNet at 512², an eager call costs about 128 ms whatever the batch from 1 to 8 images
(the GPU waits for Python and kernel launches); replayed from a CUDA graph it takes 13.9 ms for
one image, and capturing a graph costs about a second. torch.compile's `reduce-overhead` mode
reached 18.4 ms at batch 2 but took 106–119 s to compile each batch shape, and its default mode
37.6 ms. Graphs are as fast and start in seconds, which suits the UI as well as a long movie.

Compile modes: `off` runs eager; `on` runs compiled and raises when that fails; `auto` runs
compiled on cuda (eager elsewhere: a CPU compile takes minutes and rarely pays for the models run
there) and falls back to eager, with a logged note, when compiling or capturing fails.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..checks import check_choice
from ..choices import COMPILE_MODES
from ..errors import InputError
from .device import is_out_of_memory

log = logging.getLogger(__name__)

AUTO_DEVICES = ("cuda",)
"""Device types on which `auto` compiles."""

Compiler = Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]


def bucket(rows: int) -> int:
    """The batch size a batch of `rows` is padded to: the least of 1, 2, 3, 4, 6, 8, 12, 16, 24,
    … (powers of two and 1.5 times them) that holds it, so that less than a third of a padded
    batch is padding and a transition meets only a few sizes."""
    size = 1
    while True:
        if rows <= size:
            return size
        if size >= 2 and rows <= size * 3 // 2:
            return size * 3 // 2
        size *= 2


def pad_rows(value: Any, rows: int, size: int) -> Any:
    """`value` with every tensor that has `rows` rows padded to `size` rows by repeating its last
    row (inside dicts, lists and tuples too); other values unchanged."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0 or value.shape[0] != rows or size == rows:
            return value
        return torch.cat([value, value[-1:].expand(size - rows, *value.shape[1:])])
    if isinstance(value, dict):
        return {k: pad_rows(v, rows, size) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(pad_rows(v, rows, size) for v in value)
    return value


def signature(value: Any) -> Any:
    """A hashable description of a call's arguments: the shape, dtype and device of each tensor
    and every other value, in their nesting; equal signatures can replay the same graph."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.device)
    if isinstance(value, dict):
        return ("dict", tuple((k, signature(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(signature(v) for v in value))
    return ("value", value)


def tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in `value`, in the order `signature` lists them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in tensors(v)]
    return []


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clone(v) for v in value)
    return value


def default_compiler(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """torch.compile in its default mode, one static graph per bucket size."""
    return torch.compile(fn, dynamic=False)


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]
    output: torch.Tensor


class CudaGraphs:
    """A function replayed from CUDA graphs, one captured per signature of its arguments; inputs
    are copied into the graph's own tensors and the output is cloned out of it. All graphs
    share one memory pool (only one runs at a time, and outputs are cloned at once)."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        self.fn = fn
        self.graphs: dict[Any, _Graph] = {}
        self._pool = None

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        key = signature((args, kwargs))
        entry = self.graphs.get(key) or self._capture(key, args, kwargs)
        for static, value in zip(entry.inputs, tensors((args, kwargs)), strict=True):
            static.copy_(value)
        entry.graph.replay()
        return entry.output.clone()

    def _capture(self, key: Any, args: tuple, kwargs: dict) -> _Graph:
        static_args, static_kwargs = _clone(args), _clone(kwargs)
        # warm-up on a side stream, as capture needs: lazy initialisation and library workspaces
        # happen outside the graph
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.fn(*static_args, **static_kwargs)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            output = self.fn(*static_args, **static_kwargs)
        self._pool = graph.pool()
        entry = _Graph(graph, tensors((static_args, static_kwargs)), output)
        self.graphs[key] = entry
        return entry


class CompiledCall:
    """`forward(x, *args, **kwargs) -> tensor`, batched along the first dimension of `x` (and of
    every argument tensor with as many rows), run as `mode` says (see the module docstring).

    Compiled calls pad the batch to its bucket size and return the first rows of the result, so
    that a transition's many batch sizes make a few graphs; eager calls run the batch as it is.
    `module` is the one whose weights `forward` uses: while accelerate's offload hooks move them
    between devices, calls run eager. `compiler` compiles for devices other than cuda (None:
    `default_compiler`).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        forward: Callable[..., torch.Tensor],
        name: str,
        compiler: Compiler | None = None,
    ) -> None:
        self.module = module
        self.forward = forward
        self.name = name
        self.compiler = compiler
        self.mode = "off"
        self._compiled: dict[str, Callable[..., torch.Tensor]] = {}
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def set_mode(self, mode: str) -> None:
        """Sets the compile mode: auto, on or off."""
        check_choice("compile", mode, COMPILE_MODES)
        self.mode = mode

    def __call__(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        device = x.device.type
        if not self._compiles(device):
            return self.forward(x, *args, **kwargs)
        rows = x.shape[0]
        size = bucket(rows)
        padded = pad_rows((x, args, kwargs), rows, size)
        with self._lock:
            try:
                return self._compiled_for(device)(padded[0], *padded[1], **padded[2])[:rows]
            except Exception as error:
                if is_out_of_memory(error):
                    self._compiled.pop(device, None)  # frees the graphs' memory pool
                    raise
                self._give_up(device, error)
        return self.forward(x, *args, **kwargs)

    def _compiles(self, device: str) -> bool:
        if self.mode == "off" or device in self._failed:
            return False
        if self.mode == "auto" and device not in AUTO_DEVICES:
            return False
        if _offloaded(self.module):
            if self.mode == "on":
                log.warning("compile: the %s runs eager while its weights are offloaded", self.name)
            return False
        return True

    def _compiled_for(self, device: str) -> Callable[..., torch.Tensor]:
        if device not in self._compiled:
            self._compiled[device] = (
                CudaGraphs(self.forward)
                if device == "cuda"
                else (self.compiler or default_compiler)(self.forward)
            )
        return self._compiled[device]

    def _give_up(self, device: str, error: Exception) -> None:
        """Eager from now on for `device` under auto (with a note); an error under on."""
        self._compiled.pop(device, None)
        self._failed.add(device)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if self.mode == "on":
            raise InputError(
                f"compile: 'on' failed for the {self.name} on {device} ({reason}); use auto or off"
            ) from error
        log.warning(
            "compile: the %s runs eager on %s; compiling failed (%s)", self.name, device, reason
        )


def _offloaded(module: torch.nn.Module) -> bool:
    """Whether the module's weights move to the device for each call: diffusers' model CPU
    offload puts an accelerate hook on each model of the pipeline."""
    return hasattr(module, "_hf_hook")
