"""Bad input from an audit: each case is refused up front, on one line that names the field, with
exit status 2, before any model loads, leaving nothing new behind."""

import pytest

from latentmorph.cli import main

FAST = ["--model", "tiny-sd", "--quiet"]


@pytest.fixture(autouse=True)
def no_model(request, monkeypatch):
    """Fails a test that loads a model: every case here is refused before that, except in the
    tests marked `renders`."""
    if request.node.get_closest_marker("renders"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("latentmorph.models.loading.load_pipeline", refuse)


def refused(capsys, folder, *argv):
    """Runs the command line; checks exit 2, one `latentmorph: error:` line and that nothing
    new is left in `folder`; returns the line."""
    before = sorted(folder.rglob("*"))
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("latentmorph: error: "), err
    # the temporary folder's path depends on the machine: it does not count
    assert len(lines[0].replace(str(folder), "")) < 400, "the value should be shortened"
    assert sorted(folder.rglob("*")) == before
    return lines[0]


def transition(tmp_path, *args, output="t.mp4"):
    return ["transition", "a", "b", "-o", str(tmp_path / output), *FAST, *args]


def animate(tmp_path, *args, schedule="0: a\n10: b\n", output="a.mp4"):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(schedule)
    return ["animate", str(prompts), "-o", str(tmp_path / output), *FAST, *args]


def movie(tmp_path, text, *args, output="m.mp4"):
    project = tmp_path / "p.yaml"
    project.write_text(text)
    return ["movie", str(project), "-o", str(tmp_path / output), "--quiet", *args]


KEYFRAMES = "model: tiny-sd\nkeyframes: [a, b]\n"
ANIMATION = "kind: animation\nmodel: tiny-sd\nprompts: [{frame: 0, prompt: a}]\n"


# --- 1. upper limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--fps", "1e9"], "argument --fps: '1e9' is not allowed; use a number above 0 and at "),
        (["--duration", "1e308", "--fps", "1e308"], "argument --duration: '1e308' is not allowed"),
        (["--duration", "86400", "--fps", "240"], "--duration: 86400 s at 240 fps gives"),
        (["--width", "100000"], "argument --width: '100000' is not allowed; use a whole number"),
        (["--height", "100000"], "argument --height: '100000' is not allowed"),
        (["--steps", "100000"], "argument --steps: '100000' is not allowed; use a whole number"),
        (["--guidance-scale", "1e30"], "argument --guidance-scale: '1e30' is not allowed"),
        (["--seeds", "0", str(2**70)], "argument --seeds: '118059"),
        (["--fps", "60", "-o", "t.gif"], "--fps: 60 is not allowed with the .gif output"),
    ],
)
def test_transition_limits(capsys, tmp_path, args, expected):
    if "-o" in args:
        args = [*args[:-1], str(tmp_path / args[-1])]
    assert expected in refused(capsys, tmp_path, *transition(tmp_path, *args))


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--seed", str(2**70)], "argument --seed: '118059"),
        (["--seed", "-1"], "argument --seed: '-1' is not allowed; use a whole number from 0 to"),
        (["--fps", "1e9"], "argument --fps: '1e9' is not allowed"),
        (["--duration", "50000"], "--duration: 50000 s at 24 fps gives 1200000 frames"),
        (["--guidance-scale", "1e30"], "--guidance-scale: value 1e+30 in '1e30' is out of range"),
        (["--guidance-scale", "0:(1), 9:(500)"], "--guidance-scale: value 500.0"),
        (["--fps", "60", "-o", "a.gif"], "--fps: 60 is not allowed with the .gif output"),
    ],
)
def test_animate_limits(capsys, tmp_path, args, expected):
    if "-o" in args:
        args = [*args[:-1], str(tmp_path / args[-1])]
    assert expected in refused(capsys, tmp_path, *animate(tmp_path, *args))


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("0: a\n1000000000000: b\n", "prompts.txt:2: frame '1000000000000' in "),
        ("0: a\n" + "9" * 5000 + ": b\n", "is past the last frame allowed, 999999; frames"),
    ],
)
def test_prompt_keyframe_past_the_frame_limit(capsys, tmp_path, schedule, expected):
    line = refused(capsys, tmp_path, *animate(tmp_path, schedule=schedule))
    assert expected in line


