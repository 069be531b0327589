"""ControlNet guidance of SD3 and FLUX models: equal to diffusers' ControlNet pipelines, batched,
blended, several at once, loaded from folders with one-line errors, from the command line."""

import numpy as np
import pytest
import torch
import yaml
from diffusers import (
    ControlNetModel,
    FluxControlNetModel,
    FluxControlNetPipeline,
    FluxTransformer2DModel,
    SD3ControlNetModel,
    StableDiffusion3ControlNetPipeline,
)
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from PIL import Image

from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.errors import ModelLoadError
from latentmorph.models.flow_control import FluxControlNets, SD3ControlNets
from latentmorph.models.loading import adapter_for
from latentmorph.models.presets import TINY_DEFAULTS
from latentmorph.models.tiny import tiny_sd_pipeline
from latentmorph.models.tiny_flow import tiny_flux_pipeline, tiny_sd3_pipeline
from latentmorph.transition import Transition

from .command_line import run_cli

STEPS = 4
SIZES = {"sd3": (64, 64), "flux": (64, 48)}  # FLUX: packing of a 16x12 latent


def tiny_flux_with_four_blocks():
    """The tiny FLUX pipeline with four double blocks, so that a ControlNet's three block samples
    added in turn (XLabs') differ from the same spread over the blocks (InstantX's)."""
    pipe = tiny_flux_pipeline()
    torch.manual_seed(0)
    config = {k: v for k, v in pipe.transformer.config.items() if not k.startswith("_")}
    pipe.transformer = FluxTransformer2DModel.from_config({**config, "num_layers": 4})
    return pipe


PIPELINES = {"sd3": tiny_sd3_pipeline, "flux": tiny_flux_with_four_blocks}


def _randomise(modules) -> None:
    """Random weights for a ControlNet's zero-initialised layers, so that it changes the images
    (a fresh one adds nothing)."""
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.normal_(0, 0.3)


def sd3_controlnet(pipe, seed: int = 1, style: str = "instantx") -> SD3ControlNetModel:
    """A one-block ControlNet of the tiny SD3 transformer: InstantX's kind (text, its own position
    embedding, zero pooled projection, latents without the VAE's shift) or SD3.5's (no text, the
    transformer's position embedding, the pooled projection, shifted latents)."""
    torch.manual_seed(seed)
    if style == "instantx":
        net = SD3ControlNetModel.from_transformer(
            pipe.transformer, num_layers=1, num_extra_conditioning_channels=0
        )
    else:
        config = pipe.transformer.config
        net = SD3ControlNetModel(
            sample_size=config.sample_size,
            patch_size=config.patch_size,
            in_channels=config.in_channels,
            out_channels=config.out_channels,
            num_layers=1,
            attention_head_dim=config.attention_head_dim,
            num_attention_heads=config.num_attention_heads,
            joint_attention_dim=None,
            pooled_projection_dim=config.pooled_projection_dim,
            pos_embed_max_size=config.pos_embed_max_size,
            use_pos_embed=False,
            force_zeros_for_pooled_projection=False,
        )
    _randomise([net.controlnet_blocks, net.pos_embed_input])
    return net


def flux_controlnet(pipe, seed: int = 1, style: str = "instantx", **config) -> FluxControlNetModel:
    """A ControlNet of the tiny FLUX transformer: InstantX's kind (one block of each kind, reads
    packed latents) or XLabs' (three double blocks and no single ones, reads pixels through an
    input hint block)."""
    torch.manual_seed(seed)
    if style == "xlabs":
        config["conditioning_embedding_channels"] = 16
    base = FluxControlNetModel.from_transformer(
        pipe.transformer,
        num_layers=3 if style == "xlabs" else 1,
        num_single_layers=0 if style == "xlabs" else 1,
        attention_head_dim=16,
        num_attention_heads=2,
    )
    own = {k: v for k, v in base.config.items() if not k.startswith("_")}
    net = FluxControlNetModel.from_config({**own, **config}) if config else base
    if style == "xlabs":  # hint convolutions that keep the image's variation (He's scale)
        with torch.no_grad():
            for conv in net.input_hint_block.modules():
                if isinstance(conv, torch.nn.Conv2d):
                    conv.weight.normal_(0, (2 / conv.weight[0].numel()) ** 0.5)
                    conv.bias.zero_()
    _randomise([net.input_hint_block.conv_out if style == "xlabs" else net.controlnet_x_embedder])
    _randomise([net.controlnet_blocks, net.controlnet_single_blocks])
    return net


