import subprocess
import sys

import av
import numpy as np
import pytest
import yaml
from imageio_ffmpeg import count_frames_and_secs
from PIL import Image

from latentmorph.animation.render import AnimationRenderer
from latentmorph.animation.schedules import parse_prompt_schedule
from latentmorph.animation.settings import Animation, Coherence
from latentmorph.cli import main
from latentmorph.errors import InputError

from .media import CLICKS, FPS, click_samples, write_clip, write_wav

SCHEDULE = (
    "# a walk through three prompts\n0: a red circle\n\n6: a blue square\n12: a green triangle"
)


def _animation(**changes):
    options = dict(prompts=parse_prompt_schedule(SCHEDULE), model="tiny-sd", seed=7, steps=3)
    options.update(changes)
    return Animation(**options)


def _frames(renderer):
    return [np.asarray(i, dtype=np.int16) for i in renderer.render_frames()]


@pytest.mark.parametrize("duration", [0.3, 1.0, 1.37, 2.5])
@pytest.mark.parametrize("fps", [8, 12.5, 23.976, 30])
def test_duration_and_fps_give_exactly_round_d_times_f_frames(tiny_sd, duration, fps):
    if round(duration * fps) < 3:
        with pytest.raises(InputError, match="too short for 3 keyframes"):
            AnimationRenderer(_animation(duration=duration, fps=fps), tiny_sd, progress=False)
        return
    renderer = AnimationRenderer(_animation(duration=duration, fps=fps), tiny_sd, progress=False)
    assert renderer.frames == round(duration * fps)
    assert renderer.keyframes[-1].frame == renderer.frames - 1
    assert len(renderer.weights) == renderer.frames


def test_without_duration_the_animation_ends_at_the_last_keyframe(tiny_sd):
    renderer = AnimationRenderer(_animation(), tiny_sd, progress=False)
    assert renderer.frames == 13 and renderer.fps == 24.0
    assert len(_frames(renderer)) == 13


def test_blend_is_the_default_when_it_fits_and_walk_otherwise():
    assert _animation().uses_blend
    assert not _animation(zoom="0:(1.0), 6:(1.05)").uses_blend
    assert not _animation(curve="sine").uses_blend
    assert not _animation(coherence=Coherence(scale=0.2)).uses_blend
    assert not _animation(mode="walk").uses_blend
    with pytest.raises(InputError, match="mode: 'blend' cannot be used with motion; use walk"):
        _animation(mode="blend", angle="2")


@pytest.mark.parametrize("mode", ["blend", "walk"])
def test_keyframe_frames_show_the_keyframe_prompts_and_runs_are_deterministic(tiny_sd, mode):
    first = _frames(AnimationRenderer(_animation(mode=mode), tiny_sd, progress=False))
    second = _frames(AnimationRenderer(_animation(mode=mode), tiny_sd, progress=False))
    assert len(first) == 13
    assert all((a == b).all() for a, b in zip(first, second))
    walk = _frames(AnimationRenderer(_animation(mode="walk"), tiny_sd, progress=False))
    for k in (0, 6, 12):  # keyframes are the same pure images in both modes
        assert np.abs(first[k] - walk[k]).max() <= 1
    assert all((a != b).any() for a, b in zip(first, first[1:]))


def test_a_walk_with_motion_gives_the_same_frames_every_run(tiny_sd):
    def frames():
        animation = _animation(seed=3, zoom="0:(1.05)", angle="0:(3)")
        return _frames(AnimationRenderer(animation, tiny_sd, progress=False))

    first, second, third = frames(), frames(), frames()
    assert all((a == b).all() and (a == c).all() for a, b, c in zip(first, second, third))


def test_walk_interpolates_between_keyframes(tiny_sd):
    frames = _frames(AnimationRenderer(_animation(mode="walk"), tiny_sd, progress=False))
    distance = [np.abs(frames[k] - frames[0]).mean() for k in range(7)]
    assert distance[0] == 0 and distance[6] > distance[1] > 0


