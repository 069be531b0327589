"""Inpainting models: the mask and keyframe 1's masked image in every UNet input, as diffusers'
inpainting pipelines give them."""

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import ControlNetModel
from PIL import Image

from latentmorph import Transition
from latentmorph.animation.render import AnimationRenderer
from latentmorph.animation.schedules import parse_prompt_schedule
from latentmorph.animation.settings import Animation
from latentmorph.blending.settings import BlendSettings
from latentmorph.cli import main
from latentmorph.errors import ModelLoadError
from latentmorph.models.adapter import MASKED_IMAGE_KEY
from latentmorph.models.loading import adapter_for, load_pipeline
from latentmorph.models.presets import TINY_DEFAULTS
from latentmorph.models.tiny import (
    tiny_sd_inpaint_pipeline,
    tiny_sd_pipeline,
    tiny_sdxl_inpaint_pipeline,
)
from latentmorph.models.tiny_flow import tiny_flux_pipeline, tiny_sd3_pipeline

SIZE = 64
KEPT = 24
"""Columns on the left that the test mask keeps (black); the rest may be repainted (white)."""
PROMPTS = ("a green triangle", "a yellow star")
GUIDANCE = 5.0
BUILDERS = {"sd": tiny_sd_inpaint_pipeline, "sdxl": tiny_sdxl_inpaint_pipeline}


@pytest.fixture(scope="module", params=list(BUILDERS))
def inpainting(request):
    return adapter_for(BUILDERS[request.param](), TINY_DEFAULTS, f"tiny-{request.param}-inpaint")


@pytest.fixture(scope="module")
def sd_inpainting():
    return adapter_for(tiny_sd_inpaint_pipeline(), TINY_DEFAULTS, "tiny-sd-inpaint")


def draw_mask(path: Path) -> Path:
    mask = np.full((SIZE, SIZE), 255, np.uint8)
    mask[:, :KEPT] = 0
    Image.fromarray(mask).save(path)
    return path