NETS = {"sd3": sd3_controlnet, "flux": flux_controlnet}
STYLES = {"sd3": ("instantx", "sd35"), "flux": ("instantx", "xlabs")}
CLASSES = {"sd3": "SD3ControlNetModel", "flux": "FluxControlNetModel"}


def _pattern(seed: int, size) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module", params=["sd3", "flux"])
def family(request):
    """(family, adapter, its pipeline) with a fresh adapter per family."""
    pipe = PIPELINES[request.param]()
    return request.param, adapter_for(pipe, TINY_DEFAULTS, f"tiny-{request.param}"), pipe


@pytest.fixture
def vae_mean(monkeypatch):
    """The pipelines take the VAE's mean latents of a control image, as the adapter does (they
    sample the latent distribution; the FLUX pipeline from the noise's generator)."""
    monkeypatch.setattr(
        DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean
    )


def _guidance(name, model, nets, scales):
    if name == "sd3":
        return SD3ControlNets(nets, scales, model.pipe.transformer)
    return FluxControlNets(nets, scales)


def _keyframes(name, model, nets, scales, images, prompts, seeds, guidance):
    """Keyframe images with each keyframe's control images (`images[k]`: one per ControlNet)."""
    model.control = _guidance(name, model, nets, scales) if nets else None
    width, height = SIZES[name]
    negative = "dark" if name == "sd3" else ""
    blend = BlendSettings(steps=STEPS, guidance_scale=guidance, negative_prompt=negative)
    settings, _ = blend.replace(width=width, height=height).resolve(model)
    engine = BlendingEngine(model, settings, distance=lambda a, b: [0.0] * len(a))
    conds = engine.encode(prompts)
    if nets:
        conds = [model.with_control(c, [[i] for i in imgs]) for c, imgs in zip(conds, images)]
    try:
        return [np.asarray(kf.image, dtype=np.float64) for kf in engine.keyframes(conds, seeds)]
    finally:
        model.control = None


def _pipeline_image(name, model, nets, scales, images, prompt, seed, guidance):
    """The image diffusers' ControlNet pipeline makes for a prompt, seed and control images."""
    width, height = SIZES[name]
    pipeline = StableDiffusion3ControlNetPipeline if name == "sd3" else FluxControlNetPipeline
    control_pipe = pipeline(**model.pipe.components, controlnet=nets[0] if len(nets) == 1 else nets)
    control_pipe.set_progress_bar_config(disable=True)
    out = control_pipe(
        prompt,
        control_image=images[0] if len(nets) == 1 else images,
        controlnet_conditioning_scale=scales[0] if len(nets) == 1 else scales,
        num_inference_steps=STEPS,
        guidance_scale=guidance,
        width=width,
        height=height,
        max_sequence_length=model.text_length,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
        **({"negative_prompt": "dark"} if name == "sd3" else {}),
    )
    return np.rint(out.images[0] * 255)


@pytest.mark.parametrize("style", [0, 1])
@pytest.mark.parametrize("guidance", [0.0, 5.0])
def test_keyframes_equal_the_controlnet_pipelines_images_and_differ_without(
    family, vae_mean, style, guidance
):
    name, model, pipe = family
    net = NETS[name](pipe, style=STYLES[name][style])
    size = SIZES[name]
    images = [[_pattern(1, size)], [_pattern(2, size)]]
    prompts, seeds = ["a red circle", "a blue square"], [3, 4]
    got = _keyframes(name, model, [net], [0.8], images, prompts, seeds, guidance)
    plain = _keyframes(name, model, [], [], images, prompts, seeds, guidance)
    swapped = _keyframes(name, model, [net], [0.8], images[::-1], prompts, seeds, guidance)
    for k in range(2):
        expected = _pipeline_image(
            name, model, [net], [0.8], images[k], prompts[k], seeds[k], guidance
        )
        assert np.abs(got[k] - expected).max() <= 2
        assert np.abs(got[k] - plain[k]).mean() > 3
        # the image itself guides (measured: mean changes 4.2 to 14.3 on these ControlNets)
        assert np.abs(got[k] - swapped[k]).mean() > 2


