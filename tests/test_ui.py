"""The web UI's callbacks, offline with the tiny SDXL pipeline built in code."""

import re
import shutil
import socket
import tempfile
import types
import urllib.request
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import yaml
from imageio_ffmpeg import count_frames_and_secs, read_frames
from PIL import Image

from latentmorph.cli import main
from latentmorph.errors import InputError, LatentmorphError
from latentmorph.project import Keyframe, Project
from latentmorph.render import MovieRenderer
from latentmorph.ui import callbacks, forms, rendering, workspace
from latentmorph.ui.app import build_app, launch
from latentmorph.ui.keyframes import Shot
from latentmorph.ui.models import NOT_LOADABLE, PRESET_NAMES, ModelCache

from .test_controlnet import tiny_controlnet

MODEL = "tiny-sdxl"
KEPT = 24
"""Columns on the left that the test mask keeps (black)."""


@pytest.fixture(scope="module")
def models():
    cache = ModelCache()
    cache.get(MODEL)
    return cache


@pytest.fixture(scope="module")
def controlnet(models, tmp_path_factory):
    """A folder holding a ControlNet of the tiny SDXL pipeline that changes its images."""
    folder = tmp_path_factory.mktemp("controlnet")
    tiny_controlnet(types.SimpleNamespace(unet=models.get(MODEL).denoiser)).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def session():
    path = workspace.new_workspace()
    yield path
    workspace.remove_workspace(path)


@pytest.fixture
def form():
    values = {**forms.BLEND_DEFAULTS, **forms.MOVIE_DEFAULTS, **forms.ANIMATION_DEFAULTS}
    values.update(fps=8.0, segment_duration=1.0, branches=4)
    return values


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _video_frames(path) -> list[np.ndarray]:
    frames = read_frames(str(path))
    width, height = next(frames)["size"]
    return [np.frombuffer(f, np.uint8).reshape(height, width, 3).astype(float) for f in frames]


def _draw_mask(path: Path) -> str:
    """A 64×64 mask keeping the left KEPT columns."""
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (0, 0, KEPT, 64))
    mask.save(path)
    return str(path)