def draw_photo(path: Path) -> Path:
    pixels = np.random.default_rng(5).integers(0, 256, (SIZE // 8, SIZE // 8, 3), np.uint8)
    Image.fromarray(pixels).resize((SIZE, SIZE), Image.Resampling.BICUBIC).save(path)
    return path


def vae_mean(pipe, pixels: torch.Tensor) -> torch.Tensor:
    """The VAE's mean latents of pixels in [-1, 1], scaled as the pipelines scale them."""
    with torch.no_grad():
        return pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor


def signed(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255 * 2 - 1
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def pipeline_image(
    model, prompt: str, seed: int, image: Image.Image, mask: Image.Image, first=None
) -> np.ndarray:
    """The inpainting pipeline's image at strength 1.0 with the masked image's mean latents;
    with `first`, keyframe 1's branch, the kept latent columns held to it before every step as
    the engine holds them."""
    pipe, steps = model.pipe, model.defaults.steps
    repaint = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255 >= 0.5)[None, None]
    masked = vae_mean(pipe, signed(image) * ~repaint)
    noise = torch.randn((1, 4, SIZE // 2, SIZE // 2), generator=torch.Generator().manual_seed(seed))
    hold = torch.zeros(1, 1, SIZE // 2, SIZE // 2)
    hold[..., : KEPT // 2] = 1
    sigma = model.scheduler(steps).init_noise_sigma
    if first is not None:
        noise = (noise * sigma + hold * (first.at(0) - noise * sigma)) / sigma

    def held(pipe, i, t, tensors):
        latents = tensors["latents"]
        if first is not None and i + 1 < steps:
            latents = latents + hold * (first.at(i + 1) - latents)
        return {"latents": latents}

    out = pipe(
        prompt,
        image=image,
        mask_image=mask,
        masked_image_latents=masked,
        latents=noise,
        strength=1.0,
        num_inference_steps=steps,
        guidance_scale=GUIDANCE,
        height=SIZE,
        width=SIZE,
        callback_on_step_end=held,
    ).images[0]
    return np.asarray(out, dtype=np.int16)


@pytest.mark.parametrize("given", [True, False], ids=["image-keyframe-1", "generated-keyframe-1"])
def test_a_masked_keyframe_equals_the_inpainting_pipelines_image(inpainting, tmp_path, given):
    photo = draw_photo(tmp_path / "photo.png") if given else None
    mask = draw_mask(tmp_path / "mask.png")
    transition = Transition(
        inpainting,
        PROMPTS[0],
        PROMPTS[1],
        seeds=(1, 2),
        images=(photo, None),
        branches=4,
        guidance_scale=GUIDANCE,
        mask=str(mask),
        progress=False,
    )
    frames = transition.render()
    tree = transition.tree
    first = tree.branches[0]
    image = Image.open(photo).convert("RGB") if given else first.image
    expected = pipeline_image(
        inpainting, PROMPTS[1], 2, image, Image.open(mask).convert("L"), first
    )
    assert np.abs(np.asarray(tree.images[-1], dtype=np.int16) - expected).max() <= 1
    kept = [np.asarray(f, dtype=np.int16)[:, :KEPT] for f in frames]
    assert all(np.array_equal(k, kept[0]) for k in kept)
    if not given:  # keyframe 1 is what the model makes without a mask
        alone = Transition(
            inpainting, *PROMPTS, seeds=(1, 2), branches=2, guidance_scale=GUIDANCE, progress=False
        )
        made = np.asarray(alone.render()[0], dtype=np.int16)
        assert np.abs(made - np.asarray(first.image, dtype=np.int16)).max() <= 1


def test_without_a_mask_a_transition_repaints_everything(inpainting):
    transition = Transition(
        inpainting, *PROMPTS, seeds=(1, 2), branches=5, guidance_scale=GUIDANCE, progress=False
    )
    images = [np.asarray(i, dtype=np.int16) for i in transition.render()]
    assert len(images) == 5 and all(np.isfinite(transition.tree.distances))
    assert all(np.abs(b - a).mean() > 0 for a, b in zip(images, images[1:]))
    blank = Image.new("RGB", (SIZE, SIZE))
    white = Image.new("L", (SIZE, SIZE), 255)
    for index, prompt, seed in zip((0, -1), PROMPTS, (1, 2)):
        expected = pipeline_image(inpainting, prompt, seed, blank, white)
        assert np.abs(images[index] - expected).max() <= 2


def test_a_masked_transition_from_the_command_line_keeps_the_kept_pixels(capsys, tmp_path):
    out = tmp_path / "t"
    argv = ["transition", *PROMPTS, "-o", out, "--model", "tiny-sd-inpaint", "--seeds", 1, 2]
    argv += ["--branches", 6, "--duration", 1, "--fps", 12, "--quiet"]
    code = main([str(a) for a in [*argv, "--mask", draw_mask(tmp_path / "mask.png")]])
    assert code in (0, None), capsys.readouterr().err
    frames = [np.asarray(Image.open(p), dtype=np.int16) for p in sorted(out.glob("*.png"))]
    assert len(frames) == 12
    assert max(int(np.abs(f - frames[0])[:, :KEPT].max()) for f in frames) == 0
    assert np.abs(frames[-1] - frames[0])[:, KEPT + 8 :].mean() > 10


def test_batched_equals_one_at_a_time(sd_inpainting, tmp_path):
    mask = str(draw_mask(tmp_path / "mask.png"))

    def images(max_batch):
        transition = Transition(
            sd_inpainting,
            *PROMPTS,
            seeds=(1, 2),
            branches=6,
            guidance_scale=GUIDANCE,
            mask=mask,
            max_batch=max_batch,
            progress=False,
        )
        return [np.asarray(i, dtype=np.int16) for i in transition.render()]

    batched, alone = images(None), images(1)
    assert len(batched) == len(alone) == 6
    assert max(int(np.abs(a - b).max()) for a, b in zip(batched, alone)) <= 1


def test_the_progress_bar_counts_keyframe_1_computed_first(sd_inpainting, tmp_path, capsys):
    transition = Transition(
        sd_inpainting, *PROMPTS, seeds=(1, 2), branches=5, mask=str(draw_mask(tmp_path / "m.png"))
    )
    transition.render()
    bar = transition._renderer._bar
    assert bar.n == bar.total == transition._renderer.engine.stats.image_steps
    assert bar.total == 3 * sd_inpainting.defaults.steps + transition._renderer.plan.branch_steps(0)


def test_inpainting_presets_load_with_their_family_adapter():
    sd, sdxl = load_pipeline("tiny-sd-inpaint", "cpu"), load_pipeline("tiny-sdxl-inpaint", "cpu")
    assert (sd.family, sdxl.family) == ("sd", "sdxl")
    assert sd.inpainting and sdxl.inpainting and sd.latent_channels == 4
    assert not load_pipeline("tiny-sd", "cpu").inpainting


def test_a_unet_of_other_input_channels_is_refused_naming_what_is_allowed():
    pipe = tiny_sd_pipeline()
    pipe.unet.register_to_config(in_channels=8)
    with pytest.raises(ModelLoadError) as error:
        adapter_for(pipe, name="tiny")
    assert str(error.value) == (
        "model tiny: its UNet2DConditionModel takes 8 input channels; allowed for sd models: "
        "4 (text-to-image), 9 (inpainting: latents, mask and masked image)"
    )


@pytest.mark.parametrize("build", [tiny_sd3_pipeline, tiny_flux_pipeline], ids=["sd3", "flux"])
def test_a_flow_family_refuses_a_transformer_that_takes_a_mask(build):
    pipe = build()
    channels = pipe.vae.config.latent_channels
    allowed = pipe.transformer.config.in_channels
    pipe.transformer.register_to_config(in_channels=2 * channels + 1)
    with pytest.raises(ModelLoadError, match=rf"takes {2 * channels + 1} input channels; allowed"):
        adapter_for(pipe, name="tiny")
    with pytest.raises(ModelLoadError, match=rf"models: {allowed} \(text-to-image"):
        adapter_for(pipe, name="tiny")


@pytest.mark.parametrize("mode", ["blend", "walk"])
def test_a_masked_animation_gives_every_image_after_the_first_its_masked_image(
    sd_inpainting, tmp_path, monkeypatch, mode
):
    mask = str(draw_mask(tmp_path / "mask.png"))
    schedule = parse_prompt_schedule(f"0: {PROMPTS[0]}\n9: {PROMPTS[1]}")
    animation = Animation(
        prompts=schedule, seed=3, steps=6, mode=mode, blend=BlendSettings(mask=mask, branches=4)
    )
    calls = []
    denoise = sd_inpainting.denoise

    def recording(latents, cond, *args, **kwargs):
        calls.append((latents.shape[0], cond.tensors.get(MASKED_IMAGE_KEY)))
        return denoise(latents, cond, *args, **kwargs)

    monkeypatch.setattr(sd_inpainting, "denoise", recording)
    renderer = AnimationRenderer(animation, sd_inpainting, False)
    frames = [np.asarray(i, dtype=np.int16) for i in renderer.render_frames()]
    assert len(frames) == 10
    assert max(int(np.abs(f - frames[0])[:, :KEPT].max()) for f in frames) == 0
    (rows, none), *others = calls
    assert rows == 1 and none is None  # the first image alone, all repainted
    first = sd_inpainting.encode_images([Image.fromarray(frames[0].astype(np.uint8))])
    masked = sd_inpainting.with_masked_image(
        sd_inpainting.encode([""]), renderer.kept.keep, Image.fromarray(frames[0].astype(np.uint8))
    ).tensors[MASKED_IMAGE_KEY]
    assert others and all(m is not None and torch.equal(m[:1], masked) for _, m in others)
    assert not torch.allclose(masked, first)


def test_a_controlnet_of_the_base_guides_an_inpainting_model(sd_inpainting, tmp_path):
    from tests.test_controlnet import tiny_controlnet

    tiny_controlnet(tiny_sd_pipeline()).save_pretrained(tmp_path / "net")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), np.uint8)).save(
        tmp_path / "control.png"
    )
    mask = draw_mask(tmp_path / "mask.png")

    def render(controlnet: list) -> list[np.ndarray]:
        t = Transition(
            sd_inpainting,
            "a red circle",
            "a blue square",
            seeds=(1, 2),
            branches=3,
            mask=str(mask),
            controlnet=controlnet,
            progress=False,
        )
        return [np.asarray(image, dtype=np.int16) for image in t.render()]

    guided = render([{"model": str(tmp_path / "net"), "images": [str(tmp_path / "control.png")]}])
    plain = render([])
    assert np.abs(guided[-1] - plain[-1]).mean() > 3
    assert all(np.abs(f - guided[0])[:, :KEPT].max() == 0 for f in guided)


def test_a_controlnet_made_from_an_inpainting_unet_is_refused(sd_inpainting, tmp_path):
    net = ControlNetModel.from_unet(
        tiny_sd_inpaint_pipeline().unet, conditioning_embedding_out_channels=(16, 32)
    )
    net.save_pretrained(tmp_path / "net")
    with pytest.raises(ModelLoadError, match=r"takes an inpainting UNet's 9 input channels"):
        sd_inpainting.use_controlnets([str(tmp_path / "net")], [1.0])
    assert sd_inpainting.control is None
