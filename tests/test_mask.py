"""A region kept still (--mask): latents held to keyframe 1's, pixels composited, every frame."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from latentmorph import Transition
from latentmorph.animation.render import AnimationRenderer
from latentmorph.animation.schedules import parse_prompt_schedule
from latentmorph.animation.settings import Animation
from latentmorph.blending.engine import BlendingEngine
from latentmorph.blending.kept_region import KeptRegion
from latentmorph.blending.settings import BlendSettings
from latentmorph.models.loading import adapter_for, load_pipeline
from latentmorph.models.tiny import tiny_sd_pipeline
from latentmorph.project import Project
from latentmorph.project_files import load_project

from .command_line import run_cli

SIZE = 64
KEPT = 24
"""Columns on the left that the test mask keeps (black); the rest may change (white)."""
PROMPTS = ("a green triangle", "a yellow star")


@pytest.fixture(scope="module")
def demo():
    return load_pipeline("demo", device="cpu")


def draw_mask(path: Path, size: tuple[int, int] = (SIZE, SIZE), grey: bool = False) -> Path:
    """A mask that keeps the left KEPT/SIZE of the frame, with the next third grey if `grey`."""
    width, height = size
    mask = np.full((height, width), 255, np.uint8)
    mask[:, : width * KEPT // SIZE] = 0
    if grey:
        mask[:, width * KEPT // SIZE : width * 2 * KEPT // SIZE] = 128
    Image.fromarray(mask).save(path)
    return path


def _transition(capsys, output: Path, mask: Path, *extra) -> list[np.ndarray]:
    code, _, err = run_cli(
        capsys,
        "transition",
        *PROMPTS,
        "-o",
        output,
        "--seeds",
        1,
        2,
        "--branches",
        6,
        "--duration",
        1,
        "--fps",
        16,
        "--quiet",
        "--mask",
        mask,
        *extra,
    )
    assert code == 0, err
    return [np.asarray(Image.open(p), dtype=np.int16) for p in sorted(output.glob("*.png"))]


def _largest_change(frames: list[np.ndarray], columns: slice) -> int:
    """The largest change of a pixel in `columns` between consecutive frames."""
    return max(int(np.abs(b - a)[:, columns].max()) for a, b in zip(frames, frames[1:]))


def test_a_masked_transition_keeps_the_kept_pixels_in_every_frame(capsys, tmp_path):
    frames = _transition(capsys, tmp_path / "t", draw_mask(tmp_path / "mask.png"))
    assert len(frames) == 16
    assert _largest_change(frames, slice(0, KEPT)) == 0
    assert max(int(np.abs(f - frames[0])[:, :KEPT].max()) for f in frames) == 0
    assert np.abs(frames[-1] - frames[0])[:, KEPT + 8 :].mean() > 20


@pytest.mark.parametrize("max_batch", [None, 1])
def test_the_kept_latents_follow_keyframe_1_at_every_step(demo, tmp_path, max_batch):
    mask = draw_mask(tmp_path / "mask.png")
    settings, _ = BlendSettings(branches=6, mask=str(mask), max_batch=max_batch).resolve(demo)
    engine = BlendingEngine(demo, settings)
    conds = engine.encode(list(PROMPTS))
    (tree,) = engine.transitions(engine.begin(conds, [1, 2]), conds)
    first, *others = tree.branches
    cells = KEPT // demo.size_multiple  # latent columns wholly under black
    for branch in others:
        for step in range(branch.start, settings.steps):
            held, own = branch.at(step), first.at(step)
            torch.testing.assert_close(held[..., :cells], own[..., :cells], rtol=0, atol=1e-6)
            assert not torch.allclose(held[..., cells + 1 :], own[..., cells + 1 :])


def test_grey_keeps_partly(capsys, tmp_path):
    frames = _transition(capsys, tmp_path / "t", draw_mask(tmp_path / "mask.png", grey=True))
    change = [np.abs(f - frames[0]).mean(axis=(0, 2)) for f in frames]
    kept = max(c[:KEPT].max() for c in change)
    grey = max(c[KEPT + 4 : 2 * KEPT - 4].mean() for c in change)
    free = max(c[2 * KEPT + 4 :].mean() for c in change)
    assert kept == 0
    assert 5 < grey < 0.8 * free


def test_a_mask_of_another_size_is_stretched_to_the_frame(capsys, tmp_path):
    wide = draw_mask(tmp_path / "wide.png", size=(300, 100))
    region = KeptRegion(Image.open(wide), SIZE, SIZE, 4)
    same = KeptRegion(Image.open(draw_mask(tmp_path / "same.png")), SIZE, SIZE, 4)
    assert (region.keep[:, : KEPT - 1] == 1).all() and (region.keep[:, KEPT + 1 :] == 0).all()
    assert np.abs(region.alpha - same.alpha).max() < 0.5
    frames = _transition(capsys, tmp_path / "t", wide)
    assert _largest_change(frames, slice(0, KEPT - 1)) == 0


def test_the_feather_lies_on_the_changing_side_only(tmp_path):
    region = KeptRegion(Image.open(draw_mask(tmp_path / "mask.png")), SIZE, SIZE, 4)
    alpha = region.alpha[0, :, 0]
    assert (alpha[:KEPT] == 1).all()
    assert 0 < alpha[KEPT] < 1 and alpha[KEPT + 12] == pytest.approx(0, abs=1e-3)
    assert (np.diff(alpha[KEPT:]) <= 0).all()


@pytest.mark.parametrize(
    "changes",
    [{"mode": "blend"}, {"mode": "walk"}, {"translation_x": "2", "strength": "0.6"}],
    ids=["blend", "walk", "walk-with-motion"],
)
def test_a_masked_animation_keeps_the_first_frames_region(demo, tmp_path, changes):
    mask = draw_mask(tmp_path / "mask.png")
    schedule = parse_prompt_schedule(f"0: {PROMPTS[0]}\n9: {PROMPTS[1]}")
    animation = Animation(
        prompts=schedule, seed=3, steps=8, blend=BlendSettings(mask=str(mask), branches=4)
    )
    animation = Animation(**{**vars(animation), **changes})
    frames = [
        np.asarray(i, dtype=np.int16)
        for i in AnimationRenderer(animation, demo, False).render_frames()
    ]
    assert len(frames) == 10
    assert _largest_change(frames, slice(0, KEPT)) == 0
    assert np.abs(frames[-1] - frames[0])[:, KEPT + 8 :].mean() > 20


def test_a_walk_holds_the_kept_latents_to_the_first_frame(demo, tmp_path, monkeypatch):
    mask = draw_mask(tmp_path / "mask.png")
    schedule = parse_prompt_schedule(f"0: {PROMPTS[0]}\n5: {PROMPTS[1]}")
    animation = Animation(
        prompts=schedule, seed=3, steps=6, mode="walk", blend=BlendSettings(mask=str(mask))
    )
    trajectories = []
    denoise = demo.denoise

    def recording(*args, **kwargs):
        trajectories.append(denoise(*args, **kwargs))
        return trajectories[-1]

    monkeypatch.setattr(demo, "denoise", recording)
    list(AnimationRenderer(animation, demo, False).render_frames())
    cells = KEPT // demo.size_multiple
    (batch,) = trajectories  # six frames in one batch: frame 0 is row 0
    for latents in batch[:-1]:
        torch.testing.assert_close(
            latents[1:, ..., :cells],
            latents[:1, ..., :cells].expand(5, -1, -1, -1),
            atol=1e-6,
            rtol=0,
        )


def _huge_header(path: Path) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "does not exist"),
        (lambda p: p.write_text("not a picture") and p, "is not an image that can be read"),
        (lambda p: Image.new("L", (1, 1)).save(p, "PNG") or p, "is 1x1 pixels; allowed: at least"),
        (_huge_header, "allowed: at most 100,000,000 pixels"),
    ],
    ids=["missing", "not-an-image", "1x1", "huge-header"],
)
@pytest.mark.parametrize("command", ["transition", "animate"])
def test_a_bad_mask_gives_one_line_and_exit_2(capsys, tmp_path, make, message, command):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    mask = make(inputs / "mask.png")
    (inputs / "s.txt").write_text("0: a\n4: b\n")
    first = ["transition", "a", "b"] if command == "transition" else ["animate", inputs / "s.txt"]
    code, _, err = run_cli(capsys, *first, "-o", out / "x.mp4", "--quiet", "--mask", mask)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("latentmorph: error: --mask: ")
    assert message in err
    assert list(out.iterdir()) == []


def test_a_project_file_with_a_missing_mask_names_the_file(capsys, tmp_path):
    project = tmp_path / "p.yaml"
    project.write_text("keyframes: [a, b]\nsettings: {mask: gone.png, branches: 2}\n")
    code, _, err = run_cli(capsys, "movie", project, "--quiet", "-o", tmp_path / "p")
    assert code == 2 and err.count("\n") == 1
    assert f"mask: {tmp_path / 'gone.png'} does not exist" in err
    assert not (tmp_path / "p").exists()


def test_the_project_file_records_the_mask_and_reproduces_the_movie(capsys, tmp_path):
    mask = draw_mask(tmp_path / "mask.png")
    frames = _transition(capsys, tmp_path / "t", mask)
    recorded = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert recorded["settings"]["mask"] == str(mask)
    code, _, err = run_cli(
        capsys, "movie", tmp_path / "t.yaml", "--quiet", "-o", tmp_path / "again"
    )
    assert code == 0, err
    again = [
        np.asarray(Image.open(p), dtype=np.int16)
        for p in sorted((tmp_path / "again").glob("*.png"))
    ]
    assert len(again) == len(frames)
    assert max(int(np.abs(a - b).max()) for a, b in zip(frames, again)) <= 1


def test_mask_paths_in_project_files_are_relative_to_the_file(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    draw_mask(folder / "m.png")
    (folder / "movie.yaml").write_text("keyframes: [a, b]\nsettings: {mask: m.png}\n")
    movie = load_project(folder / "movie.yaml")
    assert movie.settings.mask == str(folder / "m.png")
    assert ("mask", folder / "m.png") in movie.inputs()
    assert Project.load(folder / "movie.yaml").settings.mask == str(folder / "m.png")
    (folder / "anim.yaml").write_text(
        "kind: animation\nprompts: [{frame: 0, prompt: a}]\nblend: {mask: m.png}\n"
    )
    animation = load_project(folder / "anim.yaml")
    assert animation.blend.mask == str(folder / "m.png")
    assert ("mask", folder / "m.png") in animation.inputs()
    assert Animation.from_dict(animation.to_dict()).blend.mask == str(folder / "m.png")


def test_an_inpainting_unet_is_taken_in_any_sd_pipeline():
    pipe = tiny_sd_pipeline()
    pipe.unet.register_to_config(in_channels=9)
    assert adapter_for(pipe, name="tiny").inpainting  # see tests/test_inpainting.py


def test_an_image_keyframe_1_is_the_kept_region(demo, tmp_path):
    photo = Image.new("RGB", (SIZE, SIZE), (200, 40, 40))
    photo.paste((20, 20, 220), (0, 0, 30, SIZE))
    photo.save(tmp_path / "photo.png")
    images = (tmp_path / "photo.png", None)
    mask = str(draw_mask(tmp_path / "mask.png"))
    transition = Transition(
        demo, "", PROMPTS[1], seeds=(1, 2), images=images, branches=6, mask=mask, progress=False
    )
    frames = [np.asarray(i, dtype=np.int16) for i in transition.render()]
    assert max(int(np.abs(f - frames[0])[:, :KEPT].max()) for f in frames) == 0
    first, *others = transition.tree.branches
    cells = KEPT // demo.size_multiple
    for branch in others:
        for step in range(branch.start, demo.defaults.steps):
            torch.testing.assert_close(
                branch.at(step)[..., :cells], first.at(step)[..., :cells], rtol=0, atol=1e-5
            )


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        ("movie", "settings: {mask: gone.png}", "settings.mask: "),
        (
            "movie",
            "settings: {controlnet: [{model: net, images: [gone.png]}]}",
            "settings.controlnet[0].images[0]: ",
        ),
        ("animation", "blend: {mask: gone.png}", "blend.mask: "),
    ],
)
def test_a_project_files_missing_mask_or_control_image_is_found_before_the_model_loads(
    capsys, tmp_path, kind, settings, message
):
    keyframes = (
        "keyframes: [{prompt: a, seed: 1}, {prompt: b, seed: 2}]"
        if kind == "movie"
        else "prompts: [{frame: 0, prompt: a}]"
    )
    project = tmp_path / "p.yaml"
    project.write_text(f"kind: {kind}\nmodel: {tmp_path / 'no-model'}\n{keyframes}\n{settings}\n")
    code, _, err = run_cli(capsys, "movie", project, "-o", tmp_path / "out.mp4")
    assert code == 2 and message in err and "gone.png does not exist" in err
    assert "no-model" not in err