def test_parameter_schedule_frame_past_the_frame_limit(capsys, tmp_path):
    line = refused(capsys, tmp_path, *animate(tmp_path, "--zoom", "0:(1), 10000000000000:(2)"))
    assert "zoom: frame '10000000000000' in" in line and "past the last frame" in line


@pytest.mark.parametrize(
    "text, expected",
    [
        (KEYFRAMES + "fps: 1.0e+308\nduration: 1.0e+308\n", "fps: 1e+308 is not allowed"),
        (KEYFRAMES + "fps: 240\nduration: 86400\n", "duration: 86400 s at 240 fps gives"),
        (
            "model: tiny-sd\nkeyframes: [{prompt: a, duration: 1.0e+300}, b]\n",
            "keyframes[0].duration: 1e+300 is not allowed",
        ),
        (KEYFRAMES + "settings: {width: 100000}\n", "width: 100000 is not allowed"),
        (KEYFRAMES + "settings: {steps: 5000}\n", "steps: 5000 is not allowed"),
        (KEYFRAMES + "settings: {guidance_scale: 1.0e+30}\n", "guidance_scale: 1e+30 is not"),
        (
            "model: tiny-sd\nkeyframes: [{prompt: a, seed: 1180591620717411303424}, b]\n",
            "keyframes[0].seed: 118059… (22 digits) is not allowed; use a whole number from 0",
        ),
        (ANIMATION + "seed: 1180591620717411303424\n", "seed: 118059… (22 digits) is not"),
        (ANIMATION + "seed: -1\n", "seed: -1 is not allowed"),
        (ANIMATION + "fps: 1000\n", "fps: 1000 is not allowed"),
        (ANIMATION + "height: 100000\n", "height: 100000 is not allowed"),
    ],
)
def test_project_file_limits(capsys, tmp_path, text, expected):
    line = refused(capsys, tmp_path, *movie(tmp_path, text))
    assert f"{tmp_path / 'p.yaml'}: " in line and expected in line


def test_project_fps_too_high_for_gif(capsys, tmp_path):
    line = refused(capsys, tmp_path, *movie(tmp_path, KEYFRAMES + "fps: 60\n", output="m.gif"))
    assert "fps: 60 is not allowed for the .gif output" in line


def test_api_limits():
    from latentmorph.blending.settings import BlendSettings
    from latentmorph.errors import InputError
    from latentmorph.movie.timing import frame_count
    from latentmorph.project import Keyframe, Project

    with pytest.raises(InputError, match=r"^duration: 1e\+308 is not allowed"):
        frame_count(1e308, 1e308)
    with pytest.raises(InputError, match=r"^duration: 5000 s at 240 fps gives 1200000 frames"):
        frame_count(5000, 240)
    with pytest.raises(InputError, match=r"^steps: 1001 is not allowed"):
        BlendSettings(steps=1001)
    with pytest.raises(InputError, match=r"^keyframes\[1\]\.seed: 4294967296 is not allowed"):
        Project([Keyframe("a"), Keyframe("b", 2**32)])


# --- 2. YAML safety -------------------------------------------------------------------------

ALIAS_BOMB = (
    "".join(
        f"{a}: &{a} [{', '.join([f'*{b}' if b else 'lol'] * 9)}]\n"
        for a, b in zip("abcdefghi", [None, *"abcdefgh"])
    )
    + "keyframes: *i\n"
)


