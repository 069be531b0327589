"""Growing a movie's segments on a Ray cluster.

The process that writes the movie computes the keyframes once (with the first level of the
segments to grow, as a render in one process does) and sends them to workers: Ray actors that
each load the model once, one GPU each where the cluster has GPUs, else `CPU_WORKERS` on CPUs.
The segments are cut into the same windows of neighbours that one process grows together
(`segment_windows`); each window is a task for a free worker, and the trees come back in order
(images, distances and outline, no latents) to the one writer. A window's images are computed
with the same batches as in one process, so the movie equals a render in one process on the
same kind of device.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from ..blending.engine import Beginning, BlendingEngine, segment_windows
from ..blending.settings import BlendSettings
from ..blending.tree import Branch, TransitionTree
from ..errors import InputError, LatentmorphError
from ..models.adapter import Conditioning
from ..models.loading import load_pipeline
from .parts import detached

if TYPE_CHECKING:
    from ..render import MovieRenderer

RAY_EXTRA = "pip install 'latentmorph[ray]'"
CPU_WORKERS = 2
# windows handed out or held per worker beyond the one the writer waits for
AHEAD = 2


def import_ray(option: str = "--ray") -> ModuleType:
    """The `ray` module; an InputError naming `option` and what to install when it is missing."""
    try:
        import ray
    except ImportError:
        raise InputError(f"{option}: Ray is not installed; {RAY_EXTRA}") from None
    return ray


@dataclass(frozen=True)
class WorkerModel:
    """How each worker loads the model: as the writing process did (on the worker's GPU, or its
    CPU with `threads` torch threads: sums over as many threads come out the same)."""

    source: str
    dtype: str
    allow_pickle: bool = False
    offload: bool = False
    threads: int | None = None

    @classmethod
    def of(
        cls, renderer: MovieRenderer, allow_pickle: bool = False, offload: bool = False
    ) -> WorkerModel:
        """The model of `renderer`, in its dtype."""
        dtype = str(renderer.model.dtype).removeprefix("torch.")
        return cls(renderer.model.name, dtype, allow_pickle, offload)


@dataclass
class Grown:
    """A window's trees from a worker, and what the worker computed for them."""

    trees: list[TransitionTree]
    images: int
    unet_calls: int
    image_steps: int


class SegmentWorker:
    """A Ray actor: the model loaded once (`load`), growing windows of segments from the
    keyframes."""

    def __init__(self) -> None:
        # loading runs as a task (`load`), so that its errors come back as the task's cause
        self.engine: BlendingEngine | None = None
        self._beginning: Beginning | None = None
        self._conds: list[Conditioning] = []

    def load(self, model: WorkerModel, settings: BlendSettings, device: str) -> None:
        """Loads the model, the ControlNets and the mask of `settings` on `device` (the
        control images come with the conditionings)."""
        if model.threads is not None:
            torch.set_num_threads(model.threads)
        m = model
        adapter = load_pipeline(m.source, device, m.dtype, m.allow_pickle, m.offload)
        specs = settings.controlnet
        adapter.use_controlnets([s.model for s in specs], [s.scale for s in specs])
        self.engine = BlendingEngine(adapter, settings)

    def start(self, beginning: Beginning, conds: list[Conditioning]) -> None:
        """Takes the keyframes (and first-level branches) that every window grows from."""
        device = self.engine.model.device
        self._beginning = moved(beginning, device)
        self._conds = moved_conds(conds, device)

    def grow(self, segments: list[int]) -> Grown:
        """The trees of a window of neighbouring segments, without latents."""
        stats = self.engine.stats
        before = dataclasses.replace(stats)
        trees = self.engine.transitions(self._beginning, self._conds, segments)
        return Grown(
            [detached(tree) for tree in trees],
            stats.images - before.images,
            stats.unet_calls - before.unet_calls,
            stats.image_steps - before.image_steps,
        )


def moved(beginning: Beginning, device: torch.device | str) -> Beginning:
    """The beginning with its branches' latents and pixels on `device`."""

    def move(branch: Branch) -> Branch:
        pixels = None if branch.pixels is None else branch.pixels.to(device)
        return dataclasses.replace(
            branch, latents=[x.to(device) for x in branch.latents], pixels=pixels
        )

    first_level = beginning.first_level
    return Beginning(
        [move(b) for b in beginning.keyframes],
        beginning.plan,
        None if first_level is None else {i: [move(b) for b in v] for i, v in first_level.items()},
    )


def moved_conds(conds: Sequence[Conditioning], device: torch.device | str) -> list[Conditioning]:
    """The conditionings on `device`."""
    return [Conditioning({k: v.to(device) for k, v in c.tensors.items()}) for c in conds]


@dataclass
class _Worker:
    name: str
    actor: Any


