"""The bundled demo model: its dataset, its shipped files and the quality of its images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPTokenizer

from latentmorph.demo.components import WORDS
from latentmorph.demo.dataset import (
    PALETTE,
    SHAPES,
    Sample,
    all_samples,
    parse_caption,
    render,
    sample_stream,
)
from latentmorph.demo.quality import TEST_PROMPTS, TEST_SEEDS, check, evaluate
from latentmorph.models.presets import DEMO_MODEL_DIR


def test_dataset_is_deterministic():
    assert sample_stream(seed=3, count=50) == sample_stream(seed=3, count=50)
    assert sample_stream(seed=3, count=50) != sample_stream(seed=4, count=50)
    sample = Sample("red", "triangle", "large", "blue")
    assert np.array_equal(render(sample), render(sample))


def test_captions_match_pixels():
    samples = all_samples()
    assert len(samples) == 8 * 3 * 3 * 7
    for sample in samples:
        assert parse_caption(sample.caption) == sample
        case = check(sample.caption, 0, render(sample))
        assert case.colours_ok and case.shape_ok, (sample.caption, case.analysis)


def test_sizes_are_ordered():
    for shape in SHAPES:
        areas = [
            int((render(Sample("white", shape, size, "black")) > 128).sum())
            for size in ("small", "medium", "large")
        ]
        assert areas == sorted(areas) and len(set(areas)) == 3


def test_parse_caption_rejects_other_text():
    with pytest.raises(ValueError):
        parse_caption("a photo of a cat")


def test_test_prompts_cover_vocabulary():
    words = {w for prompt in TEST_PROMPTS for w in prompt.split()}
    assert set(PALETTE) | set(SHAPES) | {"small", "large"} <= words
    assert len(TEST_PROMPTS) >= 12


def test_shipped_files():
    weights = list(DEMO_MODEL_DIR.rglob("*.safetensors"))
    assert len(weights) == 4
    total = sum(f.stat().st_size for f in DEMO_MODEL_DIR.rglob("*") if f.is_file())
    assert total <= 30 * 2**20
    for path in weights:
        assert all(t.dtype == torch.float16 for t in load_file(path).values()), path
    defaults = json.loads((DEMO_MODEL_DIR / "latentmorph.json").read_text())
    assert set(defaults) == {"steps", "guidance_scale", "width", "height"}
    scheduler = json.loads((DEMO_MODEL_DIR / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] in {"DDIMScheduler", "EulerDiscreteScheduler"}
    training = json.loads((DEMO_MODEL_DIR / "training.json").read_text())
    assert {"command", "seed", "duration_s", "device", "steps"} <= set(training)
    assert (DEMO_MODEL_DIR / "README.md").is_file()


def test_each_word_is_one_token():
    tokenizer = CLIPTokenizer.from_pretrained(DEMO_MODEL_DIR / "tokenizer")
    for word in WORDS:
        assert len(tokenizer.tokenize(word)) == 1, word


@pytest.fixture(scope="module")
def pipeline() -> StableDiffusionXLPipeline:
    pipe = StableDiffusionXLPipeline.from_pretrained(DEMO_MODEL_DIR)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_images_show_the_prompt(pipeline):
    defaults = json.loads((DEMO_MODEL_DIR / "latentmorph.json").read_text())
    report = evaluate(
        pipeline,
        TEST_PROMPTS,
        TEST_SEEDS,
        steps=defaults["steps"],
        guidance_scale=defaults["guidance_scale"],
        width=defaults["width"],
        height=defaults["height"],
    )
    failures = [(c.prompt, c.seed, c.analysis) for c in report.cases if not c.colours_ok]
    assert report.colour_rate >= 0.9, failures
    assert report.shape_rate >= 0.75, [(c.prompt, c.analysis) for c in report.cases]


def test_generation_is_deterministic(pipeline):
    def image() -> np.ndarray:
        result = pipeline(
            TEST_PROMPTS[0],
            num_inference_steps=4,
            generator=torch.Generator().manual_seed(5),
            height=64,
            width=64,
        )
        return np.asarray(result.images[0])

    assert np.array_equal(image(), image())


def test_train_demo_command_is_deterministic_and_records_the_run(tmp_path, monkeypatch):
    from latentmorph.cli import main
    from latentmorph.demo import train
    from latentmorph.models.loading import load_pipeline

    monkeypatch.setattr(train, "write_model_card", lambda pipeline, folder: None)
    for name in ("a", "b"):
        argv = [
            "train-demo",
            "--output",
            str(tmp_path / name),
            "--seed",
            "5",
            "--vae-steps",
            "2",
            "--unet-steps",
            "2",
            "--device",
            "cpu",
        ]
        assert main(argv) == 0
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert record["seed"] == 5 and record["device"] == "cpu"
    assert record["steps"] == {"vae": 2, "unet_and_text_encoders": 2}
    assert record["duration_s"] > 0 and "train-demo" in record["command"]
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        (weights,) = (tmp_path / "a" / part).glob("*.safetensors")
        assert weights.read_bytes() == (tmp_path / "b" / part / weights.name).read_bytes()
    model = load_pipeline(str(tmp_path / "a"), device="cpu")
    assert (model.defaults.steps, model.defaults.width) == (20, 64)


def test_demo_transition_goes_from_the_first_prompt_to_the_second_smoothly(tmp_path):
    from latentmorph import Transition, load_pipeline

    first = "a red circle on a blue background"
    last = "a yellow square on a green background"
    tr = Transition(load_pipeline("demo", device="cpu"), first, last, seeds=(1, 2), progress=False)
    tr.write(tmp_path / "frames", duration=3, fps=10)
    frames = [
        np.asarray(Image.open(p), dtype=np.float32)
        for p in sorted((tmp_path / "frames").glob("*.png"))
    ]
    assert len(frames) == 30
    assert check(first, 1, frames[0]).colours_ok and check(first, 1, frames[0]).shape_ok
    assert check(last, 2, frames[-1]).colours_ok and check(last, 2, frames[-1]).shape_ok
    steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    # the whole change spread over 29 steps, none a jump: bound = 4x an even share
    total = np.abs(frames[-1] - frames[0]).mean()
    assert max(steps) <= 4 * total / 29, (max(steps), total)
