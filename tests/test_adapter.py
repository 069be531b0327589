import numpy as np
import pytest
import torch

from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings


def _pipeline_image(model, prompt, seed, steps, guidance, negative=""):
    """The image diffusers' own pipeline call makes for a prompt and seed."""
    out = model.pipe(
        prompt,
        negative_prompt=negative or None,
        num_inference_steps=steps,
        guidance_scale=guidance,
        height=64,
        width=64,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    )
    return np.rint(out.images[0] * 255)


@pytest.mark.parametrize("guidance", [0.0, 5.0])
def test_keyframes_equal_the_pipelines_own_images(any_model, guidance):
    settings, _ = BlendSettings(guidance_scale=guidance, negative_prompt="dark").resolve(any_model)
    engine = BlendingEngine(any_model, settings, distance=lambda a, b: [0.0] * len(a))
    prompts, seeds = ["a red circle", "a blue square"], [3, 4]
    keyframes = engine.keyframes(engine.encode(prompts), seeds)
    for kf, prompt, seed in zip(keyframes, prompts, seeds, strict=True):
        expected = _pipeline_image(any_model, prompt, seed, settings.steps, guidance, "dark")
        got = np.asarray(kf.image, dtype=np.float64)
        assert np.abs(got - expected).max() <= 2


def test_batch_equals_seeds_run_alone(tiny_sdxl):
    model = tiny_sdxl
    noise = model.noise([1, 2, 3], 64, 64, 8)
    torch.testing.assert_close(noise[1:2], model.noise([2], 64, 64, 8))
    cond = model.encode(["a", "b", "c"])
    batch = model.denoise(noise, cond, 8, 2, 8, torch.tensor([1.0, 3.0, 5.0]))
    for i, g in enumerate([1.0, 3.0, 5.0]):
        alone = model.denoise(noise[i : i + 1], cond[i], 8, 2, 8, g)
        torch.testing.assert_close(batch[-1][i : i + 1], alone[-1], atol=1e-4, rtol=1e-4)


def test_denoise_returns_latents_entering_each_step_and_the_final(tiny_sd):
    noise = tiny_sd.noise([0], 64, 64, 8)
    cond = tiny_sd.encode(["x"])
    seen = []

    def hook(step, latents):
        seen.append(step)
        return latents

    full = tiny_sd.denoise(noise, cond, 8, 0, 8, 0.0, on_step=hook)
    assert len(full) == 9 and seen == list(range(8))
    resumed = tiny_sd.denoise(full[5], cond, 8, 5, 8, 0.0)
    assert len(resumed) == 4
    torch.testing.assert_close(resumed[-1], full[-1])


def test_sdxl_time_ids_follow_the_chosen_size(tiny_sdxl):
    cond = tiny_sdxl.encode(["x"])
    kwargs = tiny_sdxl._unet_kwargs(cond, False, torch.zeros(1, 4, 24, 40))
    assert kwargs["added_cond_kwargs"]["time_ids"].tolist() == [[48, 80, 0, 0, 48, 80]]


def test_negative_prompt_changes_the_unconditional_half(tiny_sd):
    plain = tiny_sd.encode(["x"]).tensors["negative_embeds"]
    negative = tiny_sd.encode(["x"], "blurry").tensors["negative_embeds"]
    assert not torch.allclose(plain, negative)


@pytest.mark.parametrize("fixture", ["tiny_sd", "tiny_sdxl"])
def test_prompt_weighting(request, fixture):
    model = request.getfixturevalue(fixture)
    plain = model.encode(["a red circle"], "dark")
    weighted = model.encode(["a red circle"], "dark", weighted=True)
    for key, value in plain.tensors.items():  # no weights: the same as the pipeline's encoding
        torch.testing.assert_close(weighted.tensors[key], value)
    heavy = model.encode(["a (red)1.8 circle"], "dark", weighted=True)
    assert heavy.tensors["embeds"].shape == plain.tensors["embeds"].shape
    assert not torch.allclose(heavy.tensors["embeds"], plain.tensors["embeds"])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_renders_close_to_float32_and_quietly(dtype, caplog):
    from latentmorph import Transition, load_pipeline

    def render(model):
        tr = Transition(
            model, "a red circle", "a blue square", seeds=(1, 2), branches=3, progress=False
        )
        return tr, tr.render()

    half = load_pipeline("tiny-sdxl", device="cpu", dtype=dtype)
    caplog.clear()
    tr, images = render(half)
    _, reference = render(load_pipeline("tiny-sdxl", device="cpu"))
    assert half.pipe.vae.dtype == half.pipe.unet.dtype == getattr(torch, dtype)
    assert all(x.dtype == getattr(torch, dtype) for b in tr.tree.branches for x in b.latents)
    for a, b in zip(images, reference, strict=True):
        assert np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean() < 2
    assert "float32" not in caplog.text  # the VAE's upcast logs nothing