def test_fixed_noise_uses_one_noise_for_every_keyframe(tiny_sd):
    renderer = AnimationRenderer(_animation(mode="walk", fixed_noise=True), tiny_sd, False)
    other = AnimationRenderer(_animation(mode="walk"), tiny_sd, progress=False)
    assert (np.asarray(_frames(renderer)[0]) == np.asarray(_frames(other)[0])).all()
    assert (_frames(renderer)[6] != _frames(other)[6]).any()


def test_motion_feeds_each_frame_back_warped(tiny_sd):
    still = _frames(AnimationRenderer(_animation(mode="walk", strength="0.5"), tiny_sd, False))
    moving = AnimationRenderer(
        _animation(translation_x="4", strength="0.5", colour_match=True), tiny_sd, False
    )
    frames = _frames(moving)
    assert len(frames) == 13
    assert (frames[0] == still[0]).all()  # frame 0 has nothing to warp
    assert all((a != b).any() for a, b in zip(frames[1:], still[1:]))


def test_coherence_pulls_frames_toward_earlier_ones(tiny_sd):
    def change(frames):
        return np.mean([np.abs(a - b).mean() for a, b in zip(frames, frames[1:])])

    free = _frames(AnimationRenderer(_animation(mode="walk", fixed_noise=True), tiny_sd, False))
    coherent = AnimationRenderer(
        _animation(fixed_noise=True, coherence=Coherence(scale=0.8, alpha=0.5)), tiny_sd, False
    )
    assert change(_frames(coherent)) < change(free)


def test_guidance_and_strength_schedules_reach_every_frame(tiny_sd):
    animation = _animation(guidance_scale="0:(1.0), 12:(6.0)", mode="walk")
    renderer = AnimationRenderer(animation, tiny_sd, progress=False)
    assert animation.schedule("guidance_scale").values(13)[6] == pytest.approx(3.5)
    assert len(_frames(renderer)) == 13


