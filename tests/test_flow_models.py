"""Flow-matching families (SD3/SD3.5, FLUX.1) through the adapter, offline on tiny pipelines."""

import logging

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from imageio_ffmpeg import count_frames_and_secs
from safetensors.torch import save_file

from latentmorph import Project, Transition, load_pipeline
from latentmorph.animation.render import AnimationRenderer
from latentmorph.animation.schedules import parse_prompt_schedule
from latentmorph.animation.settings import Animation
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.errors import InputError, ModelLoadError
from latentmorph.models.flux import FluxAdapter
from latentmorph.models.loading import adapter_for, is_flow_source
from latentmorph.models.presets import PRESETS, TINY_DEFAULTS
from latentmorph.models.sd3 import SD3Adapter
from latentmorph.models.tiny_flow import tiny_flux_pipeline, tiny_sd3_pipeline
from latentmorph.render import MovieRenderer
from latentmorph.ui import callbacks
from latentmorph.ui.models import ModelCache

PROMPTS = ("a red circle on a blue background", "a yellow square on a green background")


@pytest.fixture(scope="module")
def tiny_sd3():
    return adapter_for(tiny_sd3_pipeline(), TINY_DEFAULTS, "tiny-sd3")


@pytest.fixture(scope="module")
def tiny_flux():
    """FLUX.1-dev-style: guidance as an embedding."""
    return adapter_for(tiny_flux_pipeline(), TINY_DEFAULTS, "tiny-flux")


@pytest.fixture(scope="module")
def tiny_schnell():
    """FLUX.1-schnell-style: no guidance embedding, few steps."""
    defaults = TINY_DEFAULTS.__class__(4, 0.0, 64, 64, (1.0, 1.0, 1.0), few_step=True)
    return adapter_for(tiny_flux_pipeline(guidance_embeds=False), defaults, "schnell")


@pytest.fixture(params=["tiny_sd3", "tiny_flux", "tiny_schnell"])
def flow_model(request):
    return request.getfixturevalue(request.param)


def _arrays(images):
    return [np.asarray(i, dtype=np.int16) for i in images]


def _render(model, **settings):
    tr = Transition(model, *PROMPTS, seeds=(420, 421), progress=False, **settings)
    return tr, tr.render()


def _pipeline_image(model, prompt, seed, steps, guidance, width, height, negative):
    """The image diffusers' own pipeline call makes for a prompt and seed."""
    options = {"negative_prompt": negative} if isinstance(model, SD3Adapter) else {}
    out = model.pipe(
        prompt,
        num_inference_steps=steps,
        guidance_scale=guidance,
        width=width,
        height=height,
        max_sequence_length=model.text_length,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
        **options,
    )
    return np.rint(out.images[0] * 255)


# --- presets and loading ----------------------------------------------------------------------


def test_presets_carry_the_model_cards_settings():
    expected = {
        "sd35-medium": ("stabilityai/stable-diffusion-3.5-medium", 40, 4.5, False),
        "sd35-large": ("stabilityai/stable-diffusion-3.5-large", 28, 3.5, False),
        "sd35-large-turbo": ("stabilityai/stable-diffusion-3.5-large-turbo", 4, 0.0, True),
        "flux-schnell": ("black-forest-labs/FLUX.1-schnell", 4, 0.0, True),
        "flux-dev": ("black-forest-labs/FLUX.1-dev", 28, 3.5, False),
    }
    for name, (source, steps, guidance, few_step) in expected.items():
        d = PRESETS[name].defaults
        assert PRESETS[name].source == source
        assert (d.steps, d.guidance_scale, d.few_step) == (steps, guidance, few_step)
        assert (d.width, d.height) == (1024, 1024)
        # parental crossfeed: like SDXL for many-step models, like the turbo ones for few-step
        like = PRESETS["sdxl-turbo" if few_step else "sdxl"].defaults
        assert d.parental_crossfeed == like.parental_crossfeed


def test_tiny_presets_load_offline_with_their_family_adapter():
    sd3, flux = load_pipeline("tiny-sd3", device="cpu"), load_pipeline("tiny-flux", device="cpu")
    assert type(sd3) is SD3Adapter and type(flux) is FluxAdapter
    assert (sd3.family, flux.family) == ("sd3", "flux")
    assert sd3.dtype == flux.dtype == torch.float32 and flux.device.type == "cpu"
    assert sd3.size_multiple == 8 and flux.size_multiple == 8  # VAE 4 x patch 2, VAE 4 x pack 2


