"""Rendering an animation: per-frame walks (with motion, video input, coherence) or blended
segments between prompt keyframes."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..blending.engine import BlendingEngine, EngineStats
from ..blending.kept_region import kept_region
from ..errors import InputError, MediaError
from ..interpolation import slerp
from ..limits import SEED_LIMIT
from ..models.adapter import Conditioning, DiffusionAdapter
from ..models.loading import load_pipeline
from ..movie.timing import frame_count, segment_frames
from ..movie.writers import check_output_path, open_writer
from ..project import ProjectFileBeside
from ..render import Summary
from . import DEFAULT_FPS
from .audio import audio_duration, audio_timing, onset_keyframes
from .control import ControlFrames
from .motion import match_colours, warp
from .schedules import (
    PromptKeyframe,
    parse_curve,
    parse_frequencies,
    scale_keyframes,
    segment_weights,
)
from .settings import Animation
from .video_input import VideoInput

WALK_BATCH = 8


class AnimationRenderer:
    """Plans an animation's frames (length, keyframes, timing) and renders them as a stream.

    `on_step`, when set, is called after every UNet step with the number of images it advanced
    (an exception it raises stops the render).
    """

    def __init__(
        self,
        animation: Animation,
        model: DiffusionAdapter | None = None,
        progress: bool = True,
    ) -> None:
        self.started = time.perf_counter()
        seed = animation.seed if animation.seed is not None else secrets.randbelow(SEED_LIMIT)
        self.animation = dataclasses.replace(animation, seed=seed)
        a = self.animation
        self.progress = progress
        self.model = model or load_pipeline(a.model, a.device, a.dtype)
        self.blend, self.notices = a.blend.resolve(self.model)
        self.model.configure(self.blend.compile, self.blend.vae_dtype)
        self.notices = list(self.model.notices) + self.notices
        self.size = (self.blend.width, self.blend.height)
        self.kept = kept_region(self.blend, self.model)
        self.video = VideoInput(a.init_video, self.size) if a.init_video else None
        self.control = ControlFrames(self.blend.controlnet, self.size, self.model)
        self.notices += self.control.notices
        self.fps = a.fps or (self.video.fps if self.video else DEFAULT_FPS)
        self.frames = self._frame_count()
        self.onsets = None
        self.keyframes = self._keyframes()
        self.weights = self._weights()
        self.stats = EngineStats()
        self.on_step: Callable[[int], None] | None = None

    def _frame_count(self) -> int:
        a = self.animation
        if a.duration is not None:
            return frame_count(a.duration, self.fps)
        if a.audio_keyframes:
            return frame_count(audio_duration(a.audio), self.fps)
        if self.video is not None:
            return self.video.frame_count
        return a.prompts[-1].frame + 1

    def _keyframes(self) -> list[PromptKeyframe]:
        a = self.animation
        if a.audio_keyframes:
            self.onsets = onset_keyframes(a.audio, self.fps, self.frames, a.audio_keyframes)
            prompts = [k.prompt for k in a.prompts]
            return [
                PromptKeyframe(frame, prompts[i % len(prompts)])
                for i, frame in enumerate(self.onsets.frames)
            ]
        if a.duration is not None and len(a.prompts) > 1:
            return scale_keyframes(a.prompts, self.frames)
        last = a.prompts[-1]
        if last.frame >= self.frames:
            raise InputError(
                f"prompts line {last.line}: keyframe {last.frame} is past the last frame "
                f"{self.frames - 1} of the {'video input' if self.video else 'animation'}"
            )
        return list(a.prompts)

    def _weights(self) -> list[tuple[int, float]]:
        """(segment, weight toward the next keyframe) for every frame."""
        a = self.animation
        starts = [k.frame for k in self.keyframes]
        if not a.audio_timing:
            curve = parse_curve(a.curve_points) if a.curve_points else None
            freqs = parse_frequencies(a.frequencies)
            return segment_weights(a.curve, starts, self.frames, freqs, curve)
        progress = audio_timing(a.audio, self.fps, self.frames, a.audio_timing, a.audio_reduce)
        weights = []
        for k, (segment, t) in enumerate(segment_weights("linear", starts, self.frames)):
            if len(starts) < 2:
                weights.append((segment, t))
                continue
            begin, end = progress[starts[segment]], progress[starts[segment + 1]]
            if end > begin:
                t = float(np.clip((progress[k] - begin) / (end - begin), 0.0, 1.0))
            weights.append((segment, t))
        return weights

    # --- frames -----------------------------------------------------------------------------

    def render_frames(self) -> Iterator[Image.Image]:
        """The animation's frames in order, computed as they are asked for."""
        frames = self._blend_frames() if self.animation.uses_blend else self._walk_frames()
        return frames if self.kept is None else self._still(frames)

    def _still(self, frames: Iterator[Image.Image]) -> Iterator[Image.Image]:
        """`frames` with the kept region of the mask from the first one."""
        first = None
        for image in frames:
            first = image if first is None else first
            yield self.kept.composite(image, first)

    def _encode(self) -> list[Conditioning]:
        prompts = [k.prompt for k in self.keyframes]
        cond = self.model.encode(prompts, self.blend.negative_prompt, self.blend.prompt_weighting)
        return [cond[i] for i in range(len(self.keyframes))]

    def _blend_frames(self) -> Iterator[Image.Image]:
        engine = BlendingEngine(self.model, self.blend, progress=self.on_step)
        engine.stats = self.stats
        conds = [
            self.control.conditioned(self.model, cond, [k.frame])
            for cond, k in zip(self._encode(), self.keyframes, strict=True)
        ]
        seeds = [self.animation.seed + i for i in range(len(self.keyframes))]
        conds, pinned = engine.with_kept_image(conds, seeds)
        beginning = engine.begin(conds, seeds, pinned=pinned)
        branches = beginning.keyframes
        positions = [k.frame for k in self.keyframes]
        yield from [branches[0].image] * positions[0]
        for i, tree in enumerate(engine.transitions(beginning, conds)):
            slots = positions[i + 1] - positions[i] + 1
            yield from segment_frames(
                tree.images, tree.distances, slots, last=False, fillers=self.blend.fillers
            )
        yield from [branches[-1].image] * (self.frames - positions[-1])

    def _walk_frames(self) -> Iterator[Image.Image]:
        a, model = self.animation, self.model
        steps = self.blend.steps
        conds = self._encode()
        seeds = (
            [a.seed] * len(self.keyframes)
            if a.fixed_noise
            else [a.seed + i for i in range(len(self.keyframes))]
        )
        noise = model.unit_noise(seeds, *self.size)
        guidance = a.schedule("guidance_scale")
        strength = a.schedule("strength")
        moving = a.has_motion
        feedback = moving or self.video is not None or a.coherence.active
        video = iter(self.video) if self.video is not None else None
        coherence = _CoherenceHook(a.coherence, a.seed) if a.coherence.active else None
        first = previous = held = None
        inpaints = self.kept is not None and model.inpainting
        for frames in _walk_batches(self.frames, 1 if feedback else WALK_BATCH, inpaints):
            begin = frames.start
            cond = Conditioning.cat([self._cond_at(conds, k) for k in frames])
            cond = self.control.conditioned(model, cond, frames)
            if inpaints and first is not None:
                cond = model.with_masked_image(cond, self.kept.keep, first)
            latents = torch.cat([self._noise_at(noise, k) for k in frames])
            g = [guidance.value_at(k) if guidance else self.blend.guidance_scale for k in frames]
            init = None
            if video is not None:
                init = next(video, None)
                if init is None:
                    raise MediaError(
                        f"init_video: {self.video.path} ends at frame {begin}, before the "
                        f"{self.video.frame_count} frames its header gives; the file is "
                        "truncated or damaged"
                    )
            elif previous is not None and moving:
                init = warp(previous, a.motion_at(begin), a.border)
            start = 0
            if init is not None:
                start = min(steps - 1, steps - round(steps * strength.value_at(begin)))
                clean = model.encode_images([init])
                latents = model.noised(clean, latents, steps, start)
            else:
                latents = model.initial_latents(latents, steps)
            hook = coherence.hook(steps, start) if coherence else None
            if self.kept is not None:
                hook = self.kept.hook(hook, held)
            trajectory = model.denoise(
                latents, cond, steps, start, steps, torch.tensor(g), hook, self.on_step
            )
            if self.kept is not None and held is None:
                held = self._first_steps([x[:1] for x in trajectory], start, noise)
            self.stats.unet_calls += steps - start
            self.stats.image_steps += (steps - start) * len(frames)
            self.stats.images += len(frames)
            for image in model.decode(trajectory[-1]):
                if a.colour_match and first is not None:
                    image = match_colours(image, first)
                if first is None:
                    first = image
                previous = image
                yield image

    def _first_steps(
        self, trajectory: list[torch.Tensor], start: int, noise: torch.Tensor
    ) -> list[torch.Tensor]:
        """The first frame's latents that entered every step: its `trajectory` from step `start`
        on, and before that its result noised to the step with its noise."""
        steps, clean = self.blend.steps, trajectory[-1]
        unit = self._noise_at(noise, 0)
        return [self.model.noised(clean, unit, steps, i) for i in range(start)] + trajectory[:-1]

    def _cond_at(self, conds: list[Conditioning], frame: int) -> Conditioning:
        segment, t = self.weights[frame]
        if len(conds) == 1:
            return conds[0]
        return conds[segment].lerp(conds[segment + 1], t)

    def _noise_at(self, noise: torch.Tensor, frame: int) -> torch.Tensor:
        segment, t = self.weights[frame]
        if noise.shape[0] == 1:
            return noise
        return slerp(noise[segment : segment + 1], noise[segment + 1 : segment + 2], t)

    # --- output -----------------------------------------------------------------------------

    def write(self, output: str | Path) -> Summary:
        """Writes the animation, with the soundtrack when there is audio, and its project file."""
        output = check_output_path(output, self.fps, self.animation.inputs())
        audio = self.animation.audio if output.suffix in (".mp4", ".webm") else None
        inputs = self.animation.inputs()
        with ProjectFileBeside(output, inputs) as project_file, ExitStack() as stack:
            writer = stack.enter_context(open_writer(output, self.fps, self.size, audio=audio))
            bar = stack.enter_context(
                tqdm(total=self.frames, desc="frames", unit="frame", disable=not self.progress)
            )
            for image in self.render_frames():
                writer.write(image)
                bar.update()
            project_file.stage(self.recorded().to_dict())
        return Summary(
            output=output,
            project_file=project_file.path,
            frames=writer.frames_written,
            images=self.stats.images,
            unet_calls=self.stats.unet_calls,
            image_steps=self.stats.image_steps,
            seconds=time.perf_counter() - self.started,
        )

    def recorded(self) -> Animation:
        """The animation as rendered: seed drawn, fps and frame count fixed."""
        b = self.blend
        return dataclasses.replace(
            self.animation,
            fps=self.fps,
            model=self.model.name,
            steps=b.steps,
            width=b.width,
            height=b.height,
            guidance_scale=self.animation.guidance_scale or str(b.guidance_scale),
        )


