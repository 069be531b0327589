"""ControlNet guidance: equal to diffusers' ControlNet pipelines, batched, blended, several at
once, canny preprocessing, recorded in project files, and one-line errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from diffusers import (
    ControlNetModel,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLControlNetPipeline,
)
from PIL import Image

from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.control_inputs import ControlImages, canny_edges, control_specs
from latentmorph.errors import InputError, ModelLoadError
from latentmorph.models.loading import adapter_for
from latentmorph.models.presets import TINY_DEFAULTS
from latentmorph.models.tiny import tiny_sd_pipeline, tiny_sdxl_pipeline
from latentmorph.transition import Transition

from .command_line import run_cli

STEPS = 4
PIPELINES = {"sd": tiny_sd_pipeline, "sdxl": tiny_sdxl_pipeline}
CONTROL_PIPELINES = {
    "sd": StableDiffusionControlNetPipeline,
    "sdxl": StableDiffusionXLControlNetPipeline,
}


def tiny_controlnet(pipe, seed: int = 1, guess_mode: bool = False) -> ControlNetModel:
    """A ControlNet of the tiny pipeline's UNet whose zero convolutions are random, so that it
    changes the images (a fresh one adds nothing)."""
    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=(16, 32))
    if guess_mode:
        net.register_to_config(global_pool_conditions=True)
    outputs = [net.controlnet_down_blocks, net.controlnet_mid_block]
    with torch.no_grad():
        for module in [*outputs, net.controlnet_cond_embedding.conv_out]:
            for p in module.parameters():
                p.normal_(0, 0.3)
    return net


def _pattern(seed: int, size=(64, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))


def _square(size=(96, 80)) -> Image.Image:
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[20:60, 30:70] = 255
    return Image.fromarray(pixels)


@pytest.fixture(scope="module", params=["sd", "sdxl"])
def family(request):
    """(family, adapter, its pipeline) with a fresh adapter per family."""
    pipe = PIPELINES[request.param]()
    return request.param, adapter_for(pipe, TINY_DEFAULTS, f"tiny-{request.param}"), pipe


def _keyframes(model, nets, scales, images, prompts, seeds, guidance):
    """Keyframe images with each keyframe's control images (`images[k]`: one per ControlNet)."""
    model.control = None
    if nets:
        from latentmorph.models.control import ControlNets

        model.control = ControlNets(nets, scales)
    settings, _ = BlendSettings(steps=STEPS, guidance_scale=guidance).resolve(model)
    engine = BlendingEngine(model, settings, distance=lambda a, b: [0.0] * len(a))
    conds = engine.encode(prompts)
    if nets:
        conds = [model.with_control(c, [[i] for i in imgs]) for c, imgs in zip(conds, images)]
    try:
        return [np.asarray(kf.image, dtype=np.float64) for kf in engine.keyframes(conds, seeds)]
    finally:
        model.control = None


def _pipeline_image(family_name, pipe, nets, scales, images, prompt, seed, guidance):
    """The image diffusers' ControlNet pipeline makes for a prompt, seed and control images."""
    extra = {"add_watermarker": False} if family_name == "sdxl" else {"safety_checker": None}
    if family_name == "sd":
        extra.update(feature_extractor=None, requires_safety_checker=False)
    components = {
        k: v for k, v in pipe.components.items() if k not in ("safety_checker", "feature_extractor")
    }
    controlnet = nets[0] if len(nets) == 1 else nets
    control_pipe = CONTROL_PIPELINES[family_name](**components, controlnet=controlnet, **extra)
    control_pipe.set_progress_bar_config(disable=True)
    out = control_pipe(
        prompt,
        image=images[0] if len(nets) == 1 else images,
        controlnet_conditioning_scale=scales[0] if len(nets) == 1 else scales,
        num_inference_steps=STEPS,
        guidance_scale=guidance,
        height=64,
        width=64,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    )
    return np.rint(out.images[0] * 255)