def test_two_controlnets_equal_the_multicontrolnet_pipeline(family, vae_mean):
    name, model, pipe = family
    nets = [NETS[name](pipe, seed=1), NETS[name](pipe, seed=2)]
    size = SIZES[name]
    scales, images = [0.7, 1.2], [_pattern(1, size), _pattern(3, size)]
    got = _keyframes(name, model, nets, scales, [images], ["a red circle"], [3], 5.0)[0]
    expected = _pipeline_image(name, model, nets, scales, images, "a red circle", 3, 5.0)
    assert np.abs(got - expected).max() <= 2
    one = _keyframes(name, model, nets[:1], scales[:1], [images[:1]], ["a red circle"], [3], 5.0)
    assert np.abs(got - one[0]).mean() > 3


@pytest.fixture(scope="module")
def saved(family, tmp_path_factory):
    """The family's adapter, a ControlNet for it saved in a folder and two control images."""
    name, model, pipe = family
    folder = tmp_path_factory.mktemp(f"{name}-controlnet")
    NETS[name](pipe).save_pretrained(folder / "net")
    _pattern(1, SIZES[name]).save(folder / "a.png")
    _pattern(2, SIZES[name]).save(folder / "b.png")
    return name, model, folder


def _transition(saved, images, batched=True, branches=5):
    """The images of a transition guided by the saved ControlNet."""
    name, model, folder = saved
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
        width=SIZES[name][0],
        height=SIZES[name][1],
        controlnet=[{"model": str(folder / "net"), "images": [str(folder / i) for i in images]}],
    )
    return [np.asarray(i, dtype=np.float64) for i in t.render()]


def test_a_batched_transition_equals_one_at_a_time(saved):
    batched = _transition(saved, ["a.png", "b.png"])
    alone = _transition(saved, ["a.png", "b.png"], batched=False)
    assert len(batched) == len(alone) == 5
    for a, b in zip(batched, alone, strict=True):
        assert np.abs(a - b).max() <= 2


def test_a_per_keyframe_control_image_blends_along_the_transition(saved, monkeypatch):
    _, model, folder = saved
    rows, encoded = [], []
    denoise, means = model.denoise, model._control_means

    def recording(latents, cond, *args, **kwargs):
        rows.extend(cond.tensors["control_0"].split(1))
        return denoise(latents, cond, *args, **kwargs)

    def encoding(pixels):
        encoded.append(len(pixels))
        return means(pixels)

    monkeypatch.setattr(model, "denoise", recording)
    monkeypatch.setattr(model, "_control_means", encoding)
    both = _transition(saved, ["a.png", "b.png"], branches=3)
    monkeypatch.undo()
    only_a = _transition(saved, ["a.png"], branches=3)
    only_b = _transition(saved, ["b.png"], branches=3)
    # each keyframe sees its own image, the branch between them the crossfade of both
    assert np.abs(both[0] - only_a[0]).max() <= 2
    assert np.abs(both[-1] - only_b[-1]).max() <= 2
    assert np.abs(both[0] - both[-1]).mean() > 3
    pixels = [np.asarray(Image.open(folder / p), np.float32) / 255 for p in ("a.png", "b.png")]
    seen = [row[0].permute(1, 2, 0).numpy() for row in rows]
    for expected in (pixels[0], pixels[1], (pixels[0] + pixels[1]) / 2):
        assert min(np.abs(row - expected).max() for row in seen) < 1e-6
    # each denoising call encodes its rows' control images, a batch's at once
    assert sum(encoded) == len(rows) and len(encoded) < len(rows)