def _walk_batches(frames: int, batch: int, first_alone: bool) -> Iterator[range]:
    """Consecutive ranges of `frames` frames of at most `batch` frames; with `first_alone`, the
    first frame is a batch of its own (an inpainting model's masked image is the first frame)."""
    begin = 0
    while begin < frames:
        stop = min(frames, begin + (1 if first_alone and begin == 0 else batch))
        yield range(begin, stop)
        begin = stop


class _CoherenceHook:
    """Keeps a reference latent per step and pulls each new frame toward it."""

    def __init__(self, coherence, seed: int) -> None:
        self.coherence = coherence
        self.references: dict[int, torch.Tensor] = {}
        self.generator = torch.Generator("cpu").manual_seed(seed)

    def hook(self, steps: int, start: int):
        c = self.coherence

        def pull(step: int, latents: torch.Tensor) -> torch.Tensor:
            if step - start >= c.steps:
                return latents
            reference = self.references.get(step)
            if reference is not None:
                latents = latents - c.scale * (latents - reference)
                if c.noise > 0:
                    fresh = torch.randn(latents.shape, generator=self.generator)
                    latents = latents + c.noise * fresh.to(latents.device, latents.dtype)
                reference = c.alpha * latents + (1 - c.alpha) * reference
            self.references[step] = latents if reference is None else reference
            return latents

        return pull