class RayGrowth:
    """Grows segments on Ray workers in place of `engine` (as `MovieRenderer.grow`), with its
    settings; the workers start when first asked (as many as there are windows, at most one per
    GPU of the cluster, or `CPU_WORKERS`). What they compute is added to the engine's stats and
    reported to its progress; `done` counts the segments of each worker."""

    def __init__(
        self, ray: ModuleType, model: WorkerModel, engine: BlendingEngine, progress: bool = True
    ) -> None:
        self.ray = ray
        self.model = model
        self.engine = engine
        self.progress = progress
        self.done: Counter[str] = Counter()
        self.workers: list[_Worker] = []

    def __call__(
        self,
        beginning: Beginning,
        conds: Sequence[Conditioning],
        segments: Sequence[int] | None,
    ) -> Iterator[TransitionTree]:
        if segments is None:
            segments = range(len(beginning.keyframes) - 1)
        windows = segment_windows(list(segments), beginning.plan)
        self._start(len(windows))
        keyframes = self.ray.put(moved(beginning, "cpu"))
        texts = self.ray.put(moved_conds(conds, "cpu"))
        self._get([w.actor.start.remote(keyframes, texts) for w in self.workers])
        free = list(self.workers)
        running: dict[Any, tuple[int, _Worker]] = {}
        results: dict[int, Grown] = {}
        handed = 0
        with tqdm(
            total=len(segments), desc="segments", unit="segment", disable=not self.progress
        ) as bar:
            for wanted in range(len(windows)):
                while wanted not in results:
                    while free and handed < min(len(windows), wanted + AHEAD * len(self.workers)):
                        worker = free.pop(0)
                        running[worker.actor.grow.remote(windows[handed])] = (handed, worker)
                        handed += 1
                    (ready,), _ = self.ray.wait(list(running), num_returns=1)
                    index, worker = running.pop(ready)
                    results[index] = self._get(ready)
                    free.append(worker)
                    self._count(results[index], worker, bar)
                yield from results.pop(wanted).trees

    def _start(self, windows: int) -> None:
        """Starts the workers (once), each loading the model; a worker's LatentmorphError
        (a model, ControlNet or mask it cannot load) is raised as itself."""
        if self.workers:
            return
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        actor = self.ray.remote(SegmentWorker)
        if gpus:  # a worker sees its one GPU as cuda
            count, options, device, model = gpus, {"num_gpus": 1}, "cuda", self.model
        else:
            count, options, device = CPU_WORKERS, {"num_cpus": 1}, "cpu"
            model = dataclasses.replace(self.model, threads=torch.get_num_threads())
        self.workers = [
            _Worker(f"worker {i + 1}", actor.options(**options).remote())
            for i in range(min(count, windows))
        ]
        settings = self.engine.settings
        self._get([w.actor.load.remote(model, settings, device) for w in self.workers])

    def _count(self, grown: Grown, worker: _Worker, bar: tqdm) -> None:
        stats = self.engine.stats
        stats.images += grown.images
        stats.unet_calls += grown.unet_calls
        stats.image_steps += grown.image_steps
        if self.engine.progress is not None:
            self.engine.progress(grown.image_steps)
        self.done[worker.name] += len(grown.trees)
        bar.update(len(grown.trees))
        bar.set_postfix_str(", ".join(f"{name}: {n}" for name, n in sorted(self.done.items())))

    def _get(self, refs: Any) -> Any:
        """The values of `refs`; a worker's LatentmorphError (a model it cannot load, say) is
        raised as itself."""
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, LatentmorphError):
                raise error.cause from None
            raise

    def close(self) -> None:
        """Ends the workers."""
        for worker in self.workers:
            self.ray.kill(worker.actor)
        self.workers = []


@contextmanager
def on_ray(
    renderer: MovieRenderer, address: bool | str, model: WorkerModel, option: str = "--ray"
) -> Iterator[RayGrowth]:
    """Within, `renderer` grows its segments on a Ray cluster: with `address` True, the one
    this process is connected to, else the one `RAY_ADDRESS` names, else one started with
    `ray start` on this machine, else a new local one for the render; a string is a cluster's
    address (`ray://HOST:10001`, `HOST:6379`, `auto`). Errors name `option`."""
    ray = import_ray(option)
    connected = ray.is_initialized()
    if not connected:
        try:
            ray.init(
                address=None if address is True else address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except (ConnectionError, ValueError, RuntimeError) as error:
            where = "a local cluster" if address is True else repr(address)
            raise InputError(f"{option}: cannot start or reach {where}: {error}") from None
    growth = RayGrowth(ray, model, renderer.engine, renderer.progress)
    grow, renderer.grow = renderer.grow, growth
    try:
        yield growth
    finally:
        renderer.grow = grow
        growth.close()
        if not connected:
            ray.shutdown()