@pytest.mark.parametrize("guidance", [0.0, 5.0])
def test_keyframes_equal_the_controlnet_pipelines_images_and_differ_without(family, guidance):
    name, model, pipe = family
    net = tiny_controlnet(pipe)
    images = [[_pattern(1)], [_pattern(2)]]
    prompts, seeds = ["a red circle", "a blue square"], [3, 4]
    got = _keyframes(model, [net], [0.8], images, prompts, seeds, guidance)
    plain = _keyframes(model, [], [], images, prompts, seeds, guidance)
    for k in range(2):
        expected = _pipeline_image(
            name, pipe, [net], [0.8], images[k], prompts[k], seeds[k], guidance
        )
        assert np.abs(got[k] - expected).max() <= 2
        assert np.abs(got[k] - plain[k]).mean() > 3


def test_guess_mode_follows_the_controlnets_config(family):
    name, model, pipe = family
    net = tiny_controlnet(pipe, guess_mode=True)
    got = _keyframes(model, [net], [1.0], [[_pattern(5)]], ["a cat"], [7], 5.0)[0]
    expected = _pipeline_image(name, pipe, [net], [1.0], [_pattern(5)], "a cat", 7, 5.0)
    assert np.abs(got - expected).max() <= 2


def test_two_controlnets_equal_the_multicontrolnet_pipeline(family):
    name, model, pipe = family
    nets = [tiny_controlnet(pipe, seed=1), tiny_controlnet(pipe, seed=2)]
    scales, images = [0.7, 1.2], [_pattern(1), _pattern(3)]
    got = _keyframes(model, nets, scales, [images], ["a red circle"], [3], 5.0)[0]
    expected = _pipeline_image(name, pipe, nets, scales, images, "a red circle", 3, 5.0)
    assert np.abs(got - expected).max() <= 2
    one = _keyframes(model, nets[:1], scales[:1], [images[:1]], ["a red circle"], [3], 5.0)[0]
    assert np.abs(got - one).mean() > 3


def _transition(model, folder, images, batched=True, branches=5, depth_strength=0.5):
    """The images of a transition guided by the ControlNet saved in `folder`."""
    spec = {"model": str(folder), "images": images, "scale": 1.0}
    t = Transition(
        model,
        "a red circle",
        "a blue square",
        seeds=(1, 2),
        progress=False,
        steps=STEPS,
        branches=branches,
        guidance_scale=5.0,
        batched=batched,
        depth_strength=depth_strength,
        controlnet=[spec],
    )
    return [np.asarray(i, dtype=np.float64) for i in t.render()]


@pytest.fixture(scope="module")
def sdxl_with_net(tmp_path_factory):
    """A fresh tiny SDXL adapter, a ControlNet for it saved in a folder, and two control images
    on disk."""
    folder = tmp_path_factory.mktemp("controlnet")
    pipe = tiny_sdxl_pipeline()
    tiny_controlnet(pipe).save_pretrained(folder / "net")
    _pattern(1).save(folder / "a.png")
    _pattern(2).save(folder / "b.png")
    return adapter_for(pipe, TINY_DEFAULTS, "tiny-sdxl"), folder


def test_a_batched_transition_equals_one_at_a_time(sdxl_with_net):
    model, folder = sdxl_with_net
    images = [str(folder / "a.png"), str(folder / "b.png")]
    batched = _transition(model, folder / "net", images)
    alone = _transition(model, folder / "net", images, batched=False)
    assert len(batched) == len(alone) == 5
    for a, b in zip(batched, alone, strict=True):
        assert np.abs(a - b).max() <= 2


def test_a_per_keyframe_control_image_blends_along_the_transition(sdxl_with_net, monkeypatch):
    model, folder = sdxl_with_net
    a, b = str(folder / "a.png"), str(folder / "b.png")
    rows = []
    denoise = model.denoise

    def recording(latents, cond, *args, **kwargs):
        rows.extend(cond.tensors["control_0"].split(1))
        return denoise(latents, cond, *args, **kwargs)

    monkeypatch.setattr(model, "denoise", recording)
    both = _transition(model, folder / "net", [a, b], branches=3)
    monkeypatch.undo()
    only_a = _transition(model, folder / "net", [a], branches=3)
    only_b = _transition(model, folder / "net", [b], branches=3)
    # each keyframe sees its own image, the branch between them the mix of both
    assert np.abs(both[0] - only_a[0]).max() <= 2
    assert np.abs(both[-1] - only_b[-1]).max() <= 2
    pixels = [np.asarray(Image.open(p), np.float32) / 255 for p in (a, b)]
    seen = [row[0].permute(1, 2, 0).numpy() for row in rows]
    for expected in (pixels[0], pixels[1], (pixels[0] + pixels[1]) / 2):
        assert min(np.abs(row - expected).max() for row in seen) < 1e-6


