import json

import pytest
import torch
from safetensors.torch import save_file

from latentmorph import load_pipeline
from latentmorph.errors import InputError, ModelLoadError
from latentmorph.models.adapter import DiffusionAdapter, SDXLAdapter
from latentmorph.models.presets import PRESETS
from latentmorph.models.tiny import tiny_sd_pipeline, tiny_sdxl_pipeline


def test_every_required_preset_exists():
    for name in ("sdxl-turbo", "sd-turbo", "sdxl", "sd15", "sd21", "demo"):
        assert name in PRESETS
    assert PRESETS["sdxl-turbo"].defaults.steps == 4
    assert PRESETS["sdxl-turbo"].defaults.guidance_scale == 0.0
    assert PRESETS["sdxl"].defaults.width == 1024
    assert PRESETS["sd21"].defaults.width == 768


def test_tiny_presets_load_offline_with_their_family_adapter():
    sd, sdxl = load_pipeline("tiny-sd", device="cpu"), load_pipeline("tiny-sdxl", device="cpu")
    assert type(sd) is DiffusionAdapter and type(sdxl) is SDXLAdapter
    assert sd.dtype == torch.float32 and sd.device.type == "cpu"


def test_local_folder_loads_with_defaults_from_latentmorph_json(tmp_path):
    tiny_sdxl_pipeline().save_pretrained(tmp_path)
    (tmp_path / "latentmorph.json").write_text(
        json.dumps({"steps": 6, "guidance_scale": 2.5, "width": 48, "height": 32})
    )
    model = load_pipeline(str(tmp_path), device="cpu")
    assert isinstance(model, SDXLAdapter)
    assert (model.defaults.steps, model.defaults.guidance_scale) == (6, 2.5)
    assert (model.defaults.width, model.defaults.height) == (48, 32)


def test_local_folder_without_json_gets_family_defaults_at_native_size(tmp_path):
    tiny_sd_pipeline().save_pretrained(tmp_path)
    model = load_pipeline(str(tmp_path), device="cpu")
    assert model.defaults.steps == 30 and model.defaults.width == 32


def test_stochastic_scheduler_is_replaced_with_a_notice(tmp_path):
    from diffusers import EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

    pipe = tiny_sd_pipeline()
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.save_pretrained(tmp_path)
    model = load_pipeline(str(tmp_path), device="cpu")
    assert type(model.pipe.scheduler) is EulerDiscreteScheduler
    assert "EulerAncestralDiscreteScheduler replaced" in model.notices[0]


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth"])
def test_pickle_checkpoints_are_refused_without_the_flag(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"not really")
    with pytest.raises(ModelLoadError, match="pickle checkpoints .* --allow-pickle"):
        load_pipeline(str(path))


def test_single_file_that_needs_the_hub_gives_a_clear_message(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(2)}, str(path))
    with pytest.raises(ModelLoadError, match=r"model '.*model\.safetensors'.*use --model demo"):
        load_pipeline(str(path))


def test_missing_single_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_pipeline(str(tmp_path / "absent.safetensors"))


def test_a_folder_that_is_not_a_pipeline_is_named_as_such(tmp_path):
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(str(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"model {str(tmp_path)!r}: the folder holds no model_index.json")
    assert "network" not in message and "\n" not in message


def test_uncached_hub_model_offline_gives_one_line_advice():
    with pytest.raises(ModelLoadError) as info:
        load_pipeline("sdxl-turbo", device="cpu")
    message = str(info.value)
    assert message.startswith("model 'stabilityai/sdxl-turbo' is not in the local cache")
    assert "--model demo" in message and "\n" not in message


def test_unknown_model_name():
    with pytest.raises(ModelLoadError, match="is not a preset"):
        load_pipeline("my model")


def test_device_and_dtype_are_validated():
    with pytest.raises(InputError, match="device: 'tpu'"):
        load_pipeline("tiny-sd", device="tpu")
    with pytest.raises(InputError, match="dtype: 'float8'"):
        load_pipeline("tiny-sd", device="cpu", dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            load_pipeline("tiny-sd", device="cuda")
