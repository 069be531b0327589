"""Keyframes given as images: inversion, endpoints, size, project files, command line errors."""

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from latentmorph import Transition
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.settings import BlendSettings
from latentmorph.errors import InputError
from latentmorph.image_files import psnr, read_image
from latentmorph.models.loading import load_pipeline
from latentmorph.project import Keyframe, Project
from latentmorph.render import render_project

from .command_line import run_cli

PROMPT_A = "a red circle on a blue background"
PROMPT_B = "a yellow square on a green background"


@pytest.fixture(scope="module")
def demo():
    return load_pipeline("demo", device="cpu")


@pytest.fixture(scope="module")
def generated(demo, tmp_path_factory):
    """Two images the demo model made, as files."""
    folder = tmp_path_factory.mktemp("generated")
    images = Transition(demo, PROMPT_A, PROMPT_B, seeds=(1, 2), branches=2, progress=False)
    first, *_, last = images.render()
    first.save(folder / "a.png")
    last.save(folder / "b.png")
    return folder / "a.png", folder / "b.png"


def photo(width: int = 96, height: int = 64) -> Image.Image:
    """A photo-like image: smooth light, an object with soft edges and grain."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    sky = np.stack([0.4 + 0.5 * y, 0.6 + 0.3 * y, 0.9 - 0.2 * x], axis=-1)
    blob = np.exp(-(((x - 0.55) ** 2 + (y - 0.45) ** 2) / 0.02))[..., None]
    image = sky * (1 - blob) + np.array([0.8, 0.5, 0.2]) * blob
    image += rng.normal(0, 0.03, image.shape)
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))


def regenerated(demo, image: Image.Image, prompt: str, starts: list[int]) -> list[Image.Image]:
    """The image denoised from each of `starts` (steps) of its inverted trajectory."""
    settings, _ = BlendSettings(width=image.width, height=image.height).resolve(demo)
    engine = BlendingEngine(demo, settings)
    cond = engine.encode([prompt])
    trajectory = engine.invert({0: demo.encode_images([image])}, cond)[0]
    return [
        demo.decode(
            demo.denoise(
                trajectory[start],
                cond[0],
                settings.steps,
                start,
                guidance_scale=settings.guidance_scale,
            )[-1]
        )[0]
        for start in starts
    ]


def test_inversion_reproduces_a_generated_image(demo, generated):
    image = Image.open(generated[0]).convert("RGB")
    # measured: 36.0 dB from every start step (a VAE round trip alone: 38.0 dB)
    for again in regenerated(demo, image, PROMPT_A, [0, 10, 17]):
        assert psnr(again, image) > 33


def test_inversion_reproduces_a_photo_as_closely_as_the_vae_does(demo):
    image = photo(64, 64)
    round_trip = psnr(demo.decode(demo.encode_images([image]))[0], image)
    # the demo VAE knows flat shapes only: measured 7.8 dB for the round trip, 7.9 regenerated
    assert psnr(regenerated(demo, image, "", [10])[0], image) > round_trip - 0.5


def test_transition_between_images_starts_and_ends_on_them(demo, generated):
    tr = Transition(demo, "", "", images=generated, seeds=(7, 8), branches=5, progress=False)
    images = tr.render()
    assert len(images) == 5
    for index, path in ((0, generated[0]), (-1, generated[1])):
        given = Image.open(path).convert("RGB")
        round_trip = demo.decode(demo.encode_images([given]))[0]
        difference = np.asarray(images[index], dtype=int) - np.asarray(round_trip, dtype=int)
        assert np.abs(difference).max() <= 1  # decoded in a batch of another size
    assert set(tr.psnr) == {0, 1} and all(v > 35 for v in tr.psnr.values())
    middle = [psnr(image, images[0]) for image in images[1:-1]]
    assert max(middle) < 30  # the way between is not the first image held still


def test_image_keyframes_batched_equal_one_at_a_time(demo, generated):
    def render(batched: bool) -> list[np.ndarray]:
        tr = Transition(
            demo,
            PROMPT_A,
            PROMPT_B,
            images=(generated[0], None),
            seeds=(3, 4),
            branches=5,
            batched=batched,
            progress=False,
        )
        return [np.asarray(image, dtype=int) for image in tr.render()]

    for a, b in zip(render(True), render(False), strict=True):
        assert np.abs(a - b).max() <= 1


def test_an_image_with_a_prompt_keyframe_and_keyframe_crossfeed(demo, generated):
    tr = Transition(
        demo,
        PROMPT_A,
        PROMPT_B,
        images=(None, generated[1]),
        seeds=(3, 4),
        branches=4,
        keyframe_crossfeed=(0.5, 0.5, 0.5),
        progress=False,
    )
    images = tr.render()
    assert list(tr.psnr) == [1] and tr.psnr[1] > 35
    assert psnr(images[-1], Image.open(generated[1]).convert("RGB")) == pytest.approx(tr.psnr[1])


def test_size_follows_the_first_image_and_others_are_fitted(demo, tmp_path):
    photo(128, 64).save(tmp_path / "wide.png")
    photo(40, 40).save(tmp_path / "small.png")
    tr = Transition(
        demo,
        "",
        "",
        images=(tmp_path / "wide.png", tmp_path / "small.png"),
        seeds=(1, 2),
        branches=2,
        progress=False,
    )
    images = tr.render()
    # the demo model's 64x64 pixels at 2:1, in multiples of 8
    assert images[0].size == (88, 48)
    notices = tr._renderer.notices
    assert any("keyframe 2's image 40x40 scaled and cropped to 88x48" in n for n in notices)
    assert any("keyframe 1's image 128x64 scaled and cropped to 88x48" in n for n in notices)


def test_project_file_records_images_and_psnr_and_reproduces(demo, generated, tmp_path):
    project = Project(
        [Keyframe("", 5, image=str(generated[0])), Keyframe(PROMPT_B, 6)],
        fps=4,
        duration=1,
    )
    project.settings = project.settings.replace(branches=3)
    summary = render_project(project, tmp_path / "first", model=demo, progress=False)
    assert "keyframe image PSNR 1: " in summary.line()
    recorded = (tmp_path / "first.yaml").read_text()
    assert f"image: {generated[0]}" in recorded and "psnr: " in recorded
    again = Project.load(tmp_path / "first.yaml")
    assert again.keyframes[0].image == str(generated[0])
    render_project(again, tmp_path / "second", model=demo, progress=False)
    for frame in sorted((tmp_path / "first").iterdir()):
        a = np.asarray(Image.open(frame), dtype=int)
        b = np.asarray(Image.open(tmp_path / "second" / frame.name), dtype=int)
        assert np.abs(a - b).max() <= 1


def test_project_file_image_paths_are_relative_to_the_file(generated, tmp_path):
    (tmp_path / "photos").mkdir()
    Image.open(generated[0]).save(tmp_path / "photos" / "a.png")
    (tmp_path / "p.yaml").write_text(
        "keyframes:\n- {image: photos/a.png, seed: 1}\n- {prompt: a cat, seed: 2, psnr: 3}\n"
    )
    project = Project.load(tmp_path / "p.yaml")
    assert project.keyframes[0].image == str(tmp_path / "photos" / "a.png")
    assert project.keyframes[0].prompt == ""


def test_a_keyframe_needs_a_prompt_or_an_image():
    with pytest.raises(InputError, match=r"keyframes\[1\]\.prompt: missing; give a non-empty"):
        Project([Keyframe("a cat"), Keyframe("")])


def test_parts_keys_follow_the_image_content(demo, tmp_path):
    from latentmorph.render import MovieRenderer

    path = tmp_path / "a.png"
    photo().save(path)
    project = Project([Keyframe("", 1, image=str(path)), Keyframe("a cat", 2)])
    first = MovieRenderer(project, demo, progress=False).segment_key(0)
    assert MovieRenderer(project, demo, progress=False).segment_key(0) == first
    photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path)
    assert MovieRenderer(project, demo, progress=False).segment_key(0) != first


def _huge_header(path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "does not exist; give an image file"),
        (lambda p: p.write_bytes(b"not an image at all"), "is not an image that can be read"),
        (lambda p: Image.new("RGB", (1, 1)).save(p, "PNG"), "is 1x1 pixels; allowed: at least 8"),
        (_huge_header, "larger than allowed: at most 100,000,000 pixels"),
        (lambda p: p.mkdir(), "is a folder; give an image file"),
    ],
)
def test_bad_keyframe_images_give_one_line_and_exit_2(capsys, tmp_path, make, message):
    path = tmp_path / "bad.png"
    if make is not None:
        make(path)
    output = tmp_path / "out.mp4"
    code, _, err = run_cli(
        capsys, "transition", str(path), "a cat", "--model", "demo", "-o", str(output)
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentmorph: error: prompt_a: ")
    assert message in lines[0]
    assert not output.exists() and not output.with_suffix(".yaml").exists()


def test_prompts_count_must_match_the_images(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "transition", "a.png", "a cat", "--prompts", "x", "y", "-o", str(tmp_path / "o.mp4")
    )
    assert code == 2
    assert err.strip() == (
        "latentmorph: error: --prompts: 2 given; give one prompt per keyframe given as an image (1)"
    )


def test_cmyk_16_bit_and_transparent_images_are_converted(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    assert read_image(tmp_path / "cmyk.jpg", "x").getpixel((8, 8)) == pytest.approx(
        (255, 0, 0), abs=2
    )
    Image.fromarray(np.full((16, 16), 32768, np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png", "x").getpixel((8, 8)) == (128, 128, 128)
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert read_image(tmp_path / "clear.png", "x").getpixel((8, 8)) == (255, 255, 255)


def test_crossfeed_pulls_a_prompt_keyframe_toward_an_image_keyframe(demo, generated):
    image = demo.encode_images([Image.open(generated[0]).convert("RGB")])

    def keyframes(crossfeed):
        settings, _ = BlendSettings(branches=2, keyframe_crossfeed=crossfeed).resolve(demo)
        engine = BlendingEngine(demo, settings)
        conds = engine.encode(["", PROMPT_B])
        return engine.begin(conds, [3, 4], images={0: image}).keyframes

    first, last = keyframes((0.0, 0.0, 0.0))
    pulled_first, pulled_last = keyframes((0.8, 0.8, 0.5))
    assert all(torch.equal(a, b) for a, b in zip(first.latents, pulled_first.latents))
    step = 2
    apart = (last.latents[step] - first.latents[step]).norm()
    assert (pulled_last.latents[step] - first.latents[step]).norm() < 0.8 * apart


def test_inversion_keeps_to_the_batch_limit(demo, generated, monkeypatch):
    sizes = []
    denoise = demo.denoise

    def recording(latents, *args, **kwargs):
        sizes.append(latents.shape[0])
        return denoise(latents, *args, **kwargs)

    monkeypatch.setattr(demo, "denoise", recording)
    Transition(
        demo, "", "", images=generated, seeds=(1, 2), branches=2, max_batch=1, progress=False
    ).render()
    assert sizes and max(sizes) == 1


@pytest.mark.parametrize(
    ("image", "message"),
    [([], r"keyframes\[1\]\.image: a list is not allowed; use text"), ("", "missing; give")],
)
def test_an_image_that_is_not_a_path_is_named(image, message):
    # found by fuzzing: a list as image was a TypeError
    with pytest.raises(InputError, match=message):
        Project([Keyframe("a"), Keyframe("b", image=image)])