def test_parts_keys_follow_the_control_images_content(sdxl_with_net, tmp_path):
    from latentmorph.project import Keyframe, Project
    from latentmorph.render import MovieRenderer

    model, folder = sdxl_with_net
    _pattern(1).save(tmp_path / "c.png")
    spec = {"model": str(folder / "net"), "images": [str(tmp_path / "c.png")]}
    project = Project(
        [Keyframe("a", 1), Keyframe("b", 2)], settings=BlendSettings(controlnet=[spec])
    )
    first = MovieRenderer(project, model, progress=False).segment_key(0)
    assert MovieRenderer(project, model, progress=False).segment_key(0) == first
    _pattern(2).save(tmp_path / "c.png")
    assert MovieRenderer(project, model, progress=False).segment_key(0) != first


def test_canny_gives_white_edges_on_black():
    edges = np.asarray(canny_edges(_square()))
    assert edges.shape == (80, 96, 3) and set(np.unique(edges)) == {0, 255}
    assert (edges[..., 0] == edges[..., 2]).all()
    assert edges[40, 29:31, 0].max() == 255  # the square's left side
    assert edges[40, 50].max() == 0 and edges[5, 5].max() == 0  # inside and outside


def test_images_are_fitted_to_the_frame_then_preprocessed(tmp_path):
    _square().save(tmp_path / "sq.png")
    specs = control_specs(
        [{"model": "x/y", "images": str(tmp_path / "sq.png"), "preprocess": "canny"}]
    )
    (row,), notices = ControlImages.read(specs, 3).fitted(64, 64)
    assert len(row) == 3 and all(image.size == (64, 64) for image in row)
    assert set(np.unique(np.asarray(row[0]))) == {0, 255}
    assert notices == [f"control image {tmp_path / 'sq.png'} 96x80 scaled and cropped to 64x64"]


def test_settings_check_and_record_the_controlnet():
    data = BlendSettings(controlnet=[{"model": "a/b", "images": "x.png", "scale": 0.5}]).as_dict()
    assert data["controlnet"] == [
        {"model": "a/b", "images": [str(Path.cwd() / "x.png")], "scale": 0.5, "preprocess": "none"}
    ]
    with pytest.raises(
        InputError, match=r"^controlnet\[0\]\.scale: 9 is not allowed; use a number from 0 to 5$"
    ):
        BlendSettings(controlnet=[{"model": "a/b", "images": "x.png", "scale": 9}])
    with pytest.raises(InputError, match=r"^controlnet\[0\]\.preprocess: 'depth' is not allowed"):
        BlendSettings(controlnet=[{"model": "a/b", "images": "x.png", "preprocess": "depth"}])
    with pytest.raises(InputError, match=r"^controlnet\[0\]\.images: missing; give an image path"):
        BlendSettings(controlnet=[{"model": "a/b", "images": []}])
    with pytest.raises(InputError, match=r"^controlnet\[0\]\.size: unknown field"):
        BlendSettings(controlnet=[{"model": "a/b", "images": "x.png", "size": 3}])


def test_a_controlnet_for_another_base_or_not_a_controlnet_is_refused(sdxl_with_net, tmp_path):
    model, folder = sdxl_with_net
    tiny_controlnet(tiny_sd_pipeline()).save_pretrained(tmp_path / "sd-net")
    with pytest.raises(
        ModelLoadError,
        match=r"^controlnet '.*sd-net' does not fit this model \(cross_attention_dim 32, the "
        r"model's 64\)",
    ):
        model.use_controlnets([str(tmp_path / "sd-net")], [1.0])
    with pytest.raises(ModelLoadError, match=r"the folder holds no config.json"):
        model.use_controlnets([str(tmp_path)], [1.0])
    with pytest.raises(
        ModelLoadError, match=r"^controlnet 'nobody/no-such-controlnet' is not in the local cache"
    ):
        model.use_controlnets(["nobody/no-such-controlnet"], [1.0])


# --- the command line -----------------------------------------------------------------------

FAST = ["--quiet", "--duration", "0.5", "--fps", "8", "--branches", "3", "--steps", "4"]


def _frames(folder):
    return [np.asarray(Image.open(p), dtype=np.int16) for p in sorted(folder.glob("*.png"))]


