import re
import subprocess
import sys

import pytest
import torch
import yaml
from imageio_ffmpeg import count_frames_and_secs
from PIL import Image

from latentmorph.cli import main

from .command_line import run_cli

FAST = ["--model", "tiny-sd", "--quiet", "--duration", "1", "--fps", "8"]


def test_transition_writes_movie_project_and_summary(capsys, tmp_path):
    out = tmp_path / "t.mp4"
    code, stdout, _ = run_cli(
        capsys,
        "transition",
        "a red circle",
        "a blue square",
        "-o",
        str(out),
        *FAST,
        "--seeds",
        "1",
        "2",
        "--branches",
        "4",
    )
    assert code == 0
    assert count_frames_and_secs(str(out))[0] == 8
    assert re.fullmatch(
        rf"4 images computed, \d+ UNet steps \(\d+ image-steps\), 8 frames in [\d.]+ s "
        rf"-> {re.escape(str(out))} \(project: {re.escape(str(tmp_path / 't.yaml'))}\)\n",
        stdout,
    )
    project = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert [k["seed"] for k in project["keyframes"]] == [1, 2]
    assert project["model"] == "tiny-sd" and project["fps"] == 8


def test_movie_reproduces_from_the_project_file(capsys, tmp_path):
    run_cli(capsys, "transition", "a", "b", "-o", str(tmp_path / "t"), *FAST, "--branches", "3")
    code, stdout, _ = run_cli(capsys, "movie", str(tmp_path / "t.yaml"), "--quiet")
    assert code == 0
    assert (tmp_path / "t.mp4").is_file()
    assert "3 images computed" in stdout


def test_out_of_memory_is_a_note_and_max_batch_overrides_the_project(capsys, tmp_path, monkeypatch):
    from latentmorph.models.adapter import DiffusionAdapter

    denoise, sizes = DiffusionAdapter.denoise, []

    def one_fits(self, latents, *args, **kwargs):
        sizes.append(latents.shape[0])
        if latents.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return denoise(self, latents, *args, **kwargs)

    monkeypatch.setattr(DiffusionAdapter, "denoise", one_fits)
    out = tmp_path / "t.mp4"
    argv = ["transition", "a", "b", "-o", str(out), *FAST, "--plan", "4@s4", "--placement", "even"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and count_frames_and_secs(str(out))[0] == 8
    # the keyframes' batch with the first level (4 images: placed evenly, all in one round)
    # fails at its start, then the keyframes alone (2); then everything runs one image at a time
    note = "latentmorph: note: out of memory on cpu with {} images in a batch; going on with "
    note += "at most {}\n"
    assert err == note.format(4, 2) + note.format(2, 1)
    assert sizes == [2, 2, 1, 1, 1, 1]
    sizes.clear()
    code, _, err = run_cli(capsys, "movie", str(tmp_path / "t.yaml"), "--quiet", "--max-batch", "1")
    assert code == 0 and sizes == [1, 1, 1, 1]
    assert err == (  # the project file read is an input: kept
        f"latentmorph: note: project file written as {tmp_path / 't.render.yaml'}: "
        f"{tmp_path / 't.yaml'} is an input and is not overwritten\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--depth-strength", "1.5"],
            "argument --depth-strength: '1.5' is not allowed; use a number from 0 to 1",
        ),
        (["--depth-strength", "-0.1"], "argument --depth-strength: '-0.1' is not allowed"),
        (["--branches", "1"], "argument --branches: '1' is not allowed; use a whole number from 2"),
        (["--width", "0"], "argument --width: '0' is not allowed; use a whole number from 1 to"),
        (["--height", "-64"], "argument --height: '-64' is not allowed"),
        (["--fps", "0"], "argument --fps: '0' is not allowed; use a number above 0"),
        (["--duration", "-1"], "argument --duration: '-1' is not allowed"),
        (["--fps", "nan"], "argument --fps: 'nan' is not allowed"),
        (["--duration", "0.1"], "--duration: 0.1 s at 8 fps gives 1 frame(s); a transition"),
        (["--model", "nosuchmodel"], "model 'nosuchmodel' is not a preset"),
        (
            ["--model", "owner/not-cached"],
            "is not in the local cache and the hub cannot be reached",
        ),
        (["--model", "weights.ckpt"], "pickle checkpoints"),
        (["--quality", "best"], "argument --quality: invalid choice: 'best'"),
        (["--plan", "4@2"], "--plan: injection strength 2 in '4@2' is not allowed"),
        (["--branches", "4", "--time-budget", "3"], "not allowed with argument --branches"),
        (["--parental-crossfeed", "2", "1", "1"], "--parental-crossfeed: POWER '2' is not allowed"),
        (["--device", "tpu"], "device: 'tpu' is not allowed"),
        (["--seeds", "-1", "3"], "argument --seeds: '-1' is not allowed"),
        (["--max-batch", "0"], "argument --max-batch: '0' is not allowed; use a whole number"),
        (["--placement", "random"], "argument --placement: invalid choice: 'random'"),
        (["--sheet", "out.jpg"], "sheet: 'out.jpg' is not allowed; give a file name ending in"),
        (["--sheet", "missing/s.png"], "its folder"),
    ],
)
def test_bad_transition_input_exits_2_with_one_line(capsys, tmp_path, args, message):
    out = tmp_path / "t.mp4"
    argv = ["transition", "a", "b", "-o", str(out), *FAST, *args]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("keyframes: [a, b\n", "malformed YAML at line 2"),
        ("keyframes:\n  - prompt: a\n  - seed: 3\n", "keyframes[1].prompt: missing"),
        ("keyframes:\n  - prompt: ''\n  - prompt: b\n", "keyframes[0].prompt: missing"),
        ("keyframes:\n  - prompt: a\n", "keyframes: 1 given; at least 2 are needed"),
        ("model: demo\n", "keyframes: missing"),
        ("keyframes: [a, b]\nsettings: {branch: 3}\n", "settings.branch: unknown field"),
        ("keyframes: [a, b]\nsettings: {depth_strength: 3}\n", "depth_strength: 3 is not allowed"),
        ("keyframes: [a, b]\nfps: -3\n", "fps: -3 is not allowed"),
        ("keyframes: [a, b]\nspeed: 3\n", "speed: unknown field"),
        ("- just a list\n", "must hold a mapping"),
    ],
)
def test_bad_project_file_exits_2_naming_file_and_field(capsys, tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "movie", str(path), "-o", str(tmp_path / "m.mp4"), "--quiet")
    assert code == 2
    assert err.count("\n") == 1
    assert f"latentmorph: error: {path}: " in err and message in err
    assert not (tmp_path / "m.mp4").exists()


