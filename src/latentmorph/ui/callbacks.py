"""What the page's buttons do: plain functions of form values and session state.

User mistakes (LatentmorphError) come back as `gr.Error` with their one-line message.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from ..animation.settings import Animation
from ..errors import InputError, LatentmorphError
from ..image_files import check_image
from ..project import Project, save_project_data
from ..project_files import load_project
from . import forms, keyframes, rendering, workspace
from .keyframes import Shot
from .models import ModelCache, model_name

Views = tuple[list[Shot], list[tuple[str, str]], dict, dict, int | None, str, int | None, float]
RenderResult = tuple[str, list[str], str]
MovieResult = tuple[str, str, list[str], str]


UPLOADED_FIELDS = ("mask", "cn_image")
"""Form fields that hold an uploaded file (a path in gradio's cache, which deletes it)."""

TEMPORARY_PATH = re.compile(re.escape(tempfile.gettempdir()) + r"/[^\s'\",;:()]*")
"""A path in the server's temporary folder, as an error message writes it."""


def public(message: str) -> str:
    """`message` with the server's temporary paths (session folders, uploads) cut to their file
    names: the page does not learn where the server keeps files."""
    return TEMPORARY_PATH.sub(lambda match: Path(match[0]).name, message)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turns a LatentmorphError into a gr.Error that the page shows as a message."""
    try:
        yield
    except LatentmorphError as error:
        raise gr.Error(public(str(error)), print_exception=False) from None


def session_form(session: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The form with its uploaded files (mask, control image) copied into the session folder,
    so that projects and renders name files that stay while the session lasts."""
    uploads = {name: workspace.import_upload(session, form[name]) for name in UPLOADED_FIELDS}
    return {**form, **uploads}


def load_model(models: ModelCache, preset: str, custom: str, current: str) -> tuple[str, str]:
    """Loads the chosen model; returns the session's model and a status line.

    On failure the session keeps `current` and the status says why.
    """
    name = model_name(preset, custom)
    try:
        model = models.get_for_page(name)
    except LatentmorphError as error:
        gr.Warning(public(str(error)))
        return current, f"**Model not loaded:** {public(str(error))}"
    d = model.defaults
    return name, (
        f"**Model:** `{name}` ({d.width}×{d.height}, {d.steps} steps, "
        f"guidance {d.guidance_scale:g})"
    )


def generate_candidates(
    models: ModelCache,
    session: str,
    model: str,
    prompt: str,
    base_seed: float | None,
    random_seeds: bool,
    form: Mapping[str, Any],
) -> tuple[list[Shot], list[tuple[str, str]], int]:
    """Four images for `prompt` with different seeds; returns them, gallery items, selection 0."""
    with user_errors():
        prompt = (prompt or "").strip()
        if not prompt:
            raise InputError("prompt: missing; type what the keyframe should show")
        base = None if random_seeds else keyframes.check_seed(base_seed or 0)
        seeds = rendering.candidate_seeds(base)
        settings = forms.blend_settings(session_form(session, form))
        images = rendering.keyframe_images(
            models.get(model), [prompt] * len(seeds), seeds, settings
        )
    candidates = []
    for seed, image in zip(seeds, images):
        path = workspace.unique_path(session, f"candidate-{seed}", ".png")
        image.save(path)
        candidates.append(Shot(prompt, seed, keyframes.DEFAULT_SECONDS, str(path)))
    return candidates, [(c.image, f"seed {c.seed}") for c in candidates], 0


def keyframe_views(shots: list[Shot], selected: int | None) -> Views:
    """Everything shown about the keyframes: list, gallery, transition pickers, selection and
    the edit fields of the selected keyframe."""
    choices = [(keyframes.label(i, s, i == len(shots) - 1), i) for i, s in enumerate(shots)]
    first = 0 if shots else None
    last = len(shots) - 1 if len(shots) > 1 else None
    if selected is not None and not 0 <= selected < len(shots):
        selected = None
    shot = shots[selected] if selected is not None else None
    return (
        shots,
        keyframes.gallery(shots),
        gr.update(choices=choices, value=first),
        gr.update(choices=choices, value=last),
        selected,
        shot.prompt if shot else "",
        shot.seed if shot else None,
        shot.duration if shot else keyframes.DEFAULT_SECONDS,
    )


def add_keyframe(
    shots: list[Shot], candidates: list[Shot], index: int | None, seconds: float
) -> Views:
    """Adds the selected candidate at the end of the movie."""
    with user_errors():
        if not candidates:
            raise InputError("no candidates yet; generate some first")
        if index is None or not 0 <= index < len(candidates):
            raise InputError("no candidate selected; click one first")
        shot = candidates[index]
        chosen = Shot(shot.prompt, shot.seed, keyframes.check_duration(seconds), shot.image)
        result = keyframes.added(shots, chosen)
    return keyframe_views(result, len(result) - 1)


def add_image_keyframe(
    session: str, shots: list[Shot], photo: str | None, prompt: str | None, seconds: float
) -> Views:
    """Adds an uploaded image (copied into the session folder) as a keyframe at the end of the
    movie; the prompt (may be empty) conditions the way to and from it."""
    with user_errors():
        if not photo:
            raise InputError("no image yet; upload one first")
        check_image(photo, "image")
        photo = workspace.import_upload(session, photo)
        shot = Shot((prompt or "").strip(), 0, keyframes.check_duration(seconds), photo, photo)
        result = keyframes.added(shots, shot)
    return keyframe_views(result, len(result) - 1)


def select_keyframe(shots: list[Shot], index: int | None) -> Views:
    """Selects a keyframe for moving, deleting or editing."""
    return keyframe_views(shots, index)


def move_keyframe(shots: list[Shot], index: int | None, offset: int) -> Views:
    """Moves the selected keyframe `offset` places (−1: earlier, +1: later)."""
    with user_errors():
        result, target = keyframes.moved(shots, index, offset)
    return keyframe_views(result, target)


def delete_keyframe(shots: list[Shot], index: int | None) -> Views:
    """Removes the selected keyframe."""
    with user_errors():
        result = keyframes.deleted(shots, index)
    return keyframe_views(result, None)


def edit_keyframe(
    models: ModelCache,
    session: str,
    model: str,
    shots: list[Shot],
    index: int | None,
    prompt: str,
    seed: float | None,
    seconds: float,
    form: Mapping[str, Any],
) -> Views:
    """Changes the selected keyframe's prompt, seed and duration; its image is made again."""
    with user_errors():
        index = keyframes.check_index(shots, index)
        prompt = (prompt or "").strip()
        photo = shots[index].photo
        if not prompt and photo is None:
            raise InputError("prompt: missing; give the keyframe a prompt")
        seed = keyframes.check_seed(seed)
        changes: dict[str, Any] = {"duration": keyframes.check_duration(seconds)}
        if photo is not None:  # the keyframe is its image, whatever the prompt and seed
            changes.update(prompt=prompt, seed=seed)
        elif (prompt, seed) != (shots[index].prompt, shots[index].seed):
            settings = forms.blend_settings(session_form(session, form))
            image = rendering.keyframe_images(models.get(model), [prompt], [seed], settings)[0]
            path = workspace.unique_path(session, f"keyframe-{seed}", ".png")
            image.save(path)
            changes.update(prompt=prompt, seed=seed, image=str(path))
        result = keyframes.replaced(shots, index, **changes)
    return keyframe_views(result, index)


def movie_project(model: str, shots: list[Shot], form: Mapping[str, Any]) -> Project:
    """The project of the session's keyframes and settings."""
    if len(shots) < 2:
        raise InputError(f"{len(shots)} keyframe(s) chosen; add at least 2")
    return Project(
        keyframes=[s.keyframe() for s in shots],
        model=model,
        fps=float(form["fps"]),
        duration=keyframes.check_duration(form["segment_duration"]),
        settings=forms.blend_settings(form),
    )


def _render(models: ModelCache, session: str, model: str, stem: str, render) -> RenderResult:
    token = workspace.stop_token(session)
    output = workspace.unique_path(session, stem, ".mp4")
    try:
        with user_errors():
            summary = render(
                models.get(model), output, lambda: workspace.stop_requested(session, token)
            )
    except rendering.RenderStopped:
        raise gr.Error("render stopped", print_exception=False) from None
    status = (
        f"**Done:** {summary.frames} frames in {summary.seconds:.1f} s ({summary.images} images)"
    )
    if summary.keyframe_psnr:
        status += f"; {summary.psnr_text()}"
    return str(summary.output), [str(summary.output), str(summary.project_file)], status


def render_movie(
    models: ModelCache, session: str, model: str, shots: list[Shot], form: Mapping[str, Any]
) -> MovieResult:
    """Renders a movie through all keyframes; returns the video, its contact sheet, downloads
    and a status line."""
    with user_errors():
        project = movie_project(model, shots, session_form(session, form))
    return _render_movie(models, session, model, "movie", project)


def render_transition(
    models: ModelCache,
    session: str,
    model: str,
    shots: list[Shot],
    first: int | None,
    last: int | None,
    form: Mapping[str, Any],
) -> MovieResult:
    """Renders the transition from keyframe `first` to keyframe `last`."""
    with user_errors():
        pair = [shots[keyframes.check_index(shots, i)] for i in (first, last)]
        if first == last:
            raise InputError("transition: pick two different keyframes")
        project = movie_project(model, pair, session_form(session, form))
    return _render_movie(models, session, model, "transition", project)


def _render_movie(
    models: ModelCache, session: str, model: str, stem: str, project: Project
) -> MovieResult:
    sheet = workspace.unique_path(session, f"{stem}-sheet", ".png")
    video, files, status = _render(
        models,
        session,
        model,
        stem,
        lambda m, out, stop: rendering.render_movie(project, m, out, stop, sheet),
    )
    return video, str(sheet), files, status


def stop_renders(session: str) -> str:
    """Stops the session's running renders."""
    workspace.request_stop(session)
    return "**Stopped.**"


def session_animation(
    session: str, model: str, form: Mapping[str, Any], audio: str | None, video: str | None
) -> Animation:
    """The animation in the form, with uploads copied into the session folder."""
    with user_errors():
        return forms.animation(
            session_form(session, form),
            model,
            audio=workspace.import_upload(session, audio),
            init_video=workspace.import_upload(session, video),
        )


def render_animation(
    models: ModelCache,
    session: str,
    model: str,
    form: Mapping[str, Any],
    audio: str | None = None,
    video: str | None = None,
) -> RenderResult:
    """Renders the animation of the Animate tab."""
    anim = session_animation(session, model, form, audio, video)
    with user_errors():
        anim.check_media()
    return _render(
        models,
        session,
        model,
        "animation",
        lambda m, out, stop: rendering.render_animation(anim, m, out, stop),
    )


def save_movie(session: str, model: str, shots: list[Shot], form: Mapping[str, Any]) -> str:
    """Writes the keyframes and settings as a project file; returns its path."""
    with user_errors():
        project = movie_project(model, shots, session_form(session, form))
    return str(project.save(workspace.unique_path(session, "movie", ".yaml")))


def save_animation(
    session: str,
    model: str,
    form: Mapping[str, Any],
    audio: str | None = None,
    video: str | None = None,
) -> str:
    """Writes the animation as a project file; returns its path.

    Audio and video are named relative to the file, so they load again in this session.
    """
    data = session_animation(session, model, form, audio, video).to_dict()
    for key in ("audio", "init_video"):
        if data[key]:
            data[key] = Path(data[key]).name
    return str(save_project_data(data, workspace.unique_path(session, "animation", ".yaml")))


@dataclass
class LoadedSession:
    """A project file read into the page: which tab, the model, keyframes and form values."""

    kind: str
    model: str
    shots: list[Shot] = field(default_factory=list)
    form: dict[str, Any] = field(default_factory=dict)
    audio: str | None = None
    video: str | None = None
    notes: list[str] = field(default_factory=list)

    def status(self) -> str:
        what = f"{len(self.shots)} keyframes" if self.kind == "movie" else "an animation"
        notes = "".join(f"\n- {note}" for note in self.notes)
        return f"**Loaded** {what} (model `{self.model}`).{notes}"


def load_session(models: ModelCache, session: str, model: str, upload: str | None) -> LoadedSession:
    """Reads a project file (movie or animation, from this page or the CLI).

    Keyframe images are made again from prompt and seed with the project's model, or the
    session's model when the project's cannot be loaded.
    """
    with user_errors():
        if not upload:
            raise InputError("no project file given; upload a .yaml project file")
        path = Path(workspace.import_upload(session, upload))
        project = load_project(path)
        loaded = _loaded_model(models, project.model, model)
        if isinstance(project, Animation):
            return _loaded_animation(project, loaded)
        return _loaded_movie(models, session, project, loaded)


def _loaded_model(models: ModelCache, wanted: str, current: str) -> LoadedSession:
    try:
        models.get_for_page(wanted)
        return LoadedSession(kind="", model=wanted)
    except LatentmorphError as error:
        note = f"its model could not be loaded ({public(str(error))}); using `{current}` instead"
        gr.Warning(note)
        return LoadedSession(kind="", model=current, notes=[note])


def _loaded_animation(anim: Animation, loaded: LoadedSession) -> LoadedSession:
    loaded.kind = "animation"
    loaded.form = forms.animation_form(anim)
    loaded.audio = _present(anim.audio, "audio", loaded.notes)
    loaded.video = _present(anim.init_video, "video", loaded.notes)
    return loaded


def _present(path: str | None, what: str, notes: list[str]) -> str | None:
    if path and not Path(path).is_file():
        notes.append(f"{what} file {Path(path).name} is not here; upload it again")
        return None
    return path


def _loaded_movie(
    models: ModelCache, session: str, project: Project, loaded: LoadedSession
) -> LoadedSession:
    project = project.with_seeds()
    settings = project.settings
    prompted = [k for k in project.keyframes if k.image is None]
    images = iter(
        rendering.keyframe_images(
            models.get(loaded.model),
            [k.prompt for k in prompted],
            [k.seed for k in prompted],
            forms.shown_settings(settings),
        )
        if prompted
        else []
    )
    durations = [*project.durations, project.duration]
    for kf, seconds in zip(project.keyframes, durations):
        if kf.image is not None:
            loaded.shots.append(Shot(kf.prompt, kf.seed, seconds, kf.image, kf.image))
            continue
        path = workspace.unique_path(session, f"keyframe-{kf.seed}", ".png")
        next(images).save(path)
        loaded.shots.append(Shot(kf.prompt, kf.seed, seconds, str(path)))
    loaded.kind = "movie"
    loaded.form = {
        **forms.blend_form(settings),
        "fps": project.fps,
        "segment_duration": project.duration,
    }
    return loaded