def test_the_command_line_renders_records_and_reproduces(
    capsys, sdxl_with_net, tmp_path, monkeypatch
):
    _, folder = sdxl_with_net
    monkeypatch.chdir(folder)
    argv = ["transition", "a", "b", "--model", "tiny-sdxl", *FAST, "--seeds", "1", "2"]
    control = ["--controlnet", "net", "--control-image", "a.png", "b.png"]
    code, _, err = run_cli(capsys, *argv, *control, "--control-scale", "0.5", "-o", tmp_path / "t")
    assert code == 0, err
    project = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert project["settings"]["controlnet"] == [
        {
            "model": str(folder / "net"),
            "images": [str(folder / "a.png"), str(folder / "b.png")],
            "scale": 0.5,
            "preprocess": "none",
        }
    ]
    run_cli(capsys, *argv, "-o", tmp_path / "plain")
    code, _, err = run_cli(
        capsys, "movie", tmp_path / "t.yaml", "-o", tmp_path / "again", "--quiet"
    )
    assert code == 0, err
    first, again, plain = (
        _frames(tmp_path / "t"),
        _frames(tmp_path / "again"),
        _frames(tmp_path / "plain"),
    )
    assert len(first) == len(again) == 4
    assert all(np.abs(a - b).max() <= 2 for a, b in zip(first, again))
    assert np.abs(first[0] - plain[0]).mean() > 3


def test_a_project_files_relative_control_images_are_read_from_its_folder(
    capsys, sdxl_with_net, tmp_path
):
    _, folder = sdxl_with_net
    project = {
        "model": "tiny-sdxl",
        "fps": 8,
        "duration": 0.5,
        "settings": {
            "steps": 4,
            "branches": 3,
            "controlnet": [{"model": "net", "images": ["a.png"], "preprocess": "canny"}],
        },
        "keyframes": [{"prompt": "a", "seed": 1}, {"prompt": "b", "seed": 2}],
    }
    (folder / "p.yaml").write_text(yaml.safe_dump(project))
    code, _, err = run_cli(capsys, "movie", folder / "p.yaml", "-o", tmp_path / "p", "--quiet")
    assert code == 0, err
    recorded = yaml.safe_load((tmp_path / "p.yaml").read_text())["settings"]["controlnet"][0]
    assert recorded["images"] == [str(folder / "a.png")] and recorded["model"] == str(
        folder / "net"
    )


def _bad_images(folder):
    (folder / "text.png").write_text("not an image")
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    return {
        "missing": (folder / "missing.png", "does not exist"),
        "not an image": (folder / "text.png", "is not an image that can be read"),
        "1x1": (folder / "dot.png", "is 1x1 pixels; allowed: at least 8 pixels on each side"),
    }


@pytest.mark.parametrize("case", ["missing", "not an image", "1x1"])
def test_a_bad_control_image_is_one_line_and_exit_2(capsys, sdxl_with_net, tmp_path, case):
    _, folder = sdxl_with_net
    path, words = _bad_images(tmp_path)[case]
    code, _, err = run_cli(
        capsys,
        "transition",
        "a",
        "b",
        "--model",
        "tiny-sdxl",
        *FAST,
        "--controlnet",
        folder / "net",
        "--control-image",
        path,
        "-o",
        tmp_path / "t.mp4",
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"latentmorph: error: --control-image: {path}") and words in err
    assert not (tmp_path / "t.mp4").exists() and not (tmp_path / "t.yaml").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--controlnet", "NET", "--controlnet", "NET", "--control-image", "A"],
            "--control-image: 1 given for 2 --controlnet; give one --control-image (with its "
            "images) per --controlnet",
        ),
        (
            ["--controlnet", "NET", "--control-image", "A", "A", "A"],
            "--control-image: 3 images given; give one for all keyframes or one per keyframe (2)",
        ),
        (
            ["--control-image", "A"],
            "--control-image: given without --controlnet; give the ControlNet too",
        ),
        (
            [
                "--controlnet",
                "NET",
                "--control-image",
                "A",
                "--control-scale",
                "1",
                "--control-scale",
                "2",
            ],
            "--control-scale: given 2 times for 1 --controlnet; give it once for all or once "
            "per --controlnet",
        ),
        (
            ["--controlnet", "NET", "--control-image", "A", "--control-scale", "7"],
            "argument --control-scale: '7' is not allowed; use a number from 0 to 5",
        ),
    ],
)
def test_control_flags_that_do_not_fit_are_one_line_and_exit_2(
    capsys, sdxl_with_net, tmp_path, flags, message
):
    _, folder = sdxl_with_net
    flags = [
        str(folder / "net") if f == "NET" else str(folder / "a.png") if f == "A" else f
        for f in flags
    ]
    code, _, err = run_cli(
        capsys,
        "transition",
        "a",
        "b",
        "--model",
        "tiny-sdxl",
        *FAST,
        *flags,
        "-o",
        tmp_path / "t.mp4",
    )
    assert code == 2
    assert err == f"latentmorph: error: {message}\n"
    assert not (tmp_path / "t.mp4").exists()