def test_equal_control_images_are_encoded_once(saved):
    _, model, folder = saved
    image = Image.open(folder / "a.png")
    cond = model.with_control(model.encode(["a", "b", "c"]), [[image, image, image]])
    pixels = cond.tensors["control_0"]
    calls = []
    encode = model.pipe.vae.encode
    model.pipe.vae.encode = lambda x: calls.append(len(x)) or encode(x)
    try:
        means = model._control_means(pixels)
    finally:
        del model.pipe.vae.encode
    assert calls == [1] and means.shape[0] == 3
    torch.testing.assert_close(means[0], means[2])


# --- loading --------------------------------------------------------------------------------


def test_controlnets_for_another_base_or_kind_are_refused_by_name(family, tmp_path):
    name, model, pipe = family
    other = "flux" if name == "sd3" else "sd3"
    base = {"sd3": "SD3 or SD3.5", "flux": "FLUX.1"}
    ControlNetModel.from_unet(
        tiny_sd_pipeline().unet, conditioning_embedding_out_channels=(16, 32)
    ).save_pretrained(tmp_path / "sd")
    NETS[other](PIPELINES[other]()).save_pretrained(tmp_path / "other")
    for folder, found, made_for in [
        ("sd", "ControlNetModel", "SD 1.x, SD 2.x or SDXL"),
        ("other", CLASSES[other], base[other]),
    ]:
        with pytest.raises(ModelLoadError) as error:
            model.use_controlnets([str(tmp_path / folder)], [1.0])
        assert str(error.value) == (
            f"controlnet '{tmp_path / folder}' is a {found} (made for {made_for}); use a "
            f"ControlNet made for the model's base ({base[name]})"
        )
    with pytest.raises(
        ModelLoadError, match=r"^controlnet 'nobody/no-such-controlnet' is not in the local cache"
    ):
        model.use_controlnets(["nobody/no-such-controlnet"], [1.0])


def test_a_controlnet_of_another_size_or_an_inpainting_one_is_refused(tmp_path):
    model = adapter_for(tiny_sd3_pipeline(), TINY_DEFAULTS, "tiny-sd3")
    wide = tiny_sd3_pipeline()
    config = dict(wide.transformer.config, attention_head_dim=16)
    wide.transformer = type(wide.transformer).from_config(config)
    sd3_controlnet(wide).save_pretrained(tmp_path / "wide")
    with pytest.raises(
        ModelLoadError,
        match=r"^controlnet '.*wide' does not fit this model \(width \(heads x head size\) 64, "
        r"the model's 32\); use a ControlNet made for the model's base \(SD3 or SD3.5\)$",
    ):
        model.use_controlnets([str(tmp_path / "wide")], [1.0])
    SD3ControlNetModel.from_transformer(
        tiny_sd3_pipeline().transformer, num_layers=1, num_extra_conditioning_channels=1
    ).save_pretrained(tmp_path / "inpaint")
    with pytest.raises(
        ModelLoadError,
        match=r"^controlnet '.*inpaint' reads extra conditioning channels \(an inpainting",
    ):
        model.use_controlnets([str(tmp_path / "inpaint")], [1.0])


def test_a_union_flux_controlnet_is_refused(tmp_path):
    pipe = tiny_flux_pipeline()
    flux_controlnet(pipe, num_mode=3).save_pretrained(tmp_path / "union")
    with pytest.raises(
        ModelLoadError,
        match=r"^controlnet '.*union' is a union ControlNet \(it needs a control mode",
    ):
        adapter_for(pipe, TINY_DEFAULTS).use_controlnets([str(tmp_path / "union")], [1.0])


# --- the command line -----------------------------------------------------------------------

FAST = ["--quiet", "--duration", "0.5", "--fps", "8", "--branches", "3", "--steps", "4"]


def _frames(folder):
    return [np.asarray(Image.open(p), dtype=np.int16) for p in sorted(folder.glob("*.png"))]