@pytest.mark.parametrize(
    "output, message",
    [
        ("missing/t.mp4", "does not exist"),
        ("t.avi", "unknown output extension '.avi'"),
    ],
)
def test_bad_output_path_exits_2(capsys, tmp_path, output, message):
    code, _, err = run_cli(capsys, "transition", "a", "b", "-o", str(tmp_path / output), *FAST)
    assert code == 2 and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_console_script_runs_and_reports_errors_on_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "latentmorph.cli",
            "transition",
            "a",
            "b",
            "--branches",
            "1",
            "-o",
            str(tmp_path / "x.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "latentmorph: error: argument --branches: '1' is not allowed; use a whole number from 2 "
        "to 2000 (images, both keyframes included)"
    ]


def test_help_documents_every_transition_flag(capsys):
    with pytest.raises(SystemExit):
        main(["transition", "--help"])
    text = capsys.readouterr().out
    for flag in [
        "--output",
        "--model",
        "--seeds",
        "--steps",
        "--branches",
        "--time-budget",
        "--depth-strength",
        "--quality",
        "--plan",
        "--guidance-scale",
        "--guidance-damper",
        "--negative-prompt",
        "--prompt-weighting",
        "--width",
        "--height",
        "--duration",
        "--fps",
        "--keyframe-crossfeed",
        "--parental-crossfeed",
        "--one-at-a-time",
        "--max-batch",
        "--distance",
        "--placement",
        "--sheet",
        "--device",
        "--dtype",
        "--allow-pickle",
        "--quiet",
    ]:
        assert flag in text