def test_video_input_sets_fps_and_length_and_streams(tiny_sd, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4")
    animation = _animation(
        init_video=str(clip),
        strength="0.3",
        prompts=[*parse_prompt_schedule("0: a red circle\n11: a blue square")],
    )
    renderer = AnimationRenderer(animation, tiny_sd, progress=False)
    assert (renderer.fps, renderer.frames) == (FPS, 12)
    summary = renderer.write(tmp_path / "out.mp4")
    assert count_frames_and_secs(str(tmp_path / "out.mp4"))[0] == 12
    assert summary.frames == 12


def test_keyframes_past_a_short_video_are_refused(tiny_sd, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4")
    with pytest.raises(
        InputError, match="prompts line 5: keyframe 12 is past the last frame 11 of the video input"
    ):
        AnimationRenderer(_animation(init_video=str(clip)), tiny_sd, progress=False)


def test_audio_keyframes_land_on_onsets_and_the_soundtrack_is_muxed(capsys, tmp_path):
    audio = write_wav(tmp_path / "clicks.wav", click_samples())
    prompts = tmp_path / "p.txt"
    prompts.write_text("0: a red circle\n5: a blue square")
    out = tmp_path / "a.mp4"
    code = main(
        [
            "animate",
            str(prompts),
            "-o",
            str(out),
            "--model",
            "tiny-sd",
            "--quiet",
            "--steps",
            "2",
            "--fps",
            "10",
            "--audio",
            str(audio),
            "--audio-keyframes",
            "percussive",
            "--seed",
            "3",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    line = next(x for x in captured.err.splitlines() if "audio onsets" in x)
    frames = [int(f) for f in line.split("at frames ")[1].split(", ")]
    assert frames[0] == 0 and frames[-1] == 31
    assert len(frames) == len(CLICKS) + 2
    assert all(abs(f - t * 10) <= 1 for f, t in zip(frames[1:-1], CLICKS))
    assert count_frames_and_secs(str(out))[0] == 32
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1


def test_audio_timing_moves_fastest_on_the_beats(tiny_sd, tmp_path):
    audio = write_wav(tmp_path / "clicks.wav", click_samples())
    animation = _animation(
        prompts=parse_prompt_schedule("0: a\n31: b"),
        audio=str(audio),
        audio_timing="whole",
        fps=10,
    )
    renderer = AnimationRenderer(animation, tiny_sd, progress=False)
    t = np.array([w for _, w in renderer.weights])
    steps = np.diff(t)
    assert t[0] == 0 and t[-1] == 1 and (steps >= 0).all()
    fastest = sorted(np.argsort(steps)[-4:] + 1)
    assert all(any(abs(f - round(c * 10)) <= 1 for c in CLICKS) for f in fastest)


def test_project_file_reproduces_the_animation(capsys, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text(SCHEDULE)
    argv = [
        "animate",
        str(prompts),
        "--model",
        "tiny-sd",
        "--quiet",
        "--steps",
        "2",
        "--zoom",
        "0:(1.0), 12:(1.1)",
        "--fps",
        "12",
    ]
    assert main([*argv, "-o", str(tmp_path / "a")]) == 0
    recorded = yaml.safe_load((tmp_path / "a.yaml").read_text())
    assert recorded["kind"] == "animation" and isinstance(recorded["seed"], int)
    assert main(["movie", str(tmp_path / "a.yaml"), "-o", str(tmp_path / "b"), "--quiet"]) == 0
    a = sorted((tmp_path / "a").glob("*.png"))
    b = sorted((tmp_path / "b").glob("*.png"))
    assert len(a) == len(b) == 13
    assert all((np.asarray(Image.open(x)) == np.asarray(Image.open(y))).all() for x, y in zip(a, b))


@pytest.mark.parametrize(
    "text, args, message",
    [
        ("0: a\n5 b\n", [], "p.txt:2: no colon in '5 b'"),
        ("0: a\n5: b\n3: c", [], "p.txt:3: frame 3 in '3: c' is lower than frame 5 on line 2"),
        ("0: a\n0: b\n", [], "p.txt:2: frame 0 in '0: b' repeats frame 0 on line 1"),
        ("0: a\n9: b", ["--strength", "0:(0.5), 5:(1.5)"], "strength: value 1.5"),
        ("0: a\n9: b", ["--zoom", "0:(1.0) 5:(1.1)"], "zoom:"),
        ("0: a\n9: b", ["--angle", "0:(sin(t))"], "expressions of t are not supported"),
        ("0: a\n9: b", ["--curve", "curve"], "--curve: 'curve' needs --curve-points"),
        ("0: a\n9: b", ["--frequencies", ""], "frequencies"),
        ("0: a\n9: b", ["--audio", "missing.wav", "--audio-keyframes", "whole"], "missing.wav"),
        ("0: a\n9: b", ["--init-video", "missing.mp4"], "missing.mp4"),
        ("0: a\n9: b", ["--audio-timing", "whole"], "need an audio file"),
        ("0: a\n9: b", ["--coherence-scale", "2"], "argument --coherence-scale: '2' is not"),
    ],
)
def test_bad_animation_input_exits_2_naming_file_line_and_field(
    capsys, tmp_path, monkeypatch, text, args, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.txt").write_text(text)
    try:
        code = main(["animate", "p.txt", "-o", "out.mp4", "--model", "tiny-sd", "--quiet", *args])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt"]


def test_unreadable_prompt_file(capsys, tmp_path):
    code = main(["animate", str(tmp_path / "none.txt"), "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "none.txt: cannot be read" in capsys.readouterr().err


def test_animate_console_script_runs_offline(tmp_path):
    (tmp_path / "p.txt").write_text("0: a red circle\n3: a blue square")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "latentmorph.cli",
            "animate",
            "p.txt",
            "-o",
            "a.gif",
            "--model",
            "tiny-sdxl",
            "--quiet",
            "--steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "a.gif").n_frames == 4