def test_the_command_line_renders_and_records_a_flow_controlnet(capsys, saved, tmp_path):
    name, _, folder = saved
    argv = ["transition", "a", "b", "--model", f"tiny-{name}", *FAST, "--seeds", "1", "2"]
    argv += ["--width", SIZES[name][0], "--height", SIZES[name][1]]
    control = ["--controlnet", folder / "net", "--control-image", folder / "a.png"]
    code, _, err = run_cli(capsys, *argv, *control, "-o", tmp_path / "t")
    assert code == 0, err
    recorded = yaml.safe_load((tmp_path / "t.yaml").read_text())["settings"]["controlnet"]
    assert recorded == [
        {
            "model": str(folder / "net"),
            "images": [str(folder / "a.png")],
            "scale": 1.0,
            "preprocess": "none",
        }
    ]
    code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "plain")
    assert code == 0, err
    guided, plain = _frames(tmp_path / "t"), _frames(tmp_path / "plain")
    assert len(guided) == len(plain) == 4
    assert np.abs(guided[0] - plain[0]).mean() > 3


def test_an_sd_controlnet_on_a_flow_model_is_one_line_and_exit_2(capsys, saved, tmp_path):
    name, _, folder = saved
    ControlNetModel.from_unet(
        tiny_sd_pipeline().unet, conditioning_embedding_out_channels=(16, 32)
    ).save_pretrained(tmp_path / "sd")
    code, _, err = run_cli(
        capsys,
        "transition",
        "a",
        "b",
        "--model",
        f"tiny-{name}",
        *FAST,
        "--controlnet",
        tmp_path / "sd",
        "--control-image",
        folder / "a.png",
        "-o",
        tmp_path / "t.mp4",
    )
    base = {"sd3": "SD3 or SD3.5", "flux": "FLUX.1"}[name]
    assert code == 2
    assert err == (
        f"latentmorph: error: controlnet '{tmp_path / 'sd'}' is a ControlNetModel (made for SD "
        f"1.x, SD 2.x or SDXL); use a ControlNet made for the model's base ({base})\n"
    )
    assert not (tmp_path / "t.mp4").exists() and not (tmp_path / "t.yaml").exists()


def test_an_animation_takes_a_flow_controlnet(capsys, saved, tmp_path):
    name, _, folder = saved
    (tmp_path / "p.txt").write_text("0: a red circle\n3: a blue square\n")
    argv = ["animate", tmp_path / "p.txt", "--model", f"tiny-{name}", "--quiet", "--steps", "3"]
    argv += ["--mode", "walk", "--seed", "5", "--width", SIZES[name][0]]
    argv += ["--height", SIZES[name][1]]
    control = ["--controlnet", folder / "net", "--control-image", folder / "a.png"]
    code, _, err = run_cli(capsys, *argv, *control, "-o", tmp_path / "guided")
    assert code == 0, err
    code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "plain")
    assert code == 0, err
    guided, plain = _frames(tmp_path / "guided"), _frames(tmp_path / "plain")
    assert len(guided) == len(plain) == 4
    assert all(np.abs(g - p).mean() > 3 for g, p in zip(guided, plain))


def test_compiled_calls_pad_the_controlnets_samples_and_give_the_same_latents(family):
    name, model, pipe = family
    model.control = _guidance(name, model, [NETS[name](pipe)], [0.8])
    width, height = SIZES[name]
    images = [[_pattern(i, SIZES[name]) for i in range(5)]]
    cond = model.with_control(model.encode(list("abcde")), images)
    noise = model.noise([1, 2, 3, 4, 5], width, height, 4)
    guidance = torch.tensor([2.0, 3.0, 5.0, 2.0, 3.0])
    try:
        eager = model.denoise(noise, cond, 4, 0, 4, guidance)[-1]
        model.configure(compile="on")
        call = model._transformer_call()
        sizes = []

        def compiler(fn):  # stands for torch.compile, recording the rows it is called with
            return lambda x, *args: sizes.append(x.shape[0]) or fn(x, *args)

        call.compiler = compiler
        compiled = model.denoise(noise, cond, 4, 0, 4, guidance)[-1]
    finally:
        model.configure(compile="auto")
        model.control = None
    # SD3: 10 rows with classifier-free guidance padded to 12; FLUX: 5 rows padded to 6
    assert sizes == [12 if name == "sd3" else 6] * 4
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)
