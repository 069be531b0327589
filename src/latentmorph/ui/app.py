"""The page layout and the server: `build_app` wires components to `callbacks`; `launch` serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from ..choices import (
    ANIMATION_MODES,
    AUDIO_COMPONENTS,
    AUDIO_REDUCTIONS,
    BORDER_MODES,
    COMPILE_MODES,
    CONTROL_PREPROCESSORS,
    CURVES,
    FILLERS,
    PLACEMENTS,
    QUALITIES,
)
from ..limits import MAX_CONTROL_SCALE
from . import callbacks, forms
from .models import DEFAULT_MODEL, PRESET_NAMES, ModelCache
from .routes import MIDDLEWARE
from .workspace import Workspaces

RENDERS_AT_ONCE = 1
IMAGE_JOBS_AT_ONCE = 2
QUEUE_SIZE = 64
MAX_UPLOAD = "500mb"
DELETE_CACHE = (3600, 24 * 3600)
TRACK_TQDM = gr.Progress(track_tqdm=True)

Form = dict[str, gr.components.Component]


def build_app(
    model: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    models: ModelCache | None = None,
    workspaces: Workspaces | None = None,
) -> gr.Blocks:
    """The UI, opening with `model` (default: demo) on `device` and `dtype`.

    Each browser session gets a folder of `workspaces` when it first writes a file, removed when
    the session ends. Every event is private: the page calls it, the API does not list or
    serve it.
    """
    models = models or ModelCache(device, dtype)
    workspaces = Workspaces() if workspaces is None else workspaces
    start_model = model or DEFAULT_MODEL

    def here(request: gr.Request) -> str:
        return workspaces.folder(request.session_hash)

    with gr.Blocks(title="latentmorph", analytics_enabled=False, delete_cache=DELETE_CACHE) as app:
        model_state = gr.State(start_model)
        shots = gr.State([])
        candidates = gr.State([])
        picked = gr.State(0)
        selected = gr.State(None)
        gr.Markdown("# latentmorph\nSmooth transitions and animations with latent diffusion.")
        preset, custom, model_status, load_button = _model_row(start_model, models)
        form = _blend_settings()
        with gr.Tabs():
            with gr.Tab("Keyframes"):
                kf = _keyframes_tab(form)
            with gr.Tab("Animate"):
                anim = _animate_tab(form)
            with gr.Tab("Session"):
                sess = _session_tab()

        def form_values(data: dict) -> dict[str, Any]:
            return {name: data[component] for name, component in form.items()}

        state_inputs = {model_state, shots, *form.values()}
        views = [
            shots,
            kf["gallery"],
            kf["first"],
            kf["last"],
            selected,
            kf["edit_prompt"],
            kf["edit_seed"],
            kf["edit_seconds"],
        ]
        private = {"api_visibility": "private"}
        light = {"concurrency_limit": None, "show_progress": "hidden", **private}
        images = {"concurrency_id": "images", "concurrency_limit": IMAGE_JOBS_AT_ONCE, **private}
        renders = {"concurrency_id": "render", "concurrency_limit": RENDERS_AT_ONCE, **private}

        def on_load_model(preset_name, custom_name, current, progress=TRACK_TQDM):
            return callbacks.load_model(models, preset_name, custom_name, current)

        load_button.click(
            on_load_model,
            [preset, custom, model_state],
            [model_state, model_status],
            concurrency_id="model",
            concurrency_limit=1,
            **private,
        )

        def on_candidates(data: dict, request: gr.Request, progress=TRACK_TQDM):
            return callbacks.generate_candidates(
                models,
                here(request),
                data[model_state],
                data[kf["prompt"]],
                data[kf["base_seed"]],
                data[kf["random"]],
                form_values(data),
            )

        kf["generate"].click(
            on_candidates,
            state_inputs | {kf["prompt"], kf["base_seed"], kf["random"]},
            [candidates, kf["candidates"], picked],
            **images,
        )
        kf["prompt"].submit(
            on_candidates,
            state_inputs | {kf["prompt"], kf["base_seed"], kf["random"]},
            [candidates, kf["candidates"], picked],
            **images,
        )

        def on_pick(evt: gr.SelectData):
            return evt.index

        kf["candidates"].select(on_pick, None, picked, **light)
        kf["add"].click(
            callbacks.add_keyframe, [shots, candidates, picked, kf["seconds"]], views, **light
        )

        def on_add_photo(chosen, photo, prompt, seconds, request: gr.Request):
            return callbacks.add_image_keyframe(here(request), chosen, photo, prompt, seconds)

        kf["add_photo"].click(
            on_add_photo,
            [shots, kf["photo"], kf["prompt"], kf["seconds"]],
            views,
            **light,
        )

        def on_select(chosen, evt: gr.SelectData):
            return callbacks.select_keyframe(chosen, evt.index)

        kf["gallery"].select(on_select, [shots], views, **light)
        kf["earlier"].click(
            lambda chosen, index: callbacks.move_keyframe(chosen, index, -1),
            [shots, selected],
            views,
            **light,
        )
        kf["later"].click(
            lambda chosen, index: callbacks.move_keyframe(chosen, index, 1),
            [shots, selected],
            views,
            **light,
        )
        kf["delete"].click(callbacks.delete_keyframe, [shots, selected], views, **light)

        def on_edit(data: dict, request: gr.Request, progress=TRACK_TQDM):
            return callbacks.edit_keyframe(
                models,
                here(request),
                data[model_state],
                data[shots],
                data[selected],
                data[kf["edit_prompt"]],
                data[kf["edit_seed"]],
                data[kf["edit_seconds"]],
                form_values(data),
            )

        kf["apply"].click(
            on_edit,
            state_inputs | {selected, kf["edit_prompt"], kf["edit_seed"], kf["edit_seconds"]},
            views,
            **images,
        )
        result = [kf["video"], kf["sheet"], kf["files"], kf["status"]]

        def on_movie(data: dict, request: gr.Request, progress=TRACK_TQDM):
            return callbacks.render_movie(
                models, here(request), data[model_state], data[shots], form_values(data)
            )

        def on_transition(data: dict, request: gr.Request, progress=TRACK_TQDM):
            return callbacks.render_transition(
                models,
                here(request),
                data[model_state],
                data[shots],
                data[kf["first"]],
                data[kf["last"]],
                form_values(data),
            )

        movie_event = kf["render_movie"].click(on_movie, state_inputs, result, **renders)
        transition_event = kf["render_transition"].click(
            on_transition, state_inputs | {kf["first"], kf["last"]}, result, **renders
        )
        anim_result = [anim["video"], anim["files"], anim["status"]]

        def on_animate(data: dict, request: gr.Request, progress=TRACK_TQDM):
            return callbacks.render_animation(
                models,
                here(request),
                data[model_state],
                form_values(data),
                data[anim["audio"]],
                data[anim["init_video"]],
            )

        anim_event = anim["render"].click(
            on_animate, state_inputs | {anim["audio"], anim["init_video"]}, anim_result, **renders
        )
        running = [movie_event, transition_event, anim_event]

        def on_stop(request: gr.Request):
            return callbacks.stop_renders(here(request))

        for stop, status in ((kf["stop"], kf["status"]), (anim["stop"], anim["status"])):
            stop.click(on_stop, None, [status], cancels=running, **light)

        def on_save_movie(data: dict, request: gr.Request):
            return callbacks.save_movie(
                here(request), data[model_state], data[shots], form_values(data)
            )

        def on_save_animation(data: dict, request: gr.Request):
            return callbacks.save_animation(
                here(request),
                data[model_state],
                form_values(data),
                data[anim["audio"]],
                data[anim["init_video"]],
            )

        sess["save_movie"].click(on_save_movie, state_inputs, sess["download"], **light)
        sess["save_animation"].click(
            on_save_animation,
            state_inputs | {anim["audio"], anim["init_video"]},
            sess["download"],
            **light,
        )

        def on_load_session(data: dict, request: gr.Request, progress=TRACK_TQDM):
            loaded = callbacks.load_session(
                models, here(request), data[model_state], data[sess["upload"]]
            )
            updates: dict = {model_state: loaded.model, sess["status"]: loaded.status()}
            updates.update({form[name]: value for name, value in loaded.form.items()})
            if loaded.kind == "movie":
                updates.update(zip(views, callbacks.keyframe_views(loaded.shots, None)))
            else:
                updates.update({anim["audio"]: loaded.audio, anim["init_video"]: loaded.video})
            return updates

        sess["load"].click(
            on_load_session,
            {model_state, sess["upload"]},
            [
                model_state,
                sess["status"],
                *form.values(),
                *views,
                anim["audio"],
                anim["init_video"],
            ],
            **images,
        )

        def on_unload(request: gr.Request) -> None:
            workspaces.remove(request.session_hash)

        app.unload(on_unload)
    return app


def _model_row(start_model: str, models: ModelCache):
    is_preset = start_model in PRESET_NAMES
    loaded = models.is_loaded(start_model)
    with gr.Row(equal_height=True):
        preset = gr.Dropdown(
            list(PRESET_NAMES),
            value=start_model if is_preset else DEFAULT_MODEL,
            label="Model preset",
            elem_id="model-preset",
        )
        custom = gr.Textbox(
            value="" if is_preset else start_model,
            label="…or a hub id, diffusers folder or .safetensors file",
            placeholder="owner/name, /path/to/model or /path/to/model.safetensors",
            elem_id="model-custom",
        )
        load_button = gr.Button("Load model", elem_id="load-model")
    state = "loaded" if loaded else "loads on first use, or press Load model"
    status = gr.Markdown(f"**Model:** `{start_model}` ({state})", elem_id="model-status")
    return preset, custom, status, load_button


def _blend_settings() -> Form:
    d = forms.BLEND_DEFAULTS
    form: Form = {}
    with gr.Accordion("Settings (all renders; 0 or empty: the model's default)", open=False):
        with gr.Row():
            form["steps"] = gr.Number(d["steps"], label="Steps", precision=0, minimum=0)
            form["width"] = gr.Number(d["width"], label="Width", precision=0, minimum=0)
            form["height"] = gr.Number(d["height"], label="Height", precision=0, minimum=0)
            form["fps"] = gr.Number(d["fps"], label="Frames per second", minimum=1)
            form["guidance_scale"] = gr.Number(d["guidance_scale"], label="Guidance scale")
        with gr.Row():
            form["depth_strength"] = gr.Slider(0, 1, d["depth_strength"], label="Depth strength")
            form["guidance_damper"] = gr.Slider(
                0, 1, d["guidance_damper"], label="Guidance damper (1: constant guidance)"
            )
            form["placement"] = gr.Dropdown(
                list(PLACEMENTS),
                value=d["placement"],
                label="Placement of new branches",
                info="adaptive: in rounds, the gaps that differ most; even: one batch a level "
                "(fewest UNet calls); sequential: one at a time (most)",
            )
            form["compile"] = gr.Dropdown(
                list(COMPILE_MODES),
                value=d["compile"],
                label="Compile the UNet",
                info="auto: CUDA graphs on cuda (about a second per batch size the first time), "
                "else eager; on: also torch.compile elsewhere (minutes); off: eager",
            )
            form["fillers"] = gr.Dropdown(
                list(FILLERS),
                value=d["fillers"],
                label="Filler frames",
                info="flow: both neighbours warped along their optical flow and mixed, so "
                "what moves is shown on its way; crossfade: the pixels mixed",
            )
        with gr.Row():
            form["branch_mode"] = gr.Radio(
                list(forms.BRANCH_MODES), value=d["branch_mode"], label="Branch count by"
            )
            form["branches"] = gr.Number(d["branches"], label="Branches", precision=0, minimum=2)
            form["time_budget"] = gr.Number(d["time_budget"], label="Time budget (s)", minimum=0)
            form["quality"] = gr.Dropdown(list(QUALITIES), value=d["quality"], label="Quality")
            form["plan"] = gr.Textbox(d["plan"], label="Plan (COUNT@STRENGTH …)")
        with gr.Row():
            form["kf_power"] = gr.Slider(0, 1, d["kf_power"], label="Keyframe crossfeed power")
            form["kf_range"] = gr.Slider(0, 1, d["kf_range"], label="… range")
            form["kf_decay"] = gr.Slider(0, 1, d["kf_decay"], label="… decay")
        with gr.Row():
            form["parental_default"] = gr.Checkbox(
                d["parental_default"], label="Parental crossfeed: model default"
            )
            form["p_power"] = gr.Slider(0, 1, d["p_power"], label="Parental crossfeed power")
            form["p_range"] = gr.Slider(0, 1, d["p_range"], label="… range")
            form["p_decay"] = gr.Slider(0, 1, d["p_decay"], label="… decay")
            form["prompt_weighting"] = gr.Checkbox(
                d["prompt_weighting"], label="Prompt weighting ((word)1.2)"
            )
        with gr.Row():
            form["mask"] = gr.Image(
                d["mask"],
                label="Mask: black keeps the first image's pixels in every frame, white may "
                "change, grey partly (any size, stretched to the frame)",
                type="filepath",
                image_mode="L",
                sources=["upload"],
                elem_id="mask",
            )
            form["cn_image"] = gr.Image(
                d["cn_image"],
                label="ControlNet control image (every keyframe and frame)",
                type="filepath",
                sources=["upload"],
                elem_id="control-image",
            )
            with gr.Column():
                form["cn_model"] = gr.Textbox(
                    d["cn_model"],
                    label="ControlNet (hub id or local folder; empty: none)",
                    elem_id="controlnet",
                )
                form["cn_scale"] = gr.Slider(
                    0, MAX_CONTROL_SCALE, d["cn_scale"], label="ControlNet scale"
                )
                form["cn_preprocess"] = gr.Dropdown(
                    list(CONTROL_PREPROCESSORS),
                    value=d["cn_preprocess"],
                    label="Control image preprocessing",
                    info="none: as the ControlNet reads it (depth, pose, edges); canny: its edges",
                )
    return form


def _keyframes_tab(form: Form) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["prompt"] = gr.Textbox(label="Prompt", elem_id="prompt", scale=3)
        form["negative_prompt"] = gr.Textbox(
            forms.MOVIE_DEFAULTS["negative_prompt"], label="Negative prompt (all keyframes)"
        )
    with gr.Row(equal_height=True):
        c["base_seed"] = gr.Number(0, label="Base seed", precision=0, minimum=0)
        c["random"] = gr.Checkbox(True, label="Random seeds")
        c["generate"] = gr.Button("Generate 4 candidates", variant="primary", elem_id="generate")
    c["candidates"] = gr.Gallery(
        label="Candidates (click one, then add it)",
        columns=4,
        allow_preview=False,
        format="png",
        elem_id="candidates",
    )
    with gr.Row(equal_height=True):
        c["seconds"] = gr.Number(
            forms.MOVIE_DEFAULTS["segment_duration"],
            label="Seconds to the next keyframe",
            minimum=0,
            elem_id="seconds",
        )
        c["add"] = gr.Button("Add to movie", elem_id="add-keyframe")
    with gr.Accordion("A keyframe from an image", open=False), gr.Row(equal_height=True):
        c["photo"] = gr.Image(
            label="Image (the movie passes through it; the prompt above, which may be empty, "
            "guides the way to and from it)",
            type="filepath",
            sources=["upload"],
            elem_id="photo",
            scale=2,
        )
        c["add_photo"] = gr.Button("Add image to movie", elem_id="add-photo")
    c["gallery"] = gr.Gallery(
        label="Movie keyframes (click one to move, delete or edit it)",
        columns=6,
        allow_preview=False,
        format="png",
        elem_id="keyframes",
    )
    with gr.Row(equal_height=True):
        c["earlier"] = gr.Button("◀ Earlier", size="sm")
        c["later"] = gr.Button("Later ▶", size="sm")
        c["delete"] = gr.Button("Delete", size="sm", variant="stop")
    with gr.Accordion("Edit the selected keyframe", open=False), gr.Row(equal_height=True):
        c["edit_prompt"] = gr.Textbox(label="Prompt", scale=3)
        c["edit_seed"] = gr.Number(None, label="Seed", precision=0, minimum=0)
        c["edit_seconds"] = gr.Number(3.0, label="Seconds to the next keyframe", minimum=0)
        c["apply"] = gr.Button("Apply")
    with gr.Row(equal_height=True):
        c["first"] = gr.Dropdown([], label="Transition from", type="value")
        c["last"] = gr.Dropdown([], label="to", type="value")
        form["segment_duration"] = gr.Number(
            forms.MOVIE_DEFAULTS["segment_duration"], label="Default seconds per segment", minimum=0
        )
    with gr.Row():
        c["render_transition"] = gr.Button("Render transition", elem_id="render-transition")
        c["render_movie"] = gr.Button("Render movie", variant="primary", elem_id="render-movie")
        c["stop"] = gr.Button("Stop", variant="stop", elem_id="stop")
    c["status"] = gr.Markdown(elem_id="render-status")
    with gr.Row():
        c["video"] = gr.Video(label="Result", interactive=False, elem_id="result")
        c["sheet"] = gr.Image(
            label="Sheet: the computed images, the distance of every gap, the tree",
            type="filepath",
            interactive=False,
            elem_id="sheet",
            scale=2,
        )
    c["files"] = gr.File(label="Movie and project file", file_count="multiple", interactive=False)
    return c


def _animate_tab(form: Form) -> dict[str, Any]:
    d = forms.ANIMATION_DEFAULTS
    c: dict[str, Any] = {}

    def put(name: str, component: gr.components.Component) -> None:
        form[name] = component

    put("a_prompts", gr.Textbox(d["a_prompts"], label="Prompt schedule (FRAME: prompt)", lines=4))
    with gr.Row():
        put("a_negative_prompt", gr.Textbox(d["a_negative_prompt"], label="Negative prompt"))
        put("a_mode", gr.Dropdown(list(ANIMATION_MODES), value=d["a_mode"], label="Mode"))
        put("a_seed", gr.Number(d["a_seed"], label="Seed (empty: random)", precision=0, minimum=0))
        put("a_duration", gr.Number(d["a_duration"], label="Duration (s; empty: from schedule)"))
    with gr.Accordion("Parameter schedules (`0:(1.0), 30:(1.05)` or a number)", open=False):
        with gr.Row():
            put("a_guidance", gr.Textbox(d["a_guidance"], label="Guidance scale"))
            put("a_strength", gr.Textbox(d["a_strength"], label="Strength"))
        with gr.Row():
            put("a_zoom", gr.Textbox(d["a_zoom"], label="Zoom"))
            put("a_angle", gr.Textbox(d["a_angle"], label="Angle"))
            put("a_tx", gr.Textbox(d["a_tx"], label="Translation x"))
            put("a_ty", gr.Textbox(d["a_ty"], label="Translation y"))
            put("a_border", gr.Dropdown(list(BORDER_MODES), value=d["a_border"], label="Border"))
    with gr.Accordion("Curves and coherence", open=False):
        with gr.Row():
            put("a_curve", gr.Dropdown(list(CURVES), value=d["a_curve"], label="Curve"))
            put("a_frequencies", gr.Textbox(d["a_frequencies"], label="Sine frequencies"))
            put("a_curve_points", gr.Textbox(d["a_curve_points"], label="Curve points"))
            put("a_fixed_noise", gr.Checkbox(d["a_fixed_noise"], label="Fixed noise"))
            put("a_colour_match", gr.Checkbox(d["a_colour_match"], label="Colour match"))
        with gr.Row():
            put("a_coh_scale", gr.Slider(0, 1, d["a_coh_scale"], label="Coherence scale"))
            put("a_coh_alpha", gr.Slider(0, 1, d["a_coh_alpha"], label="Coherence alpha"))
            put("a_coh_steps", gr.Number(d["a_coh_steps"], label="Coherence steps", precision=0))
            put("a_coh_noise", gr.Number(d["a_coh_noise"], label="Coherence noise", minimum=0))
    with gr.Accordion("Audio and video inputs", open=False):
        with gr.Row():
            c["audio"] = gr.Audio(type="filepath", label="Audio", sources=["upload"])
            c["init_video"] = gr.Video(label="Init video", sources=["upload"])
        audio_choices = [forms.NO_AUDIO_COMPONENT, *AUDIO_COMPONENTS]
        with gr.Row():
            put(
                "a_audio_keyframes",
                gr.Dropdown(audio_choices, value=d["a_audio_keyframes"], label="Keyframes from"),
            )
            put(
                "a_audio_timing",
                gr.Dropdown(audio_choices, value=d["a_audio_timing"], label="Timing from"),
            )
            put(
                "a_audio_reduce",
                gr.Dropdown(list(AUDIO_REDUCTIONS), value=d["a_audio_reduce"], label="Reduce"),
            )
    with gr.Row():
        c["render"] = gr.Button("Render animation", variant="primary", elem_id="render-animation")
        c["stop"] = gr.Button("Stop", variant="stop")
    c["status"] = gr.Markdown()
    c["video"] = gr.Video(label="Animation", interactive=False, elem_id="animation-result")
    c["files"] = gr.File(label="Animation and project file", file_count="multiple")
    return c


def _session_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    gr.Markdown(
        "Save the keyframes or the animation with all settings as a project file, or load one "
        "(also files written by the `latentmorph` command line)."
    )
    with gr.Row():
        c["save_movie"] = gr.Button("Save keyframes project")
        c["save_animation"] = gr.Button("Save animation project")
    c["download"] = gr.File(label="Project file", interactive=False)
    c["upload"] = gr.File(
        label="Project file to load", file_types=[".yaml", ".yml"], elem_id="project-upload"
    )
    c["load"] = gr.Button("Load project", elem_id="load-project")
    c["status"] = gr.Markdown(elem_id="session-status")
    return c


def launch(
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    device: str | None = None,
    dtype: str | None = None,
    offload: bool = False,
    block: bool = True,
    serve: Callable[..., Any] | None = None,
) -> gr.Blocks:
    """Serves the UI on `host`:`port` (this machine only by default), with `model` loaded first.

    A public share link is made only with `share`. With `block` False it returns once serving.
    `offload` loads models with model CPU offload (see `load_pipeline`). The sessions' folders
    are removed when serving ends (with `block` False: at exit).
    """
    models = ModelCache(device, dtype, offload=offload)
    if model:
        models.get(model)
    workspaces = Workspaces()
    app = build_app(model, device, dtype, models=models, workspaces=workspaces)
    app.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    try:
        (serve or app.launch)(
            server_name=host,
            server_port=port,
            share=share,
            prevent_thread_lock=not block,
            inbrowser=False,
            show_error=False,
            ssr_mode=False,
            mcp_server=False,
            pwa=False,
            enable_monitoring=False,
            max_file_size=MAX_UPLOAD,
            app_kwargs={"middleware": MIDDLEWARE},
        )
    finally:
        if block:  # stopped (Ctrl-C, SIGTERM) or failed: close and clean up now
            app.close()
            workspaces.remove_all()
    return app