# --- animations -----------------------------------------------------------------------------


def test_an_animation_follows_a_control_video_frame_by_frame(capsys, sdxl_with_net, tmp_path):
    from tests.media import write_clip

    _, folder = sdxl_with_net
    (tmp_path / "p.txt").write_text("0: a red circle\n5: a blue square\n")
    clip = write_clip(tmp_path / "clip.mp4")  # six flat colours, one per frame
    av_frame = next(iter(__import__("av").open(str(clip)).decode(video=0))).to_image()
    av_frame.save(tmp_path / "first.png")
    argv = ["animate", tmp_path / "p.txt", "--model", "tiny-sdxl", "--quiet", "--steps", "3"]
    argv += ["--mode", "walk", "--seed", "5", "--controlnet", folder / "net"]
    code, _, err = run_cli(capsys, *argv, "--control-image", clip, "-o", tmp_path / "video")
    assert code == 0, err
    assert f"note: control video {clip} 64x48 scaled and cropped to 64x64" in err
    code, _, err = run_cli(
        capsys, *argv, "--control-image", tmp_path / "first.png", "-o", tmp_path / "still"
    )
    assert code == 0, err
    video, still = _frames(tmp_path / "video"), _frames(tmp_path / "still")
    assert len(video) == len(still) == 6
    # frame 0 is guided by the video's first frame in both; later frames by their own
    assert np.abs(video[0] - still[0]).max() <= 2
    # (flat colours through the tiny ControlNet: measured mean changes 0.45 to 1.19)
    assert all(np.abs(v - s).mean() > 0.2 for v, s in zip(video[1:], still[1:]))
    recorded = yaml.safe_load((tmp_path / "video.yaml").read_text())["blend"]["controlnet"]
    assert recorded[0]["images"] == [str(clip)]
    code, _, err = run_cli(
        capsys, "movie", tmp_path / "video.yaml", "-o", tmp_path / "again", "--quiet"
    )
    assert code == 0, err
    assert all(np.abs(a - b).max() <= 2 for a, b in zip(video, _frames(tmp_path / "again")))


def test_an_animation_takes_one_control_file_per_controlnet(capsys, sdxl_with_net, tmp_path):
    _, folder = sdxl_with_net
    (tmp_path / "p.txt").write_text("0: a red circle\n5: a blue square\n")
    code, _, err = run_cli(
        capsys,
        "animate",
        tmp_path / "p.txt",
        "--model",
        "tiny-sdxl",
        "--quiet",
        "--controlnet",
        folder / "net",
        "--control-image",
        folder / "a.png",
        folder / "b.png",
        "-o",
        tmp_path / "a.mp4",
    )
    assert code == 2
    assert err == (
        "latentmorph: error: --control-image: 2 files given; give one control image or video per "
        "--controlnet\n"
    )


def test_a_control_video_without_frames_is_named(sdxl_with_net, tmp_path, monkeypatch):
    from latentmorph.animation import control
    from latentmorph.control_inputs import ControlSpec
    from latentmorph.errors import MediaError
    from tests.media import write_clip

    model, folder = sdxl_with_net
    clip = write_clip(tmp_path / "clip.mp4")
    monkeypatch.setattr(control, "VideoInput", lambda path: iter(()))  # decodes no frame
    spec = ControlSpec(str(folder / "net"), (str(clip),))
    with pytest.raises(MediaError, match=r"controlnet\[0\]\.images\[0\]: .* holds no video frame"):
        control.ControlFrames([spec], (64, 64), model)