@pytest.mark.parametrize(
    "content, expected",
    [
        (ALIAS_BOMB, "line 1: anchors and aliases (&name, *name) are not allowed"),
        (
            'keyframes: !!python/object/apply:os.system ["echo hi"]\n',
            "line 1: tag '!!python/object/apply:os.system' is not allowed; project files hold "
            "plain values without tags",
        ),
        ("keyframes: [caf\xe9, b]\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at position"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 10, "holds binary data (a zero byte at position 7)"),
        ("keyframes: " + "[" * 10000 + "]" * 10000, "line 1: nested more than 64 levels deep"),
        ("keyframes: [a, b]\n" + "#" * 1_000_001, "1000019 bytes is too large for a project file"),
    ],
)
def test_unsafe_project_files(capsys, tmp_path, content, expected):
    project = tmp_path / "p.yaml"
    if isinstance(content, str):
        project.write_text(content)
    else:
        project.write_bytes(content)
    argv = ["movie", str(project), "-o", str(tmp_path / "m.mp4"), "--quiet"]
    line = refused(capsys, tmp_path, *argv)
    assert line.startswith(f"latentmorph: error: {project}: ") and expected in line


def test_alias_bomb_is_refused_before_it_expands(tmp_path):
    from latentmorph.errors import ProjectFileError
    from latentmorph.project import read_project_data

    assert len(ALIAS_BOMB) < 1024
    (tmp_path / "p.yaml").write_text(ALIAS_BOMB)
    with pytest.raises(ProjectFileError, match="anchors and aliases"):
        read_project_data(tmp_path / "p.yaml")


def test_folder_given_as_project_file(capsys, tmp_path):
    (tmp_path / "p.yaml").mkdir()
    argv = ["movie", str(tmp_path / "p.yaml"), "-o", str(tmp_path / "m.mp4"), "--quiet"]
    line = refused(capsys, tmp_path, *argv)
    assert (
        line
        == f"latentmorph: error: {tmp_path / 'p.yaml'}: is a folder; give a project file (.yaml)"
    )


@pytest.mark.parametrize(
    "content, expected",
    [
        ("0: caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at position 6)"),
        (b"0: a\x00\n", "holds binary data (a zero byte at position 4)"),
        (None, "is a folder; give a prompt schedule file"),
    ],
)
def test_unreadable_prompt_schedule(capsys, tmp_path, content, expected):
    prompts = tmp_path / "prompts.txt"
    if content is None:
        prompts.mkdir()
    else:
        prompts.write_bytes(content)
    argv = ["animate", str(prompts), "-o", str(tmp_path / "a.mp4"), *FAST]
    line = refused(capsys, tmp_path, *argv)
    assert line.startswith(f"latentmorph: error: {prompts}: ") and expected in line


# --- 3. wrong types in project files ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model: 42\nkeyframes: [a, b]\n", "model: 42 is not allowed; use text"),
        (
            KEYFRAMES + "settings: {parental_crossfeed: {power: 0.5, strength: 1}}\n",
            "parental_crossfeed.strength: unknown field; allowed: power, range, decay",
        ),
        (
            KEYFRAMES + "settings: {keyframe_crossfeed: {power: 0.5, 7: 1}}\n",
            "keyframe_crossfeed.7: unknown field",
        ),
        (KEYFRAMES + "settings: {batched: 'no'}\n", "batched: 'no' is not allowed; use true or"),
        (KEYFRAMES + "settings: {batched: 0}\n", "batched: 0 is not allowed; use true or false"),
        (
            KEYFRAMES + "settings: {prompt_weighting: 'yes'}\n",
            "prompt_weighting: 'yes' is not allowed; use true or false",
        ),
        (
            "model: tiny-sd\nkeyframes: [{prompt: 123}, b]\n",
            "keyframes[0].prompt: 123 is not allowed; use text",
        ),
        ("model: tiny-sd\nkeyframes: 5\n", "keyframes: 5 is not allowed; give a list"),
        (KEYFRAMES + "device: [cpu]\n", "device: a list is not allowed; use one of auto,"),
        (
            "kind: animation\nprompts: [{frame: x, prompt: a}]\n",
            "prompts[0].frame: 'x' is not allowed; use a whole number from 0 to 999999",
        ),
        (
            "kind: animation\nprompts: [{frame: 0, prompt: 123}]\n",
            "prompts[0].prompt: 123 is not allowed; use text",
        ),
        ("kind: animation\nprompts: [{frame: 0}]\n", "prompts[0].prompt: missing"),
        (
            "kind: animation\nprompts: [{frame: 5, prompt: a}, {frame: 2, prompt: b}]\n",
            "frames must increase",
        ),
        (ANIMATION + "blend: 5\n", "blend: 5 is not allowed; give a mapping with keys from: "),
        (ANIMATION + "blend: {branchez: 5}\n", "blend.branchez: unknown field"),
        (ANIMATION + "blend: {batched: 'no'}\n", "batched: 'no' is not allowed"),
        (ANIMATION + "coherence: {scale: 0.5, beta: 1}\n", "coherence.beta: unknown field"),
        (ANIMATION + "coherence: on\n", "coherence: True is not allowed; give a mapping"),
        (ANIMATION + "fixed_noise: 'no'\n", "fixed_noise: 'no' is not allowed; use true or"),
        (ANIMATION + "model: 42\n", "model: 42 is not allowed; use text"),
        (ANIMATION + "audio: 42\n", "audio: 42 is not allowed; use text"),
    ],
)
def test_project_file_wrong_types(capsys, tmp_path, text, expected):
    line = refused(capsys, tmp_path, *movie(tmp_path, text))
    assert line.startswith(f"latentmorph: error: {tmp_path / 'p.yaml'}: ") and expected in line


