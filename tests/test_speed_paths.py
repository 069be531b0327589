"""Speed paths: the UNet's call padded to bucket sizes and compiled (auto, on, off), decoding in
half precision with a float32 redo, and the pixel distance computed on tensors in batches.

CUDA graphs cannot run here; their bucketing and fallback are those of every compiled call,
tested with stand-in compilers. A CPU torch.compile of the tiny UNet takes over a minute cold
(about 40 s more per bucket size), so the real compiler runs on a small stand-in module, and on
the tiny UNet only with LATENTMORPH_COMPILE_TESTS=1.
"""

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from latentmorph import Transition
from latentmorph.blending.distance import cielab, pixel_distance
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.errors import InputError
from latentmorph.models import compiled
from latentmorph.models.adapter import DiffusionAdapter
from latentmorph.models.compiled import CompiledCall, bucket, pad_rows
from latentmorph.models.loading import adapter_for
from latentmorph.models.presets import TINY_DEFAULTS
from latentmorph.models.tiny import tiny_sd_pipeline, tiny_sdxl_pipeline
from latentmorph.pixels import to_images, to_pixels

PROMPTS = ("a red circle on a blue background", "a yellow square on a green background")


def _fresh_sdxl():
    """A tiny SDXL adapter of its own (tests here change how it runs)."""
    return adapter_for(tiny_sdxl_pipeline(), TINY_DEFAULTS, "tiny-sdxl")


def _images(model, **settings):
    tr = Transition(model, *PROMPTS, seeds=(420, 421), progress=False, **settings)
    return [np.asarray(i, dtype=np.int16) for i in tr.render()]