def test_placement_reaches_the_engine_and_the_project_file(capsys, tmp_path, monkeypatch):
    from latentmorph.blending import engine

    used = []

    def recording(name):
        used.append(name)
        return get_placement(name)

    get_placement = engine.get_placement
    monkeypatch.setattr(engine, "get_placement", recording)
    out = tmp_path / "t.mp4"
    argv = ["transition", "a", "b", "-o", str(out), *FAST, "--branches", "4"]
    code, _, _ = run_cli(capsys, *argv, "--placement", "sequential")
    assert code == 0 and used == ["sequential"]
    recorded = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert recorded["settings"]["placement"] == "sequential"
    code, _, _ = run_cli(capsys, "movie", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "m.mp4"))
    assert code == 0 and used == ["sequential", "sequential"]
    assert yaml.safe_load((tmp_path / "m.yaml").read_text())["settings"]["placement"] == (
        "sequential"
    )
    code, _, _ = run_cli(capsys, *argv)
    assert code == 0 and used[-1] == "adaptive"
    assert yaml.safe_load((tmp_path / "t.yaml").read_text())["settings"]["placement"] == "adaptive"


@pytest.mark.parametrize("placement", ["adaptive", "even", "sequential"])
def test_placement_round_trips_through_a_project_file(tmp_path, placement):
    from latentmorph.blending.settings import BlendSettings
    from latentmorph.project import Keyframe, Project

    project = Project(
        keyframes=[Keyframe("a", 1), Keyframe("b", 2)],
        settings=BlendSettings(branches=5, placement=placement),
    )
    path = project.save(tmp_path / "p.yaml")
    assert yaml.safe_load(path.read_text())["settings"]["placement"] == placement
    assert Project.load(path).settings == project.settings


def test_a_bad_placement_in_a_project_file_names_the_file_and_field(capsys, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("keyframes: [a, b]\nsettings: {placement: random}\n")
    code, _, err = run_cli(capsys, "movie", str(path), "-o", str(tmp_path / "m.mp4"), "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert f"latentmorph: error: {path}: placement: 'random' is not allowed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


def test_sheet_is_written_beside_the_movie_and_named_in_the_summary(capsys, tmp_path):
    out, sheet = tmp_path / "t.mp4", tmp_path / "t-sheet.png"
    argv = ["transition", "a", "b", "-o", str(out), *FAST, "--branches", "4"]
    code, stdout, _ = run_cli(capsys, *argv, "--sheet", str(sheet))
    assert code == 0
    assert Image.open(sheet).format == "PNG"
    assert stdout.count("\n") == 1
    assert stdout.endswith(f"-> {out} (project: {tmp_path / 't.yaml'}, sheet: {sheet})\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t-sheet.png", "t.mp4", "t.yaml"]

    again = tmp_path / "m-sheet.png"
    argv = ["movie", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "m.mp4"), "--quiet"]
    code, stdout, _ = run_cli(capsys, *argv, "--sheet", str(again))
    assert code == 0 and Image.open(again).format == "PNG"
    assert stdout.endswith(f", sheet: {again})\n")


def test_a_bad_sheet_path_exits_2_before_loading_the_model(capsys, tmp_path, monkeypatch):
    from latentmorph.models import loading

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "load_pipeline", no_loading)
    out = tmp_path / "t.mp4"
    for sheet in (tmp_path / "out.jpg", tmp_path / "missing" / "s.png", tmp_path):
        code, stdout, err = run_cli(
            capsys, "transition", "a", "b", "-o", str(out), *FAST, "--sheet", str(sheet)
        )
        assert code == 2 and stdout == ""
        assert err.count("\n") == 1 and err.startswith(f"latentmorph: error: --sheet: '{sheet}'")
        assert list(tmp_path.iterdir()) == []
    project = tmp_path / "p.yaml"
    project.write_text("keyframes: [a, b]\nmodel: tiny-sd\n")
    argv = ["movie", str(project), "-o", str(tmp_path / "m.mp4"), "--sheet", "m.jpg"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "sheet: 'm.jpg' is not allowed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


def test_an_animation_has_no_sheet(capsys, tmp_path):
    project = tmp_path / "a.yaml"
    project.write_text(
        "kind: animation\nmodel: tiny-sd\nprompts:\n"
        "  - {frame: 0, prompt: a}\n  - {frame: 4, prompt: b}\n"
    )
    argv = ["movie", str(project), "-o", str(tmp_path / "a.mp4"), "--sheet", "a.png"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1
    assert "sheet: 'a.png' is not allowed for an animation" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]