def test_local_folders_load_with_family_defaults_at_native_size(tmp_path):
    tiny_sd3_pipeline().save_pretrained(tmp_path / "sd3")
    tiny_flux_pipeline(guidance_embeds=False).save_pretrained(tmp_path / "schnell")
    sd3 = load_pipeline(str(tmp_path / "sd3"), device="cpu")
    schnell = load_pipeline(str(tmp_path / "schnell"), device="cpu")
    assert isinstance(sd3, SD3Adapter) and isinstance(schnell, FluxAdapter)
    assert (sd3.defaults.steps, sd3.defaults.width) == (28, 64)
    assert schnell.defaults.few_step and schnell.defaults.steps == 4
    assert is_flow_source(str(tmp_path / "sd3")) and is_flow_source("tiny-flux")
    assert not is_flow_source("tiny-sdxl") and not is_flow_source("owner/not-cached-here")


def test_single_file_flow_checkpoints_are_refused_with_advice(tmp_path):
    path = tmp_path / "flux1.safetensors"
    save_file({"double_blocks.0.img_attn.norm.key_norm.scale": torch.zeros(2)}, str(path))
    with pytest.raises(ModelLoadError, match="single-file SD3 and FLUX .* diffusers folder"):
        load_pipeline(str(path), device="cpu")


def test_stochastic_flow_scheduler_is_replaced_with_a_notice():
    pipe = tiny_sd3_pipeline()
    pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, stochastic_sampling=True)
    model = adapter_for(pipe, TINY_DEFAULTS)
    assert not model.pipe.scheduler.config.stochastic_sampling
    assert model.pipe.scheduler.config.shift == 3.0
    assert "replaced by deterministic FlowMatchEulerDiscreteScheduler" in model.notices[0]


def test_offload_is_a_noted_no_op_on_cpu():
    model = load_pipeline("tiny-flux", device="cpu", offload=True)
    assert model.device.type == "cpu"
    assert any("offload ignored on cpu" in n for n in model.notices)