class _Recording:
    """A stand-in compiler that runs the function as it is and records the batch sizes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.compiled = 0

    def __call__(self, fn):
        self.compiled += 1

        def run(x, *args, **kwargs):
            self.sizes.append(x.shape[0])
            return fn(x, *args, **kwargs)

        return run


def _failing(fn):
    def run(*args, **kwargs):
        raise RuntimeError("no C++ compiler\nmore detail")

    return run


def _compiles_on_cpu(monkeypatch, compiler) -> None:
    monkeypatch.setattr(compiled, "default_compiler", compiler)


# --- buckets and padding ----------------------------------------------------------------------


def test_buckets_are_powers_of_two_and_one_and_a_half_times_them():
    assert [bucket(n) for n in range(1, 14)] == [1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12, 16]
    assert bucket(33) == 48 and bucket(49) == 64 and bucket(64) == 64
    assert all(bucket(n) - n < bucket(n) / 3 for n in range(1, 300))


def test_padding_repeats_the_last_row_of_every_batch_tensor():
    x = torch.arange(6.0).view(3, 2)
    kwargs = {"hidden": torch.ones(3, 5), "extra": {"ids": torch.zeros(3, 6)}, "t": torch.tensor(9)}
    padded_x, padded = pad_rows((x, kwargs), 3, 4)
    assert padded_x.tolist() == [[0, 1], [2, 3], [4, 5], [4, 5]]
    assert padded["hidden"].shape == (4, 5) and padded["extra"]["ids"].shape == (4, 6)
    assert padded["t"] is kwargs["t"]
    assert pad_rows(x, 3, 3) is x


def test_padded_unet_batches_equal_unpadded_ones(monkeypatch):
    recording = _Recording()
    _compiles_on_cpu(monkeypatch, recording)
    model = _fresh_sdxl()
    cond = model.encode(["a", "b", "c", "d", "e"])
    noise = model.noise([1, 2, 3, 4, 5], 64, 64, 8)
    model.configure(compile="off")
    eager = model.denoise(noise, cond, 8, 5, 8, torch.tensor([1.0, 3.0, 5.0, 1.0, 3.0]))
    model.configure(compile="on")
    padded = model.denoise(noise, cond, 8, 5, 8, torch.tensor([1.0, 3.0, 5.0, 1.0, 3.0]))
    assert recording.compiled == 1 and recording.sizes == [12, 12, 12]  # 10 rows with guidance
    for a, b in zip(eager, padded, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_compiled_transition_makes_the_eager_images_from_a_few_batch_sizes(monkeypatch):
    recording = _Recording()
    _compiles_on_cpu(monkeypatch, recording)
    model = _fresh_sdxl()
    eager = _images(model, branches=12, guidance_scale=3.0, compile="off")
    assert recording.sizes == []
    padded = _images(model, branches=12, guidance_scale=3.0, compile="on")
    assert set(recording.sizes) <= {1, 2, 3, 4, 6, 8, 12, 16, 24}
    assert len(set(recording.sizes)) <= 4
    for a, b in zip(eager, padded, strict=True):
        assert np.abs(a - b).max() <= 1


def test_auto_and_off_run_eager_off_cuda(monkeypatch):
    recording = _Recording()
    _compiles_on_cpu(monkeypatch, recording)
    model = _fresh_sdxl()
    for mode in ("auto", "off"):
        _images(model, branches=3, compile=mode)
    assert recording.compiled == 0


# --- falling back -----------------------------------------------------------------------------


def test_auto_falls_back_to_eager_with_a_note_when_compiling_fails(monkeypatch, caplog):
    monkeypatch.setattr(compiled, "AUTO_DEVICES", ("cuda", "cpu"))
    _compiles_on_cpu(monkeypatch, _failing)
    model = _fresh_sdxl()
    eager = _images(model, branches=3, compile="off")
    fallen_back = _images(model, branches=3, compile="auto")
    assert all(np.array_equal(a, b) for a, b in zip(eager, fallen_back, strict=True))
    notes = [r.getMessage() for r in caplog.records if "compile" in r.getMessage()]
    assert notes == [
        "compile: the UNet runs eager on cpu; compiling failed (RuntimeError: no C++ compiler)"
    ]


def test_on_raises_when_compiling_fails():
    call = CompiledCall(torch.nn.Identity(), lambda x: x, "UNet", compiler=_failing)
    call.set_mode("on")
    with pytest.raises(
        InputError,
        match=r"^compile: 'on' failed for the UNet on cpu \(RuntimeError: no C\+\+ compiler\); "
        "use auto or off$",
    ):
        call(torch.zeros(3, 2))


def test_out_of_memory_while_compiled_reaches_the_engine():
    def out_of_memory(fn):
        def run(*args, **kwargs):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

        return run

    call = CompiledCall(torch.nn.Identity(), lambda x: x, "UNet", compiler=out_of_memory)
    call.set_mode("on")
    with pytest.raises(RuntimeError, match="out of memory"):
        call(torch.zeros(3, 2))
    with pytest.raises(RuntimeError, match="out of memory"):  # not given up: tried again
        call(torch.zeros(3, 2))


def test_offloaded_weights_run_eager_with_a_note(caplog):
    recording = _Recording()
    module = torch.nn.Identity()
    module._hf_hook = object()  # what diffusers' model CPU offload attaches
    call = CompiledCall(module, lambda x: x * 2, "UNet", compiler=recording)
    call.set_mode("on")
    assert call(torch.ones(3)).tolist() == [2, 2, 2]
    assert recording.compiled == 0
    assert "compile: the UNet runs eager while its weights are offloaded" in caplog.text


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_of_a_small_module_through_the_buckets():
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.SiLU())
    call = CompiledCall(net, net, "test net")
    call.set_mode("on")
    with torch.no_grad():
        for rows in (3, 4):  # one bucket: one compiled graph
            x = torch.randn(rows, 4, 8, 8)
            torch.testing.assert_close(call(x), net(x), atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.skipif(
    not os.environ.get("LATENTMORPH_COMPILE_TESTS"),
    reason="a CPU compile of the tiny UNet takes minutes; set LATENTMORPH_COMPILE_TESTS=1",
)
def test_torch_compiled_tiny_unet_makes_the_eager_images():
    model = adapter_for(tiny_sd_pipeline(), TINY_DEFAULTS, "tiny-sd")
    eager = _images(model, branches=3, compile="off")
    assert np.abs(np.stack(_images(model, branches=3, compile="on")) - eager).max() <= 1


# --- half-precision decoding ------------------------------------------------------------------


def _parameters(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def test_bfloat16_decode_is_close_to_float32_and_keeps_the_vaes_weights():
    model = _fresh_sdxl()
    latents = model.noise([1, 2, 3], 64, 64, 8) / 8
    weights = _parameters(model.pipe.vae)
    model.configure(vae_dtype="float32")
    reference = model.decode_pixels(latents).float()
    model.configure(vae_dtype="bfloat16")
    half = model.decode_pixels(latents)
    assert half.dtype == torch.uint8 and half.shape == (3, 3, 64, 64)
    assert (half.float() - reference).abs().mean() <= 2
    after = _parameters(model.pipe.vae)
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    assert model.pipe.vae.dtype == torch.float32


def test_a_half_precision_batch_with_nan_is_decoded_again_in_float32(monkeypatch, caplog):
    model = _fresh_sdxl()
    vae = model.pipe.vae
    decode = vae.decode

    def overflowing(z, return_dict=True):
        out = decode(z, return_dict=return_dict)
        if vae.dtype == torch.bfloat16 and z.shape[0] == 2:
            out[0][0, 0, 0, 0] = float("nan")
        return out

    monkeypatch.setattr(vae, "decode", overflowing)
    latents = model.noise([1, 2, 3, 4], 64, 64, 8) / 8
    model.configure(vae_dtype="float32")
    reference = model.decode_pixels(latents)
    model.configure(vae_dtype="bfloat16")
    pixels = model.decode_pixels(latents, batch_size=2)  # both batches of 2 come out with NaN
    assert torch.equal(pixels, reference)
    assert "decoding in bfloat16 gave NaN or inf in 2 of 2 batches; decoded them again in " in (
        caplog.text
    )


def test_vae_dtype_auto_is_bfloat16_on_cuda_with_support_else_as_before(monkeypatch):
    model, cpu, cuda = _fresh_sdxl(), torch.device("cpu"), torch.device("cuda")
    assert model._decode_dtype(cpu) is None  # the VAE's own dtype, or its float32 upcast
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert model._decode_dtype(cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert model._decode_dtype(cuda) is None
    model.configure(vae_dtype="float16")
    assert model._decode_dtype(cpu) == torch.float16


# --- settings ---------------------------------------------------------------------------------


def test_compile_and_vae_dtype_are_checked_where_they_enter():
    with pytest.raises(
        InputError, match="^compile: 'fast' is not allowed; use one of auto, on, off$"
    ):
        BlendSettings(compile="fast")
    with pytest.raises(
        InputError,
        match="^vae_dtype: 'half' is not allowed; use one of auto, float32, bfloat16, float16$",
    ):
        BlendSettings(vae_dtype="half")
    with pytest.raises(InputError, match="^compile: 'yes' is not allowed"):
        _fresh_sdxl().configure(compile="yes")
    data = BlendSettings(compile="on", vae_dtype="bfloat16").as_dict()
    assert data["compile"] == "on" and data["vae_dtype"] == "bfloat16"


def test_the_engine_runs_the_model_as_its_settings_say():
    model = _fresh_sdxl()
    settings, _ = BlendSettings(compile="off", vae_dtype="float16").resolve(model)
    BlendingEngine(model, settings)
    assert (model.compile, model.vae_dtype) == ("off", "float16")


# --- distances on tensors ---------------------------------------------------------------------


def _numpy_cielab(rgb: np.ndarray) -> np.ndarray:
    """The pixel distance's colour space as first written, in numpy."""
    c = rgb.astype(np.float32) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]],
        dtype=np.float32,
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    delta = 6 / 29
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def _numpy_pixel_distance(a: Image.Image, b: Image.Image) -> float:
    """The pixel distance as first written: PIL thumbnails, numpy CIELAB."""

    def features(image):
        colour = _numpy_cielab(np.asarray(image.resize((16, 16), Image.BILINEAR)))
        lightness = _numpy_cielab(np.asarray(image.resize((64, 64), Image.BILINEAR)))[..., 0]
        edges = np.concatenate(
            [np.diff(lightness, axis=0).ravel(), np.diff(lightness, axis=1).ravel()]
        )
        return colour, edges

    (ca, ea), (cb, eb) = features(a), features(b)
    return float(np.linalg.norm(ca - cb, axis=-1).mean() + np.abs(ea - eb).mean())