# --- 4. inputs never overwritten -------------------------------------------------------------

TINY = ["--steps", "2", "--width", "32", "--height", "32"]


def rendered(capsys, *argv):
    """Runs the command line; checks that it succeeded; returns stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


@pytest.mark.renders
def test_animate_keeps_a_prompt_schedule_named_like_the_project_file(capsys, tmp_path):
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("0: a red circle\n3: a blue square\n")
    out, err = rendered(
        capsys, "animate", str(prompts), "-o", str(tmp_path / "prompts.mp4"), *FAST, *TINY
    )
    written = tmp_path / "prompts.render.yaml"
    assert prompts.read_text() == "0: a red circle\n3: a blue square\n"
    assert written.is_file() and f"(project: {written})" in out
    assert err == (
        f"latentmorph: note: project file written as {written}: {prompts} is an input and is "
        "not overwritten\n"
    )


@pytest.mark.renders
def test_movie_keeps_the_hand_written_project_file(capsys, tmp_path):
    text = "# my movie\nmodel: tiny-sd\nfps: 4\nduration: 1\nkeyframes: [a, b]  # two\n"
    text += "settings: {steps: 2, width: 32, height: 32, branches: 3}\n"
    project = tmp_path / "proj.yaml"
    project.write_text(text)
    out, err = rendered(capsys, "movie", str(project), "--quiet")
    assert project.read_text() == text
    assert (tmp_path / "proj.mp4").is_file()
    assert f"(project: {tmp_path / 'proj.render.yaml'})" in out
    assert "latentmorph: note: project file written as" in err
    # rendering the written file again keeps it too
    out, _ = rendered(capsys, "movie", str(tmp_path / "proj.render.yaml"), "--quiet")
    assert f"(project: {tmp_path / 'proj.render.render.yaml'})" in out


def test_project_path_beside_an_output_avoids_inputs(tmp_path):
    from latentmorph.project import project_path_for

    inputs = [("project file", tmp_path / "a.yaml"), ("audio", tmp_path / "a.render.yaml")]
    assert project_path_for(tmp_path / "a.mp4", inputs) == tmp_path / "a.render-2.yaml"
    assert project_path_for(tmp_path / "b.mp4", inputs) == tmp_path / "b.yaml"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--audio", "{d}/track.mp4", "-o", "{d}/track.mp4"], "would overwrite the --audio file"),
        (
            ["--init-video", "{d}/clip.mp4", "-o", "{d}/clip.mp4"],
            "would overwrite the --init-video",
        ),
        (["-o", "{d}/prompts.txt"], "would overwrite the prompt schedule file"),
    ],
)
def test_animate_output_equal_to_an_input(capsys, tmp_path, args, expected):
    for name in ("track.mp4", "clip.mp4"):
        (tmp_path / name).write_bytes(b"not really a video")
    args = [a.format(d=tmp_path) for a in args]
    line = refused(capsys, tmp_path, *animate(tmp_path, *args))  # the last -o counts
    assert line.startswith("latentmorph: error: -o/--output: ") and expected in line
    assert (tmp_path / "track.mp4").read_bytes() == b"not really a video"


def test_movie_default_output_equal_to_the_project_file(capsys, tmp_path):
    project = tmp_path / "p.mp4"
    project.write_text(KEYFRAMES)
    line = refused(capsys, tmp_path, "movie", str(project), "--quiet")
    assert line == (
        f"latentmorph: error: output: {project} would overwrite the project file {project}; "
        "give the output another name"
    )


def test_movie_output_equal_to_the_audio_of_an_animation(capsys, tmp_path):
    (tmp_path / "song.mp4").write_bytes(b"not really a song")
    line = refused(
        capsys, tmp_path, *movie(tmp_path, ANIMATION + "audio: song.mp4\n", output="song.mp4")
    )
    assert f"output: {tmp_path / 'song.mp4'} would overwrite the audio" in line


# --- 5. command-line odds --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--device", "cpu:abc"],
            "argument --device: 'cpu:abc' is not allowed; use one of auto, cuda, mps, cpu, or "
            "one of cuda, mps, cpu with an index such as cuda:1",
        ),
        (["--dtype", "int8"], "argument --dtype: invalid choice: 'int8' (choose from "),
        (
            ["-o", "{d}/.mp4"],
            "output: {d}/.mp4 is only an extension; give a name such as movie.mp4",
        ),
        (
            ["-o", "{d}/.GIF"],
            "output: {d}/.GIF is only an extension; give a name such as movie.gif",
        ),
    ],
)
def test_transition_flags(capsys, tmp_path, args, expected):
    args = [a.format(d=tmp_path) for a in args]
    line = refused(capsys, tmp_path, *transition(tmp_path, *args))
    assert expected.format(d=tmp_path) in line


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--port", "99999"], "argument --port: '99999' is not allowed; use a whole number from"),
        (["--port", "0"], "argument --port: '0' is not allowed; use a whole number from 1 to 6553"),
        (["--host", "300.1.1.1"], "argument --host: '300.1.1.1' is not an IP address or host"),
        (["--host", "no such host!"], "argument --host: 'no such host!' is not an IP address"),
        (["--dtype", "int8"], "argument --dtype: invalid choice: 'int8' (choose from"),
        (["--device", "cpu:abc"], "argument --device: 'cpu:abc' is not allowed"),
    ],
)
def test_ui_flags(capsys, tmp_path, monkeypatch, args, expected):
    def no_launch(args):
        raise AssertionError("the UI was started")

    monkeypatch.setattr("latentmorph.cli.ui.run", no_launch)
    assert expected in refused(capsys, tmp_path, "ui", *args)


def test_ui_host_accepts_addresses_and_names():
    from latentmorph.cli.options import host_name

    for host in ("127.0.0.1", "0.0.0.0", "::1", "localhost"):
        assert host_name(host) == host


@pytest.mark.parametrize("option", ["--audio", "--init-video"])
def test_folder_given_as_media(capsys, tmp_path, option):
    (tmp_path / "media").mkdir()
    line = refused(capsys, tmp_path, *animate(tmp_path, option, str(tmp_path / "media")))
    assert line.startswith(f"latentmorph: error: {option}: {tmp_path / 'media'} is a folder; give")


def test_missing_media(capsys, tmp_path):
    line = refused(capsys, tmp_path, *animate(tmp_path, "--audio", str(tmp_path / "nope.wav")))
    assert f"--audio: {tmp_path / 'nope.wav'} does not exist; give an audio file" in line


def test_project_file_device_and_dtype(capsys, tmp_path):
    line = refused(capsys, tmp_path, *movie(tmp_path, KEYFRAMES + "device: 'cpu:abc'\n"))
    assert "device: 'cpu:abc' is not allowed" in line
    line = refused(capsys, tmp_path, *movie(tmp_path, ANIMATION + "dtype: int8\n"))
    assert "dtype: 'int8' is not allowed; use one of auto, float16, bfloat16, float32" in line