def test_offload_on_cuda_uses_model_cpu_offload(monkeypatch):
    from diffusers import DiffusionPipeline

    from latentmorph.models import loading

    calls, moves = [], []
    monkeypatch.setattr(loading, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(
        DiffusionPipeline, "enable_model_cpu_offload", lambda self, device: calls.append(device)
    )
    monkeypatch.setattr(DiffusionPipeline, "to", lambda self, *a, **k: moves.append(a) or self)
    model = load_pipeline("tiny-sd3", offload=True)
    assert calls == [torch.device("cuda")] and not model.notices
    assert moves == [(torch.bfloat16,)]  # auto dtype of a flow model on cuda; never moved whole


def test_command_line_takes_flow_presets_and_offload(capsys, tmp_path):
    from latentmorph.cli import main

    out = tmp_path / "t.gif"
    argv = ["transition", "a", "b", "-o", str(out), "--model", "tiny-flux", "--steps", "3"]
    argv += ["--branches", "3", "--duration", "0.5", "--fps", "8", "--device", "cpu"]
    assert main([*argv, "--offload", "--quiet"]) == 0
    assert "note: offload ignored on cpu" in capsys.readouterr().err
    assert out.is_file()


def test_ui_loads_the_tiny_flow_models():
    models = ModelCache(keep=1)
    for name in ("tiny-sd3", "tiny-flux"):
        loaded, status = callbacks.load_model(models, name, "", "demo")
        assert loaded == name and "64×64" in status and "8 steps" in status


# --- adapter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("guidance", [0.0, 5.0])
def test_keyframes_equal_the_pipelines_own_images(flow_model, guidance):
    size = (64, 48) if isinstance(flow_model, FluxAdapter) else (64, 64)  # packing of 6x8
    blend = BlendSettings(guidance_scale=guidance, negative_prompt="dark", width=size[0])
    settings, _ = blend.replace(height=size[1]).resolve(flow_model)
    engine = BlendingEngine(flow_model, settings, distance=lambda a, b: [0.0] * len(a))
    seeds = [3, 4]
    keyframes = engine.keyframes(engine.encode(PROMPTS), seeds)
    for kf, prompt, seed in zip(keyframes, PROMPTS, seeds, strict=True):
        expected = _pipeline_image(
            flow_model, prompt, seed, settings.steps, guidance, *size, negative="dark"
        )
        got = np.asarray(kf.image, dtype=np.float64)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 2


def test_flux_noise_is_the_pipelines_noise_unpacked(tiny_flux):
    pipe = tiny_flux.pipe
    packed, _ = pipe.prepare_latents(
        1, 4, 64, 48, torch.float32, "cpu", torch.Generator("cpu").manual_seed(9)
    )
    ours = tiny_flux.noise([9], 48, 64, 4)
    assert ours.shape == (1, 4, 16, 12)
    torch.testing.assert_close(pipe._pack_latents(ours, 1, 4, 16, 12), packed)


def test_batch_equals_seeds_run_alone(flow_model):
    noise = flow_model.noise([1, 2, 3], 64, 64, 6)
    torch.testing.assert_close(noise[1:2], flow_model.noise([2], 64, 64, 6))
    cond = flow_model.encode(["a", "b", "c"])
    guidance = [1.0, 3.0, 5.0]
    batch = flow_model.denoise(noise, cond, 6, 2, 6, torch.tensor(guidance))
    for i, g in enumerate(guidance):
        alone = flow_model.denoise(noise[i : i + 1], cond[i], 6, 2, 6, g)
        torch.testing.assert_close(batch[-1][i : i + 1], alone[-1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("build", [tiny_sd3_pipeline, tiny_flux_pipeline])
def test_compiled_calls_pad_the_batch_and_give_the_same_latents(build):
    model = adapter_for(build(), TINY_DEFAULTS)
    noise, cond = model.noise([1, 2, 3, 4, 5], 64, 64, 4), model.encode(list("abcde"))
    guidance = torch.tensor([2.0, 3.0, 5.0, 2.0, 3.0])
    eager = model.denoise(noise, cond, 4, 0, 4, guidance)[-1]
    model.configure(compile="on")
    call = model._transformer_call()
    sizes = []

    def compiler(fn):  # stands for torch.compile, recording the rows it is called with
        return lambda x, *args: sizes.append(x.shape[0]) or fn(x, *args)

    call.compiler = compiler
    compiled = model.denoise(noise, cond, 4, 0, 4, guidance)[-1]
    assert "cpu" in call._compiled and not call._failed
    # SD3: 10 rows with classifier-free guidance padded to 12; FLUX: 5 rows padded to 6
    assert sizes == [12 if isinstance(model, SD3Adapter) else 6] * 4
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)


def test_denoise_resumes_where_it_left_off(tiny_flux):
    noise = tiny_flux.noise([0], 64, 64, 6)
    cond = tiny_flux.encode(["x"])
    seen = []

    def hook(step, latents):
        seen.append(step)
        return latents

    full = tiny_flux.denoise(noise, cond, 6, 0, 6, 3.5, on_step=hook)
    assert len(full) == 7 and seen == list(range(6))
    assert all(x.shape == noise.shape for x in full)  # unpacked all along
    resumed = tiny_flux.denoise(full[4], cond, 6, 4, 6, 3.5)
    torch.testing.assert_close(resumed[-1], full[-1])


def test_flux_guidance_is_an_embedding_and_schnell_has_none(tiny_flux, tiny_schnell):
    def final(model, guidance):
        noise = model.noise([5], 64, 64, 4)
        return model.denoise(noise, model.encode(["x"]), 4, 0, 4, guidance)[-1]

    assert not torch.allclose(final(tiny_flux, 1.0), final(tiny_flux, 4.0))
    torch.testing.assert_close(final(tiny_schnell, 1.0), final(tiny_schnell, 4.0))


def test_flux_schedule_shifts_with_the_image_size(tiny_flux):
    small = tiny_flux.scheduler(8, torch.zeros(1, 4, 16, 16)).sigmas
    large = tiny_flux.scheduler(8, torch.zeros(1, 4, 256, 256)).sigmas
    assert small[0] == large[0] == 1.0 and small[-1] == large[-1] == 0.0
    assert (large[1:-1] > small[1:-1]).all()  # more noise kept longer at larger sizes


def test_noised_uses_the_flow_forward_process(tiny_sd3):
    clean, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    sigma = tiny_sd3.scheduler(10).sigmas[3]
    torch.testing.assert_close(
        tiny_sd3.noised(clean, noise, 10, 3), sigma * noise + (1 - sigma) * clean
    )
    torch.testing.assert_close(tiny_sd3.initial_latents(noise, 10), noise)


def test_text_conditioning_interpolates_every_embedding(tiny_sd3, tiny_flux, caplog):
    sd3 = tiny_sd3.encode(["a", "b"], "dark").tensors
    assert set(sd3) == {"embeds", "negative_embeds", "pooled", "negative_pooled"}
    assert sd3["embeds"].shape[1] == 77 + tiny_sd3.text_length  # CLIP then T5 tokens
    with caplog.at_level(logging.WARNING):
        flux = tiny_flux.encode(["a", "b"], "dark").tensors
    assert set(flux) == {"embeds", "pooled"} and "negative prompt ignored" in caplog.text
    assert flux["embeds"].shape[1] == tiny_flux.text_length == 512


def test_prompt_weighting_is_refused_for_flow_models(tiny_flux):
    with pytest.raises(InputError, match="prompt_weighting: not available for flux models"):
        tiny_flux.encode(["a (red)1.3 circle"], weighted=True)


# --- engine, movie, animation -----------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["tiny_sd3", "tiny_flux"])
def test_batched_equals_one_at_a_time(request, fixture):
    model = request.getfixturevalue(fixture)
    batched, images = _render(model, branches=6, guidance_scale=3.0)
    single, alone = _render(model, branches=6, guidance_scale=3.0, batched=False)
    assert batched.tree.fractions == single.tree.fractions
    for a, b in zip(_arrays(images), _arrays(alone), strict=True):
        assert np.abs(a - b).max() <= 2
    stats_b, stats_s = batched._renderer.engine.stats, single._renderer.engine.stats
    assert stats_b.image_steps == stats_s.image_steps
    assert stats_b.unet_calls < stats_s.unet_calls


def test_crossfeeds_pull_branches_and_keyframes(tiny_schnell):
    _, free = _render(tiny_schnell, plan="3@s1", parental_crossfeed=(0, 0, 0))
    _, fed = _render(tiny_schnell, plan="3@s1", parental_crossfeed=(1, 1, 1))
    assert (_arrays(free)[1] != _arrays(fed)[1]).any()
    _, plain = _render(tiny_schnell, branches=2)
    _, pulled = _render(tiny_schnell, branches=2, keyframe_crossfeed=(0.8, 0.5, 0.5))
    a, b = _arrays(plain), _arrays(pulled)
    assert (a[0] == b[0]).all()
    assert np.abs(b[1] - b[0]).mean() < np.abs(a[1] - a[0]).mean()


def test_transition_movie_has_exact_frame_count(tiny_flux, tmp_path):
    out = tmp_path / "t.mp4"
    tr = Transition(tiny_flux, "a", "b", seeds=(1, 2), branches=4, steps=4, progress=False)
    summary = tr.write(out, duration=1.3, fps=10)
    assert summary.frames == 13 == count_frames_and_secs(str(out))[0]
    assert (tmp_path / "t.yaml").is_file()


@pytest.mark.parametrize("fixture", ["tiny_sd3", "tiny_flux"])
def test_walk_animation_with_motion_feeds_frames_back(request, fixture):
    model = request.getfixturevalue(fixture)
    schedule = parse_prompt_schedule("0: a red circle\n4: a blue square")
    options = dict(prompts=schedule, model=fixture, seed=7, steps=3, strength="0.5")

    def frames(**changes):
        renderer = AnimationRenderer(Animation(**options, **changes), model, progress=False)
        return _arrays(renderer.render_frames())

    still, moving = frames(mode="walk"), frames(translation_x="4")
    assert len(moving) == 5
    assert np.abs(moving[0] - still[0]).max() <= 2  # frame 0 has nothing to warp (batch of 1)
    assert all((a != b).any() for a, b in zip(moving[1:], still[1:]))


def test_blend_animation_renders_every_frame(tiny_sd3):
    schedule = parse_prompt_schedule("0: a red circle\n5: a blue square")
    animation = Animation(prompts=schedule, model="tiny-sd3", seed=3, steps=4, mode="blend")
    assert len(list(AnimationRenderer(animation, tiny_sd3, progress=False).render_frames())) == 6


def test_project_file_reproduces_the_keyframes(tiny_sd3, tmp_path):
    tr = Transition(tiny_sd3, "a", "b", seeds=(1, 2), branches=3, progress=False)
    tr.write(tmp_path / "t.gif", duration=0.3, fps=10)
    project = Project.load(tmp_path / "t.yaml")
    assert project.model == "tiny-sd3" and project.settings.steps == 8
    again = MovieRenderer(project, tiny_sd3, progress=False).keyframes()
    assert (_arrays([again[0].image])[0] == _arrays(tr.render()[:1])[0]).all()


def test_prompts_longer_than_t5_reads_are_found(tiny_sd3, tiny_flux):
    long = "a red circle " * 100
    assert tiny_sd3.cut_prompts(["a red circle", long])[0][:2] == (1, tiny_sd3.text_length)
    assert tiny_flux.cut_prompts([long, "a red circle"])[0][:2] == (0, 512)
    assert tiny_flux.cut_prompts(["a red circle " * 20]) == []  # longer than CLIP reads only