def _pictures(count: int, width: int, height: int, seed: int) -> list[Image.Image]:
    """Smooth gradients with a disc and some noise: colour and edges at every scale."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    images = []
    for _ in range(count):
        base = rng.uniform(0, 255, 3) * (1 - x[..., None]) + rng.uniform(0, 255, 3) * y[..., None]
        cx, cy, r = rng.uniform(0.2, 0.8, 3) * [1, 1, 0.5]
        base[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.uniform(0, 255, 3)
        noisy = base + rng.normal(0, 12, base.shape)
        images.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)))
    return images


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (512, 384), (32, 32)])
def test_pixel_distance_on_tensors_matches_the_pil_and_numpy_one(size):
    images = _pictures(6, *size, seed=sum(size))
    expected = [_numpy_pixel_distance(a, b) for a, b in zip(images, images[1:])]
    got = pixel_distance(to_pixels(images[:-1]), to_pixels(images[1:]))
    assert got == pytest.approx(expected, rel=1e-3)


def test_cielab_of_known_colours():
    rgb = torch.tensor([[255, 255, 255], [0, 0, 0], [255, 0, 0]], dtype=torch.uint8)
    lab = cielab(rgb)
    torch.testing.assert_close(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(lab[1], torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(lab[2], torch.tensor([53.24, 80.09, 67.20]), atol=0.05, rtol=0)


def test_pixels_and_images_convert_both_ways():
    images = _pictures(2, 40, 24, seed=1)
    pixels = to_pixels(images)
    assert pixels.dtype == torch.uint8 and pixels.shape == (2, 3, 24, 40)
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(images, to_images(pixels), strict=True)
    )


def test_the_engine_measures_distances_on_the_devices_tensors_once_a_round(tiny_sd):
    batches = []

    def distance(a, b):
        assert a.dtype == b.dtype == torch.uint8 and a.device == tiny_sd.device
        batches.append(a.shape[0])
        return pixel_distance(a, b)

    settings, _ = BlendSettings(plan="3@s4 5@s5 9@s6", placement="even").resolve(tiny_sd)
    engine = BlendingEngine(tiny_sd, settings, distance=distance)
    conds = engine.encode(list(PROMPTS))
    (tree,) = engine.transitions(engine.begin(conds, [1, 2]), conds)
    # the keyframes, then the first level's chain, then one batch for each later level
    assert batches == [1, 2, 4, 8]
    for branch, image in zip(tree.branches, tree.images, strict=True):
        assert np.array_equal(to_pixels([image])[0].numpy(), branch.pixels.numpy())
    expected = pixel_distance(
        torch.stack([b.pixels for b in tree.branches[:-1]]),
        torch.stack([b.pixels for b in tree.branches[1:]]),
    )
    assert tree.distances == pytest.approx(expected)


def test_the_uis_compile_field_reaches_the_settings_and_comes_back():
    from latentmorph.ui import forms
    from latentmorph.ui.app import build_app

    form = {**forms.BLEND_DEFAULTS, **forms.MOVIE_DEFAULTS}
    assert forms.blend_settings(form).compile == "auto"
    settings = forms.blend_settings({**form, "compile": "off"})
    assert settings.compile == "off" and forms.blend_form(settings)["compile"] == "off"
    app = build_app("tiny-sd")
    try:
        (field,) = [
            block
            for block in app.blocks.values()
            if getattr(block, "label", None) == "Compile the UNet"
        ]
        assert [value for _, value in field.choices] == ["auto", "on", "off"]
    finally:
        app.close()


def test_the_flags_reach_the_model_and_the_project_file(capsys, tmp_path, monkeypatch):
    import yaml

    from latentmorph.cli import main

    seen = []
    configure = DiffusionAdapter.configure

    def recording(self, compile="auto", vae_dtype="auto"):
        seen.append((compile, vae_dtype))
        configure(self, compile, vae_dtype)

    monkeypatch.setattr(DiffusionAdapter, "configure", recording)
    out = tmp_path / "t.mp4"
    argv = ["transition", "a", "b", "-o", str(out), "--model", "tiny-sd", "--quiet"]
    argv += ["--duration", "1", "--fps", "8", "--branches", "3"]
    assert main([*argv, "--compile", "off", "--vae-dtype", "float32"]) == 0
    assert seen[-1] == ("off", "float32")
    settings = yaml.safe_load((tmp_path / "t.yaml").read_text())["settings"]
    assert (settings["compile"], settings["vae_dtype"]) == ("off", "float32")
    movie = ["movie", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "m.mp4"), "--quiet"]
    assert main([*movie, "--vae-dtype", "bfloat16"]) == 0
    assert seen[-1] == ("off", "bfloat16")
    assert main(argv) == 0 and seen[-1] == ("auto", "auto")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*argv, "--compile", "fast"])
    assert "argument --compile: invalid choice: 'fast'" in capsys.readouterr().err
