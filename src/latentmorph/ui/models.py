"""Models shared by every session of the UI, loaded once and kept while in use."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..errors import LatentmorphError, ModelLoadError
from ..models.adapter import DiffusionAdapter
from ..models.loading import load_pipeline
from ..models.presets import PRESETS

DEFAULT_MODEL = "demo"
PRESET_NAMES = tuple(PRESETS)
NOT_LOADABLE = (
    "cannot be loaded: give a preset ({presets}), a hub id (owner/name) that this server can "
    "download or has cached, or a diffusers folder or .safetensors file on this server "
    "(pickle checkpoints are refused)"
)


def model_name(preset: str | None, custom: str | None) -> str:
    """The model the page asks for: the free-text field when filled, else the preset."""
    return (custom or "").strip() or (preset or "").strip() or DEFAULT_MODEL


class ModelCache:
    """Loaded models by name, the `keep` most recently used kept; all on one device and dtype,
    offloaded with `offload` (see `load_pipeline`).

    Pickle checkpoints are never loaded: only presets, hub ids, diffusers folders and
    .safetensors files.
    """

    def __init__(
        self,
        device: str | None = None,
        dtype: str | None = None,
        keep: int = 2,
        offload: bool = False,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.offload = offload
        self.keep = keep
        self._models: OrderedDict[str, DiffusionAdapter] = OrderedDict()
        self._lock = threading.Lock()
        self._loading = threading.Lock()

    def get(self, name: str) -> DiffusionAdapter:
        """The model `name`, loaded on first use; raises LatentmorphError when it cannot be."""
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
        with self._loading:
            with self._lock:
                if name in self._models:
                    return self._models[name]
            model = load_pipeline(
                name, self.device, self.dtype, allow_pickle=False, offload=self.offload
            )
            with self._lock:
                self._models[name] = model
                while len(self._models) > self.keep:
                    self._models.popitem(last=False)
            return model

    def get_for_page(self, name: str) -> DiffusionAdapter:
        """The model `name` typed in the page. Any name but a preset's fails with one and the
        same message, so that the answer never tells which files or folders the server has."""
        try:
            return self.get(name)
        except LatentmorphError as error:
            if name in PRESETS:
                raise
            message = NOT_LOADABLE.format(presets=", ".join(PRESET_NAMES))
            raise ModelLoadError(f"model {name[:80]!r} {message}") from error

    def is_loaded(self, name: str) -> bool:
        """Whether `name` is loaded already."""
        with self._lock:
            return name in self._models