def _draw_pattern(path: Path, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return str(path)


def _shots(models, session, form, prompts=("a red circle", "a blue square", "a green moon")):
    """One keyframe per prompt, each the first candidate of base seed 10·i."""
    shots: list[Shot] = []
    for i, prompt in enumerate(prompts):
        candidates, _, picked = callbacks.generate_candidates(
            models, session, MODEL, prompt, 10 * i, False, form
        )
        shots = callbacks.add_keyframe(shots, candidates, picked, 1.0)[0]
    return shots


def test_model_loads_and_says_its_defaults(models):
    name, status = callbacks.load_model(models, "tiny-sdxl", "  ", "demo")
    assert name == "tiny-sdxl"
    assert "64×64" in status and "8 steps" in status


@pytest.mark.parametrize(
    "custom",
    ["nobody/no-such-model", "/srv/weights.ckpt", "not a model", "/etc", "/root/.ssh", "/nope"],
)
def test_model_failure_is_one_message_and_keeps_the_current_model(models, custom):
    words = "cannot be loaded: give a preset (sdxl-turbo, "
    with pytest.warns(UserWarning, match=re.escape(f"model {custom!r} {words}")):
        name, status = callbacks.load_model(models, "demo", custom, "tiny-sdxl")
    assert name == "tiny-sdxl"
    assert status == f"**Model not loaded:** model {custom!r} " + NOT_LOADABLE.format(
        presets=", ".join(PRESET_NAMES)
    )


def test_candidates_are_four_distinct_images_repeatable_by_base_seed(models, session, form):
    first, gallery, picked = callbacks.generate_candidates(
        models, session, MODEL, "a lighthouse", 41, False, form
    )
    again, _, _ = callbacks.generate_candidates(
        models, session, MODEL, "a lighthouse", 41, False, form
    )
    assert picked == 0 and len(first) == 4 and len(gallery) == 4
    assert [c.seed for c in first] == [41, 42, 43, 44]
    assert [caption for _, caption in gallery] == ["seed 41", "seed 42", "seed 43", "seed 44"]
    images = [_pixels(c.image) for c in first]
    assert images[0].shape == (64, 64, 3)
    assert all(not np.array_equal(images[i], images[j]) for i in range(4) for j in range(i))
    for shot, image in zip(again, images):
        assert np.array_equal(_pixels(shot.image), image)
        assert Path(shot.image).parent == Path(session)


def test_random_candidates_have_different_seeds(models, session, form):
    candidates, _, _ = callbacks.generate_candidates(
        models, session, MODEL, "a lighthouse", 0, True, form
    )
    assert len({c.seed for c in candidates}) == 4


def test_candidates_need_a_prompt(models, session, form):
    with pytest.raises(gr.Error, match="prompt: missing"):
        callbacks.generate_candidates(models, session, MODEL, "  ", 1, False, form)


def test_keyframes_are_added_moved_deleted_and_edited(models, session, form):
    shots = _shots(models, session, form)
    assert [s.prompt for s in shots] == ["a red circle", "a blue square", "a green moon"]
    assert [s.seed for s in shots] == [0, 10, 20]

    views = callbacks.move_keyframe(shots, 2, -1)
    moved, gallery, first, last, selected = views[:5]
    assert [s.seed for s in moved] == [0, 20, 10] and selected == 1
    assert gallery[1][1] == "2. a green moon (seed 20, 1 s)"
    assert gallery[2][1] == "3. a blue square (seed 10)"
    assert first["value"] == 0 and last["value"] == 2 and len(first["choices"]) == 3
    assert [s.seed for s in callbacks.move_keyframe(moved, 0, -1)[0]] == [0, 20, 10]

    remaining = callbacks.delete_keyframe(moved, 0)[0]
    assert [s.seed for s in remaining] == [20, 10]

    edited, *_, prompt, seed, seconds = callbacks.edit_keyframe(
        models, session, MODEL, remaining, 1, "a blue triangle", 77, 2.5, form
    )
    assert (prompt, seed, seconds) == ("a blue triangle", 77, 2.5)
    assert edited[1].prompt == "a blue triangle" and edited[1].duration == 2.5
    assert not np.array_equal(_pixels(edited[1].image), _pixels(remaining[1].image))
    expected = callbacks.generate_candidates(
        models, session, MODEL, "a blue triangle", 77, False, form
    )[0][0]
    assert np.array_equal(_pixels(edited[1].image), _pixels(expected.image))
    assert edited[0] == remaining[0]


def test_keyframe_actions_without_selection_say_what_to_do(models, session, form):
    with pytest.raises(gr.Error, match="no keyframe selected"):
        callbacks.delete_keyframe([], None)
    with pytest.raises(gr.Error, match="no candidates yet"):
        callbacks.add_keyframe([], [], 0, 1.0)
    with pytest.raises(gr.Error, match="add at least 2"):
        callbacks.render_movie(models, session, MODEL, [], form)


def test_transition_renders_to_a_playable_mp4_with_its_project_file(models, session, form):
    shots = _shots(models, session, form)
    form.update(fps=12.0)
    video, sheet, files, status = callbacks.render_transition(
        models, session, MODEL, shots, 2, 0, form
    )
    assert video.endswith(".mp4") and Path(video).parent == Path(session)
    assert sheet.endswith(".png") and Path(sheet).parent == Path(session)
    assert Image.open(sheet).format == "PNG"
    assert count_frames_and_secs(video)[0] == round(1.0 * 12)
    assert files == [video, str(Path(video).with_suffix(".yaml"))]
    project = yaml.safe_load(Path(files[1]).read_text())
    assert [k["prompt"] for k in project["keyframes"]] == ["a green moon", "a red circle"]
    assert [k["seed"] for k in project["keyframes"]] == [20, 0]
    assert "12 frames" in status
    again = callbacks.render_transition(models, session, MODEL, shots, 2, 0, form)[0]
    assert again != video and Path(video).is_file()


def test_movie_through_three_keyframes(models, session, form):
    shots = _shots(models, session, form)
    shots = callbacks.edit_keyframe(models, session, MODEL, shots, 0, shots[0].prompt, 0, 2, form)[
        0
    ]
    video, sheet, files, _ = callbacks.render_movie(models, session, MODEL, shots, form)
    assert count_frames_and_secs(video)[0] == round((2.0 + 1.0) * 8)
    assert Path(sheet).is_file()
    project = yaml.safe_load(Path(files[1]).read_text())
    assert [k["seed"] for k in project["keyframes"]] == [0, 10, 20]
    assert [k.get("duration") for k in project["keyframes"]] == [2.0, 1.0, None]


def test_a_stopped_render_raises(models, session, form):
    project = callbacks.movie_project(MODEL, _shots(models, session, form)[:2], form)
    with pytest.raises(rendering.RenderStopped):
        rendering.render_movie(project, models.get(MODEL), Path(session) / "s.mp4", lambda: True)
    token = workspace.stop_token(session)
    assert not workspace.stop_requested(session, token)
    callbacks.stop_renders(session)
    assert workspace.stop_requested(session, token)


@pytest.mark.parametrize("mode", ["blend", "walk"])
def test_a_stopped_animation_stops_at_its_first_unet_step(models, session, mode):
    from latentmorph.animation.schedules import PromptKeyframe
    from latentmorph.animation.settings import Animation

    anim = Animation(
        prompts=[PromptKeyframe(0, "a calm lake"), PromptKeyframe(6, "a stormy sea")],
        model=MODEL,
        fps=8.0,
        duration=1.0,
        mode=mode,
    )
    asked = []

    def stop() -> bool:
        asked.append(True)
        return True

    renderer = rendering._StoppableAnimation(anim, models.get(MODEL), stop)
    with pytest.raises(rendering.RenderStopped):
        renderer.write(Path(session) / "a.mp4")
    assert len(asked) == 1 and renderer.stats.unet_calls == 0
    assert not (Path(session) / "a.mp4").exists()


def test_movie_project_saves_and_loads_with_the_same_images(models, session, form):
    shots = _shots(models, session, form, ("dawn", "dusk"))
    form.update(depth_strength=0.35, kf_power=0.2, kf_range=0.5, negative_prompt="blurry")
    saved = callbacks.save_movie(session, MODEL, shots, form)
    other = workspace.new_workspace()
    try:
        loaded = callbacks.load_session(models, other, "demo", saved)
        assert loaded.kind == "movie" and loaded.model == MODEL
        assert [(s.prompt, s.seed, s.duration) for s in loaded.shots] == [
            (s.prompt, s.seed, s.duration) for s in shots
        ]
        for before, after in zip(shots, loaded.shots):
            assert Path(after.image).parent == Path(other)
            assert np.array_equal(_pixels(before.image), _pixels(after.image))
        assert loaded.form["depth_strength"] == 0.35 and loaded.form["branches"] == 4
        assert (loaded.form["kf_power"], loaded.form["kf_range"]) == (0.2, 0.5)
        assert loaded.form["negative_prompt"] == "blurry" and loaded.form["fps"] == 8.0
    finally:
        workspace.remove_workspace(other)


def test_a_project_file_from_the_command_line_loads_and_renders_again(
    models, session, form, tmp_path, capsys
):
    out = tmp_path / "cli.mp4"
    argv = ["transition", "a red circle", "a blue square", "-o", str(out), "--model", MODEL]
    argv += ["--quiet", "--duration", "1", "--fps", "8", "--seeds", "3", "4", "--branches", "3"]
    assert main(argv) == 0
    loaded = callbacks.load_session(models, session, "demo", str(tmp_path / "cli.yaml"))
    assert [(s.prompt, s.seed) for s in loaded.shots] == [("a red circle", 3), ("a blue square", 4)]
    assert loaded.form["branch_mode"] == "plan" and loaded.form["plan"]
    form.update(loaded.form)
    video, _, _, status = callbacks.render_movie(models, session, loaded.model, loaded.shots, form)
    assert count_frames_and_secs(video)[0] == 8
    assert "3 images" in status


def test_animation_renders_and_round_trips(models, session, form):
    form.update(a_prompts="0: a calm lake\n6: a stormy sea", a_duration=1.0, a_seed=5)
    form.update(a_zoom="0:(1.0), 7:(1.1)", a_mode="walk")
    video, files, _ = callbacks.render_animation(models, session, MODEL, form)
    assert count_frames_and_secs(video)[0] == 8
    recorded = yaml.safe_load(Path(files[1]).read_text())
    assert recorded["kind"] == "animation" and recorded["seed"] == 5
    saved = callbacks.save_animation(session, MODEL, form)
    loaded = callbacks.load_session(models, session, MODEL, saved)
    assert loaded.kind == "animation" and loaded.shots == []
    assert loaded.form["a_prompts"] == "0: a calm lake\n6: a stormy sea\n"
    assert loaded.form["a_zoom"] == "0:(1.0), 7:(1.1)" and loaded.form["a_mode"] == "walk"
    assert loaded.form["fps"] == 8.0 and loaded.form["a_seed"] == 5


def test_animation_errors_are_one_line_messages(models, session, form):
    form.update(a_prompts="10: late\n5: early")
    with pytest.raises(gr.Error) as caught:
        callbacks.render_animation(models, session, MODEL, form)
    assert "\n" not in caught.value.message and "a_prompts" not in caught.value.message


def test_sessions_get_distinct_private_folders(tmp_path):
    first, second = workspace.new_workspace(), workspace.new_workspace()
    try:
        assert first != second
        assert Path(first).parent == Path(tempfile.gettempdir())
        assert Path(first).stat().st_mode & 0o077 == 0
        upload = tmp_path / "song.wav"
        upload.write_bytes(b"RIFF")
        copied = workspace.import_upload(first, str(upload))
        assert Path(copied).parent == Path(first) and copied.endswith(".wav")
        names = {workspace.unique_path(first, "movie", ".mp4") for _ in range(50)}
        assert len(names) == 50
    finally:
        workspace.remove_workspace(first)
        workspace.remove_workspace(second)
    assert not Path(first).exists()
    workspace.remove_workspace(str(tmp_path))
    assert tmp_path.exists()


def test_build_app_makes_no_folder_and_no_public_endpoint():
    before = set(Path(tempfile.gettempdir()).glob(f"{workspace.PREFIX}*"))
    app = build_app(MODEL)
    assert isinstance(app, gr.Blocks)
    assert set(Path(tempfile.gettempdir()).glob(f"{workspace.PREFIX}*")) == before
    states = [b for b in app.blocks.values() if isinstance(b, gr.State)]
    assert not any(callable(s.value) for s in states)
    assert all(fn.api_visibility == "private" for fn in app.fns.values())


def test_renders_queue_apart_from_candidates_and_page_actions():
    fns = {f.name: f for f in build_app(MODEL).fns.values()}
    for name in ("on_movie", "on_transition", "on_animate"):
        assert (fns[name].concurrency_id, fns[name].concurrency_limit) == ("render", 1)
    for name in ("on_candidates", "on_edit"):
        assert fns[name].concurrency_id == "images"
    for name in ("add_keyframe", "delete_keyframe", "on_select", "on_stop", "on_save_movie"):
        assert fns[name].concurrency_id != "render" and fns[name].concurrency_limit is None
    cancels = [f for f in fns.values() if f.name is None]
    assert cancels and all(len(f.cancels) == 3 for f in cancels)


def test_launch_binds_this_machine_only_unless_asked():
    calls = []
    launch(serve=lambda **kwargs: calls.append(kwargs))
    launch(host="0.0.0.0", port=9000, share=True, serve=lambda **kwargs: calls.append(kwargs))
    assert (calls[0]["server_name"], calls[0]["server_port"], calls[0]["share"]) == (
        "127.0.0.1",
        7860,
        False,
    )
    assert (calls[1]["server_name"], calls[1]["server_port"], calls[1]["share"]) == (
        "0.0.0.0",
        9000,
        True,
    )


def test_launch_loads_the_model_first_and_fails_with_its_message():
    with pytest.raises(LatentmorphError, match="pickle"):
        launch(model="/tmp/weights.pt", serve=lambda **kwargs: None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serves_on_loopback_without_reaching_out(monkeypatch):
    reached = []
    connect = socket.socket.connect

    def guarded(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            reached.append(address)
            raise OSError("network is off in this test")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    port = _free_port()
    app = launch(model=MODEL, port=port, block=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"latentmorph" in page.read()
    finally:
        app.close()
    assert reached == []


def test_project_keyframes_give_the_movie_keyframes(models, session, form):
    shots = _shots(models, session, form, ("x", "y"))
    project = callbacks.movie_project(MODEL, shots, form)
    assert project.keyframes == [Keyframe("x", 0, 1.0), Keyframe("y", 10, 1.0)]
    assert isinstance(project, Project) and project.settings.branches == 4


def test_the_placement_field_reaches_the_settings_and_the_project_file(models, session, form):
    assert forms.blend_settings(form).placement == "adaptive"
    form.update(placement="sequential")
    assert forms.blend_settings(form).placement == "sequential"
    assert forms.blend_form(forms.blend_settings(form))["placement"] == "sequential"
    shots = _shots(models, session, form, ("x", "y"))
    assert callbacks.movie_project(MODEL, shots, form).settings.placement == "sequential"
    assert forms.animation(form, MODEL).blend.placement == "sequential"
    _, _, files, _ = callbacks.render_transition(models, session, MODEL, shots, 0, 1, form)
    assert yaml.safe_load(Path(files[1]).read_text())["settings"]["placement"] == "sequential"
    loaded = callbacks.load_session(models, session, "demo", files[1])
    assert loaded.form["placement"] == "sequential"
    form.update(placement="everywhere")
    with pytest.raises(gr.Error, match="placement: 'everywhere' is not allowed"):
        callbacks.render_movie(models, session, MODEL, shots, form)


def test_the_settings_panel_offers_the_placements():
    app = build_app(MODEL)
    try:
        (field,) = [
            block
            for block in app.blocks.values()
            if getattr(block, "label", None) == "Placement of new branches"
        ]
        assert [value for _, value in field.choices] == ["adaptive", "even", "sequential"]
        assert field.value == "adaptive"
    finally:
        app.close()


def test_an_uploaded_image_is_a_keyframe_of_the_movie(models, session, form, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (80, 64), (200, 40, 40)).save(photo)
    shots = _shots(models, session, form, ("a blue square",))
    shots = callbacks.add_image_keyframe(session, shots, str(photo), "a red wall", 1.0)[0]
    kept = shots[1].photo
    assert Path(kept).parent == Path(session) and shots[1].prompt == "a red wall"
    assert Path(kept).read_bytes() == photo.read_bytes()
    assert re.fullmatch(
        r"2\. image photo-[0-9a-f]{16}\.png: a red wall",
        callbacks.keyframe_views(shots, None)[2]["choices"][1][0],
    )
    video, _, files, status = callbacks.render_transition(models, session, MODEL, shots, 0, 1, form)
    assert count_frames_and_secs(video)[0] == 8
    assert "keyframe image PSNR 2: " in status
    project = yaml.safe_load(Path(files[1]).read_text())
    assert project["keyframes"][1]["image"] == kept and "psnr" in project["keyframes"][1]
    saved = callbacks.save_movie(session, MODEL, shots, form)
    loaded = callbacks.load_session(models, session, MODEL, saved)
    assert [s.photo for s in loaded.shots] == [None, kept]


def test_an_image_keyframe_needs_an_upload_that_is_an_image(tmp_path):
    with pytest.raises(gr.Error, match="no image yet; upload one first"):
        callbacks.add_image_keyframe(str(tmp_path), [], None, "", 1.0)
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(gr.Error, match="image: .*x.png is not an image that can be read"):
        callbacks.add_image_keyframe(str(tmp_path), [], str(tmp_path / "x.png"), "", 1.0)


def test_the_mask_upload_reaches_the_render_and_the_project_file(models, session, form, tmp_path):
    form.update(mask=_draw_mask(tmp_path / "mask.png"), fps=6.0)
    shots = _shots(models, session, form, ("a red circle", "a blue square"))
    video, _, files, _ = callbacks.render_transition(models, session, MODEL, shots, 0, 1, form)
    frames = _video_frames(video)
    assert len(frames) == 6
    # the kept columns stay as in the first frame (up to H.264's error; away from the edge,
    # which the codec's blocks blur); the others change
    kept = [np.abs(f[:, : KEPT - 8] - frames[0][:, : KEPT - 8]).mean() for f in frames]
    free = np.abs(frames[-1][:, KEPT + 8 :] - frames[0][:, KEPT + 8 :]).mean()
    assert max(kept) < 1.5 and free > 10
    recorded = yaml.safe_load(Path(files[1]).read_text())["settings"]
    assert Path(recorded["mask"]).parent == Path(session)
    assert Path(recorded["mask"]).read_bytes() == (tmp_path / "mask.png").read_bytes()
    assert (
        callbacks.session_animation(session, MODEL, form, None, None).blend.mask
        == (recorded["mask"])
    )
    assert callbacks.load_session(models, session, MODEL, files[1]).form["mask"] == recorded["mask"]


def test_the_controlnet_fields_give_one_controlnet_and_come_back(form, tmp_path):
    assert forms.blend_settings(form).controlnet == ()
    Image.new("RGB", (64, 64)).save(tmp_path / "edges.png")
    form.update(cn_model="some/controlnet", cn_image=str(tmp_path / "edges.png"), cn_scale=0.5)
    form.update(cn_preprocess="canny")
    (net,) = forms.blend_settings(form).controlnet
    assert (net.model, net.images, net.scale, net.preprocess) == (
        "some/controlnet",
        (str(tmp_path / "edges.png"),),
        0.5,
        "canny",
    )
    shown = forms.blend_form(forms.blend_settings(form))
    assert [shown[k] for k in ("cn_model", "cn_image", "cn_scale", "cn_preprocess")] == [
        "some/controlnet",
        str(tmp_path / "edges.png"),
        0.5,
        "canny",
    ]
    form.update(cn_image=None)
    with pytest.raises(InputError, match="ControlNet: no control image; upload one"):
        forms.blend_settings(form)


def test_a_project_without_controlnet_or_mask_clears_the_previous_ones(
    models, session, form, tmp_path
):
    form.update(cn_model="some/controlnet", cn_image=_draw_pattern(tmp_path / "control.png"))
    form.update(cn_scale=0.5, cn_preprocess="canny", mask=_draw_mask(tmp_path / "mask.png"))
    project = Project([Keyframe("dawn", 1), Keyframe("dusk", 2)], MODEL, fps=8.0, duration=1.0)
    loaded = callbacks.load_session(models, session, MODEL, str(project.save(tmp_path / "p.yaml")))
    fields = ("cn_model", "cn_image", "cn_scale", "cn_preprocess", "mask")
    assert [loaded.form[name] for name in fields] == ["", None, 1.0, "none", None]
    form.update(loaded.form)
    settings = forms.blend_settings(form)
    assert settings.controlnet == () and settings.mask is None


def test_uploads_are_copied_into_the_session_folder_before_they_are_used(
    models, session, form, tmp_path, controlnet
):
    cache = tmp_path / "gradio-cache"
    cache.mkdir()
    form.update(mask=_draw_mask(cache / "mask.png"), cn_model=controlnet, cn_scale=0.5)
    form.update(cn_image=_draw_pattern(cache / "control.png"))
    shots = _shots(models, session, form, ("a red circle",))
    shots = callbacks.add_image_keyframe(
        session, shots, _draw_pattern(cache / "photo.png", seed=1), "", 1.0
    )[0]
    saved = callbacks.save_movie(session, MODEL, shots, form)
    uploads = {path.name: path.read_bytes() for path in cache.iterdir()}
    shutil.rmtree(cache)  # as gradio clears its cache
    recorded = yaml.safe_load(Path(saved).read_text())
    paths = {
        "mask.png": recorded["settings"]["mask"],
        "control.png": recorded["settings"]["controlnet"][0]["images"][0],
        "photo.png": recorded["keyframes"][1]["image"],
    }
    for name, path in paths.items():
        assert Path(path).parent == Path(session) and Path(path).read_bytes() == uploads[name]
    loaded = callbacks.load_session(models, session, MODEL, saved)
    form.update(loaded.form)
    video, _, files, _ = callbacks.render_movie(models, session, MODEL, loaded.shots, form)
    assert count_frames_and_secs(video)[0] == 8
    rendered = yaml.safe_load(Path(files[1]).read_text())
    assert rendered["settings"]["mask"] == paths["mask.png"]
    assert rendered["settings"]["controlnet"][0]["images"] == [paths["control.png"]]


def test_candidates_are_made_without_the_mask(models, session, form, tmp_path):
    plain = callbacks.generate_candidates(models, session, MODEL, "a lighthouse", 5, False, form)
    form.update(mask=_draw_mask(tmp_path / "mask.png"))
    masked = callbacks.generate_candidates(models, session, MODEL, "a lighthouse", 5, False, form)
    for shot, again in zip(plain[0], masked[0], strict=True):
        assert np.array_equal(_pixels(shot.image), _pixels(again.image))


def test_candidates_leave_the_controlnet_of_a_running_render_alone(
    models, session, form, tmp_path, controlnet
):
    model = models.get(MODEL)
    plain = callbacks.generate_candidates(models, session, MODEL, "a lighthouse", 5, False, form)
    form.update(cn_model=controlnet, cn_image=_draw_pattern(tmp_path / "control.png"))
    project = callbacks.movie_project(MODEL, plain[0][:2], form)
    MovieRenderer(project, model, progress=False)  # a render's ControlNet, as it starts
    in_use = model.control
    assert in_use is not None
    form.update(cn_model="")
    again = callbacks.generate_candidates(models, session, MODEL, "a lighthouse", 5, False, form)
    assert model.control is in_use
    for shot, same in zip(plain[0], again[0], strict=True):
        assert np.array_equal(_pixels(shot.image), _pixels(same.image))
