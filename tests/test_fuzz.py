"""Every entry point of the command line fuzzed with hypothesis: `transition`, `animate` (flags,
prompt schedule files, parameter schedules, media inputs) and `movie` (project files).

Each example runs `latentmorph.cli.main` in-process with the model loader replaced by a guard: a
request that is valid reaches the guard (no diffusion runs), any other ends with exit status 2
and exactly one stderr line `latentmorph: error: FIELD: ...`. Never a traceback, and nothing is
left in the example's folder (no output, project file or temporary). Examples are derandomized,
so every run tries the same cases; CORPUS keeps the cases that once failed.
"""

import contextlib
import functools
import io
import os
import shutil
import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from latentmorph.cli import main

from .media import click_samples, tone_samples, write_aac, write_clip, write_wav


class ModelLoaded(Exception):
    """A request got as far as loading its model: it was valid."""


def fuzzed(examples: int):
    """Hypothesis settings of a fuzz test: deterministic, no deadline, no example database.

    LATENTMORPH_FUZZ_EXAMPLES=N runs N random (not derandomized) examples per test instead, for
    a deeper search by hand.
    """
    deeper = os.environ.get("LATENTMORPH_FUZZ_EXAMPLES")
    return settings(
        max_examples=int(deeper) if deeper else examples,
        deadline=None,
        derandomize=not deeper,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


@pytest.fixture(scope="module", autouse=True)
def guard():
    """Replaces model loading with the ModelLoaded guard for the whole module."""
    with pytest.MonkeyPatch.context() as patch:

        def loaded(*args, **kwargs):
            raise ModelLoaded

        patch.setattr("latentmorph.models.loading.load_pipeline", loaded)
        yield


@functools.cache
def media() -> dict[str, bytes]:
    """Valid media files by name, as bytes (examples write them, whole or cut short)."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_wav(folder / "ok.wav", click_samples())
        write_clip(folder / "ok.mp4")
        write_aac(folder / "ok.m4a", tone_samples(440, 22050))
        Image.new("RGB", (32, 32), (200, 30, 30)).save(folder / "image.png")
        Image.new("RGB", (1, 1)).save(folder / "tiny.png")
        return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The parent of the examples' folders."""
    return tmp_path_factory.mktemp("fuzz")


def snapshot(folder: Path) -> list[str]:
    """Every path under `folder`, hidden temporaries included."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def check(argv: list[str], folder: Path) -> str:
    """Runs the command line; asserts the outcome; returns 'valid' or the error line."""
    before = snapshot(folder)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            code = exit_.code
        except ModelLoaded:
            code = "valid"
    err = stderr.getvalue()
    assert "Traceback" not in err, err
    assert snapshot(folder) == before, f"left behind: {set(snapshot(folder)) - set(before)}"
    if code == "valid":
        assert "error" not in err, err
        return code
    lines = err.splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("latentmorph: error: "), line
    assert ": " in line.removeprefix("latentmorph: error: "), f"no field named: {line}"
    assert len(line) < 700, "the message should shorten what it quotes"
    return line


def image_folder(folder: Path) -> None:
    """Writes the image files IMAGE_FILES name: an image, a text and a 1x1 image."""
    (folder / "image.png").write_bytes(media()["image.png"])
    (folder / "text.png").write_text("not an image")
    (folder / "tiny.png").write_bytes(media()["tiny.png"])


@contextlib.contextmanager
def example_folder(parent: Path):
    """A fresh folder for one example, removed afterwards."""
    folder = Path(tempfile.mkdtemp(dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- values --------------------------------------------------------------------------------

ARGV_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
"""What a command-line argument can hold (no NUL; no lone surrogates)."""

EDGE_NUMBERS = [
    "0", "-0", "1", "-1", "2", "0.5", "1e9", "1e7", "1e308", "1e400", "-1e400", "1e-320",
    "100000", "2000", "2001", "8192", "8193", "240", "241", "86400", "86401", "nan", "NaN",
    "inf", "-inf", "Infinity", "0x10", "1_000", "", " ", "+5", "٣", "½", "1,5", "9" * 5000,
    str(2**32), str(2**32 - 1), str(2**70), "1e2", "3.", ".5", "-.5e-3", "true", "None",
]  # fmt: skip
NUMBER = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.integers(-(10**7), 10**7).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 2).map(lambda x: f"{x:.3g}"),
    st.text(ARGV_CHARACTERS, max_size=12),
)


def mostly(valid: st.SearchStrategy, other: st.SearchStrategy = NUMBER) -> st.SearchStrategy:
    """`valid` values seven times in eight, `other` (anything) the eighth: examples get past
    the first flag and reach the checks of later ones and of their combinations."""
    return st.integers(0, 7).flatmap(lambda draw: other if draw == 7 else valid)


def decimal(low: float, high: float) -> st.SearchStrategy:
    return st.floats(low, high).map(lambda x: f"{x:.4g}")


def whole(low: int, high: int) -> st.SearchStrategy:
    return st.integers(low, high).map(str)


PROMPT = mostly(
    st.text(string.ascii_letters + " ,.", min_size=1, max_size=30).filter(str.strip),
    st.one_of(
        st.sampled_from(["", " ", "\n", "a\nb\r\nc", "x" * 10_000, "🙂 ünïcödé ∑", "-a", "--fps"]),
        st.text(ARGV_CHARACTERS, max_size=40),
    ),
)
OUTPUT_NAMES = [
    "t.mp4", "t.webm", "t.gif", "frames", "frames/", "t.MP4", "t.avi", ".mp4", ".gif", "t.yaml",
    "missing/t.mp4", "A" * 245 + ".mp4", "A" * 260 + ".mp4", "A" * 251 + ".gif", "é" * 125 + ".mp4",
    "existing.mp4", "existing", "t.mp4.", "-", "t .mp4", "t.mp4\n",
]  # fmt: skip
OUTPUT = mostly(
    st.sampled_from(["t.mp4", "t.webm", "t.gif", "frames"]),
    st.sampled_from(OUTPUT_NAMES),
)
OUTPUT = st.one_of(
    OUTPUT,
    st.text(ARGV_CHARACTERS.filter(lambda c: c not in "/\\"), min_size=1, max_size=20).map(
        lambda name: name + ".mp4"
    ),
)


IN_FOLDER = "@"
"""A value that starts with it names a file in the example's folder: `@s.png`."""


def prepare(folder: Path, value: str) -> str:
    """`value`, with `@NAME` made a path in `folder`; `@existing...` names an existing folder."""
    if not value.startswith(IN_FOLDER):
        return value
    name = value[len(IN_FOLDER) :]
    if name.startswith("existing"):
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "notes.txt").write_text("mine")
    return str(folder / name)


def flag_values(flags: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Lists of (flag, values): each flag at most once, in any order."""
    names = sorted(flags)
    return st.lists(st.sampled_from(names), unique=True, max_size=6).flatmap(
        lambda chosen: st.tuples(*[st.tuples(st.just(n), flags[n]) for n in chosen])
    )


def argv_of(pairs, folder: Path) -> list[str]:
    """The command-line words of (flag, value or values) pairs; a single value that starts
    with '-' is written `--flag=value` (else argparse takes it for a flag)."""
    argv = []
    for flag, value in pairs:
        values = [prepare(folder, v) for v in (value if isinstance(value, list) else [value])]
        if len(values) == 1 and values[0].startswith("-"):
            argv.append(f"{flag}={values[0]}")
        else:
            argv += [flag, *values]
    return argv


# --- transition ----------------------------------------------------------------------------

IMAGE_FILES = ["@image.png", "@image.png", "@missing.png", "@existing", "@text.png", "@tiny.png"]
"""Image files of an example's folder (see `image_folder`), some not images."""
CHOICE_TEXT = st.one_of(st.sampled_from(["", "x", "auto", "none"]), st.text(max_size=8))
PLAN = st.one_of(
    st.sampled_from(["4@0.3 8@0.5 20@0.9", "5@s2 9@s3", "100000@0.5", "5@2", "2@0.5", "", "@"]),
    st.lists(st.tuples(st.integers(-3, 3000), st.floats(-1, 2)), max_size=4).map(
        lambda items: " ".join(f"{count}@{strength:.3g}" for count, strength in items)
    ),
    st.lists(st.tuples(st.integers(0, 3000), st.integers(-5, 2000)), max_size=4).map(
        lambda items: " ".join(f"{count}@s{step}" for count, step in items)
    ),
    st.text(ARGV_CHARACTERS, max_size=20),
)
FRACTION = mostly(decimal(0, 1))
FRACTIONS = st.lists(FRACTION, min_size=3, max_size=3)
COMMON_FLAGS = {
    "--width": mostly(whole(8, 512)),
    "--height": mostly(whole(8, 512)),
    "--steps": mostly(whole(1, 50)),
    "--max-batch": mostly(whole(1, 16)),
    "--device": mostly(st.just("cpu"), st.sampled_from(["cuda:0", "cpu:abc", "tpu", "", "x"])),
    "--dtype": mostly(st.sampled_from(["float32", "auto"]), CHOICE_TEXT),
    "--negative-prompt": PROMPT,
    "--model": mostly(st.just("tiny-sd"), st.sampled_from(["", " ", "x.ckpt", "@existing"])),
    "--compile": mostly(st.sampled_from(["auto", "off"]), CHOICE_TEXT),
    "--vae-dtype": mostly(st.sampled_from(["auto", "float32"]), CHOICE_TEXT),
}
TRANSITION_FLAGS = {
    **COMMON_FLAGS,
    "--fps": mostly(decimal(1, 60)),
    "--duration": mostly(decimal(0.05, 30)),
    "--branches": mostly(whole(2, 40)),
    "--time-budget": mostly(decimal(0.1, 100)),
    "--depth-strength": FRACTION,
    "--guidance-scale": mostly(decimal(0, 20)),
    "--guidance-damper": FRACTION,
    "--seeds": st.lists(mostly(whole(0, 2**32 - 1)), min_size=2, max_size=2),
    "--keyframe-crossfeed": FRACTIONS,
    "--parental-crossfeed": FRACTIONS,
    "--quality": mostly(st.sampled_from(["lowest", "low", "medium", "high", "ultra"]), CHOICE_TEXT),
    "--plan": PLAN,
    "--placement": mostly(st.sampled_from(["adaptive", "even", "sequential"]), CHOICE_TEXT),
    "--distance": mostly(st.sampled_from(["auto", "pixel"]), CHOICE_TEXT),
    "--sheet": st.sampled_from(["@s.png", "@s.jpg", "@missing/s.png", "@existing", "@.png"]),
    "--mask": st.sampled_from(IMAGE_FILES),
    "--prompts": st.lists(PROMPT, min_size=1, max_size=3),
    "--controlnet": mostly(st.just("@existing"), st.sampled_from(["", "x.ckpt", "@missing"])),
    "--control-image": st.lists(st.sampled_from(IMAGE_FILES), min_size=1, max_size=3),
    "--control-scale": mostly(decimal(0, 5)),
    "--control-preprocess": mostly(st.sampled_from(["none", "canny"]), CHOICE_TEXT),
}
TRANSITION_KEYFRAME = st.one_of(PROMPT, st.sampled_from([*IMAGE_FILES, "x.png", " @image.png"]))
"""A keyframe of a transition: a prompt or an image file."""


@fuzzed(400)
@given(
    a=TRANSITION_KEYFRAME,
    b=TRANSITION_KEYFRAME,
    output=OUTPUT,
    flags=flag_values(TRANSITION_FLAGS),
)
@example(a="a", b="b", output="t.mp4", flags=(("--fps", "1e9"),))
@example(a="a", b="b", output="t.mp4", flags=(("--quality", "ultra"), ("--duration", "1000")))
def test_transition(workspace, a, b, output, flags):
    with example_folder(workspace) as folder:
        image_folder(folder)
        a, b = prepare(folder, a), prepare(folder, b)
        argv = ["transition", a, b, "-o", prepare(folder, IN_FOLDER + output), "--quiet"]
        argv += argv_of(flags, folder)
        if "--model" not in argv:
            argv += ["--model", "tiny-sd"]
        check(argv, folder)


# --- animate: flags, prompt schedule files, parameter schedules, media --------------------


def keyframed(values: st.SearchStrategy) -> st.SearchStrategy:
    """Deforum keyframes `F:(V), F:(V)` with increasing frames and these values."""
    return st.lists(
        st.tuples(st.integers(0, 200), values), min_size=1, max_size=4, unique_by=lambda t: t[0]
    ).map(lambda items: ", ".join(f"{frame}:({value})" for frame, value in sorted(items)))


BAD_SCHEDULES = [
    "0:(1", "0:1)", "(1)", "0:((1))", "0:(nan)", "0:(inf)", "0:(1e308)", "sin(t)", "0:(t*2)",
    "5:(1), 2:(2)", "0:(1), 0:(2)", "-1:(1)", "10000000000000:(1)", "0:(1),", ",", "", " ",
    "0:(1) 5:(2)", "0:(1);5:(2)", "1e400", "0:()", ":(1)", "0:(1)\n5:(2)", "0:(1e-400)",
    "9" * 5000 + ":(1)", "0:(" + "9" * 400 + ")", "0: (1), 5 : ( 2 )", "x:(1)", "0.5:(1)",
]  # fmt: skip


def schedule(low: float, high: float) -> st.SearchStrategy:
    """A parameter schedule: mostly keyframes or a number within low..high."""
    value = decimal(low, high)
    bad = st.one_of(st.sampled_from(BAD_SCHEDULES), NUMBER)
    return mostly(st.one_of(value, keyframed(value)), bad)


SWITCH = st.just([])
"""A flag without a value (`--fixed-noise`)."""
MEDIA_NAMES = ["ok.wav", "ok.mp4", "ok.m4a", "image.png"]
MEDIA = st.one_of(
    st.tuples(st.sampled_from(MEDIA_NAMES), st.none()),
    st.tuples(st.sampled_from(MEDIA_NAMES), st.floats(0, 1)),
    st.tuples(st.sampled_from(["empty", "text", "@missing", "@existing"]), st.none()),
)
ANIMATE_FLAGS = {
    **COMMON_FLAGS,
    "--fps": mostly(decimal(1, 30)),
    "--duration": mostly(decimal(0.1, 10)),
    "--seed": mostly(whole(0, 2**32 - 1)),
    "--mode": mostly(st.sampled_from(["auto", "blend", "walk"]), CHOICE_TEXT),
    "--guidance-scale": schedule(0, 20),
    "--strength": schedule(0, 1),
    "--zoom": schedule(0.5, 2),
    "--angle": schedule(-10, 10),
    "--translation-x": schedule(-20, 20),
    "--translation-y": schedule(-20, 20),
    "--border": mostly(st.sampled_from(["replicate", "reflect", "zero"]), CHOICE_TEXT),
    "--curve": mostly(st.sampled_from(["linear", "sine", "curve"]), CHOICE_TEXT),
    "--frequencies": mostly(
        st.lists(decimal(0.1, 4), min_size=1, max_size=3).map(", ".join),
        st.sampled_from(["", "0", "-1", "1,,2", "nan", "1e400", "a"]),
    ),
    "--curve-points": schedule(0, 1),
    "--fixed-noise": SWITCH,
    "--colour-match": SWITCH,
    "--coherence-scale": FRACTION,
    "--coherence-alpha": FRACTION,
    "--coherence-steps": mostly(whole(1, 50)),
    "--coherence-noise": mostly(decimal(0, 2)),
    "--audio-keyframes": mostly(st.sampled_from(["percussive", "harmonic", "whole"]), CHOICE_TEXT),
    "--audio-timing": mostly(st.sampled_from(["percussive", "harmonic", "whole"]), CHOICE_TEXT),
    "--audio-reduce": mostly(st.sampled_from(["max", "median", "mean"]), CHOICE_TEXT),
    "--branches": mostly(whole(2, 40)),
    "--depth-strength": FRACTION,
    "--mask": TRANSITION_FLAGS["--mask"],
    "--controlnet": TRANSITION_FLAGS["--controlnet"],
    "--control-image": st.lists(st.sampled_from([*IMAGE_FILES, "@clip.mp4"]), max_size=2),
    "--control-scale": TRANSITION_FLAGS["--control-scale"],
    "--control-preprocess": TRANSITION_FLAGS["--control-preprocess"],
}
SCHEDULE_LINE = st.tuples(
    mostly(st.integers(0, 120).map(str), st.sampled_from(["-1", "1000000000000", "x", "", "1.5"])),
    PROMPT.map(lambda text: text.replace("\n", " ")),
)


def schedule_file(lines: list[tuple[str, str]], comments: bool, ending: str, bom: bool) -> bytes:
    """A prompt schedule file of `FRAME: prompt` lines."""
    text = ending.join(f"{frame}: {prompt}" for frame, prompt in lines)
    if comments:
        text = f"# a comment{ending}{ending}{text}{ending}# the end"
    return ("\ufeff" if bom else "").encode() + text.encode("utf-8", "surrogatepass")


VALID_SCHEDULE = st.lists(
    st.tuples(st.integers(0, 60), st.text(string.ascii_letters + " ", min_size=1, max_size=20)),
    min_size=1,
    max_size=4,
    unique_by=lambda t: t[0],
).map(lambda lines: [(str(frame), prompt.strip() or "x") for frame, prompt in sorted(lines)])
PROMPT_FILE = mostly(
    st.builds(
        schedule_file,
        VALID_SCHEDULE,
        st.booleans(),
        st.sampled_from(["\n", "\r\n", "\r"]),
        st.booleans(),
    ),
    st.one_of(
        st.builds(
            schedule_file,
            st.lists(SCHEDULE_LINE, max_size=4),
            st.booleans(),
            st.sampled_from(["\n", "\r\n"]),
            st.booleans(),
        ),
        st.sampled_from(
            [
                b"",
                b"# only a comment\n",
                b"\n\n",
                b"no colon here",
                b"5: b\n0: a\n",
                b"0: a\n0: b",
                b"0: a\n1000000000000: b\n",
                b"-3: a",
                b"0: caf\xe9",
                b"0: a\x00b",
                b"0:",
                b"\xff\xfe",
                b"0: a\n" + b"9" * 5000 + b": b",
                b"0: " + b"x" * 2_000_000,
            ]
        ),  # fmt: skip
        st.binary(max_size=100),
        st.text(max_size=100).map(lambda text: text.encode("utf-8", "surrogatepass")),
    ),
)


def write_media(folder: Path, choice: tuple[str, float | None]) -> str:
    """The path of a media input made in `folder`: a valid file, cut short, or not media."""
    name, share = choice
    if name.startswith(IN_FOLDER):
        return prepare(folder, name)
    data = media().get(name, b"plain text, not media\n" if name == "text" else b"")
    if share is not None:
        data = data[: int(len(data) * share)]
    path = folder / f"input-{name or 'empty'}"
    path.write_bytes(data)
    return str(path)


ANIMATION_ONCE = {"prompts": b"0: a\n10: b\n", "output": "a.mp4"}


@fuzzed(400)
@given(
    prompts=PROMPT_FILE,
    output=OUTPUT,
    flags=flag_values(ANIMATE_FLAGS),
    audio=st.one_of(st.none(), st.none(), MEDIA),
    video=st.one_of(st.none(), st.none(), st.none(), MEDIA),
)
@example(**ANIMATION_ONCE, flags=(("--zoom", "0:(1e308)"),), audio=None, video=None)
@example(**ANIMATION_ONCE, flags=(), audio=("image.png", None), video=("image.png", None))
@example(**ANIMATION_ONCE, flags=(("--duration", "0.1"), ("--fps", "10")), audio=None, video=None)
@example(**ANIMATION_ONCE, flags=(), audio=None, video=("ok.mp4", 0.84375))
def test_animate(workspace, prompts, output, flags, audio, video):
    with example_folder(workspace) as folder:
        schedule = folder / "prompts.txt"
        schedule.write_bytes(prompts)
        image_folder(folder)
        (folder / "clip.mp4").write_bytes(media()["ok.mp4"])
        argv = ["animate", str(schedule), "-o", prepare(folder, IN_FOLDER + output), "--quiet"]
        argv += argv_of(flags, folder)
        if audio is not None:
            argv += ["--audio", write_media(folder, audio)]
        if video is not None:
            argv += ["--init-video", write_media(folder, video)]
        if "--model" not in argv:
            argv += ["--model", "tiny-sd"]
        check(argv, folder)


# --- movie: project files -------------------------------------------------------------------

SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**32, 2**70, 10**12, 1e308, -0.0, 0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
ANY = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
TEXT = st.text(string.ascii_letters + " ", min_size=1, max_size=20).filter(str.strip)
PROJECT_IMAGE = mostly(
    st.sampled_from(["image.png", "missing.png", "text.png", "tiny.png", "song.wav"]), ANY
)
"""An image file named in a project file (relative to its folder; see `image_folder`)."""
FRACTION_VALUE = st.floats(0, 1)
CROSSFEED = st.one_of(
    st.lists(FRACTION_VALUE, min_size=3, max_size=3),
    st.fixed_dictionaries({}, optional={"power": FRACTION_VALUE, "range": FRACTION_VALUE}),
)
BLEND = {
    "steps": st.integers(1, 50),
    "branches": st.integers(2, 40),
    "time_budget": st.floats(0.1, 100),
    "depth_strength": FRACTION_VALUE,
    "quality": st.sampled_from(["lowest", "low", "medium", "high", "ultra"]),
    "plan": PLAN,
    "guidance_scale": st.floats(0, 20),
    "guidance_damper": FRACTION_VALUE,
    "negative_prompt": st.text(max_size=10),
    "prompt_weighting": st.booleans(),
    "width": st.integers(8, 512),
    "height": st.integers(8, 512),
    "keyframe_crossfeed": CROSSFEED,
    "parental_crossfeed": CROSSFEED,
    "batched": st.booleans(),
    "max_batch": st.integers(1, 16),
    "distance": st.sampled_from(["auto", "pixel", "lpips"]),
    "placement": st.sampled_from(["adaptive", "even", "sequential"]),
    "compile": st.sampled_from(["auto", "on", "off"]),
    "vae_dtype": st.sampled_from(["auto", "float32", "float16"]),
    "mask": PROJECT_IMAGE,
    "controlnet": st.lists(
        st.fixed_dictionaries(
            {"model": mostly(st.just("net"), ANY), "images": mostly(st.lists(PROJECT_IMAGE), ANY)},
            optional={
                "scale": mostly(st.floats(0, 5), ANY),
                "preprocess": mostly(st.sampled_from(["none", "canny"]), ANY),
            },
        ),
        max_size=2,
    ),
}


def some_of(fields: dict[str, st.SearchStrategy], unknown: bool = True) -> st.SearchStrategy:
    """Mappings with some of `fields` (mostly valid values), now and then an unknown key."""
    optional = {name: mostly(value, ANY) for name, value in fields.items()}
    if unknown:
        optional["surprise"] = ANY
    return st.fixed_dictionaries({}, optional=optional)


KEYFRAME = mostly(
    st.one_of(
        TEXT,
        st.fixed_dictionaries(
            {"prompt": TEXT},
            optional={
                "seed": mostly(st.integers(0, 2**32 - 1), ANY),
                "duration": mostly(st.floats(0.05, 10), ANY),
                "image": PROJECT_IMAGE,
                "psnr": ANY,
            },
        ),
    ),
    ANY,
)
MOVIE = st.fixed_dictionaries(
    {"keyframes": mostly(st.lists(KEYFRAME, min_size=2, max_size=4), ANY)},
    optional={
        "model": mostly(st.just("tiny-sd"), ANY),
        "fps": mostly(st.floats(1, 60), ANY),
        "duration": mostly(st.floats(0.05, 20), ANY),
        "device": mostly(st.sampled_from(["cpu", "auto"]), ANY),
        "dtype": mostly(st.sampled_from(["float32", "auto"]), ANY),
        "settings": mostly(some_of(BLEND), ANY),
        "kind": st.sampled_from(["movie", 5, None]),
        "latentmorph": ANY,
        "surprise": ANY,
    },
)
SCHEDULE_VALUE = st.one_of(st.floats(0, 2).map(lambda x: f"{x:.3g}"), keyframed(decimal(0, 1)))
ANIMATION = st.fixed_dictionaries(
    {
        "kind": st.just("animation"),
        "prompts": mostly(
            st.lists(st.tuples(st.integers(0, 60), TEXT), min_size=1, max_size=4).map(
                lambda items: [{"frame": f, "prompt": p} for f, p in sorted(dict(items).items())]
            ),
            ANY,
        ),
    },
    optional={
        "model": mostly(st.just("tiny-sd"), ANY),
        "fps": mostly(st.floats(1, 30), ANY),
        "duration": mostly(st.floats(0.1, 10), ANY),
        "mode": mostly(st.sampled_from(["auto", "blend", "walk"]), ANY),
        "seed": mostly(st.integers(0, 2**32 - 1), ANY),
        "steps": mostly(st.integers(1, 50), ANY),
        "width": mostly(st.integers(8, 512), ANY),
        "guidance_scale": mostly(SCHEDULE_VALUE, ANY),
        "strength": mostly(SCHEDULE_VALUE, ANY),
        "zoom": mostly(st.sampled_from(["1.0", "0:(1), 10:(1.1)"]), ANY),
        "angle": mostly(SCHEDULE_VALUE, ANY),
        "border": mostly(st.sampled_from(["replicate", "zero"]), ANY),
        "curve": mostly(st.sampled_from(["linear", "sine", "curve"]), ANY),
        "frequencies": mostly(st.just("1.0, 2.0"), ANY),
        "curve_points": mostly(keyframed(decimal(0, 1)), ANY),
        "fixed_noise": mostly(st.booleans(), ANY),
        "coherence": mostly(
            some_of({"scale": FRACTION_VALUE, "alpha": FRACTION_VALUE, "steps": st.integers(1, 9)}),
            ANY,
        ),
        "audio": mostly(st.sampled_from(["song.wav", "clip.mp4", "missing.wav", "p.yaml"]), ANY),
        "audio_keyframes": mostly(st.sampled_from(["percussive", "whole"]), ANY),
        "audio_timing": mostly(st.sampled_from(["harmonic", "whole"]), ANY),
        "init_video": mostly(st.sampled_from(["clip.mp4", "song.wav", "missing.mp4"]), ANY),
        "blend": mostly(some_of({k: BLEND[k] for k in ("branches", "depth_strength")}), ANY),
        "dtype": mostly(st.just("float32"), ANY),
    },
)
ALIAS_BOMB = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nkeyframes: *c\n"
PROJECT_TEXTS = [
    "", "\n", "# only a comment\n", "keyframes: [a]\n", "keyframes: []\n", "[a, b]\n", "5\n",
    "keyframes: [{prompt: a, duration: 0}, b]\n", "keyframes: [{prompt: a, duration: -1}, b]\n",
    "keyframes: [{prompt: a, seed: 1180591620717411303424}, b]\n", ALIAS_BOMB,
    'keyframes: !!python/object/apply:os.system ["echo hi"]\n', "keyframes: !!binary aGk=\n",
    "keyframes: " + "[" * 200 + "]" * 200 + "\n", "keyframes: [a, b\n", "keyframes: {a: b}\n",
    "keyframes:\n\t- a\n", "kind: animation\n", "kind: animation\nprompts: []\n",
    "keyframes: [a, b]\nfps: .nan\n", "keyframes: [a, b]\nfps: .inf\n", "? [a]\n: b\n",
    "keyframes: [a, b]\nkeyframes: [c, d]\n", "%YAML 1.1\n---\nkeyframes: [a, b]\n",
    "keyframes: [a, b]\n---\nkeyframes: [c, d]\n", "keyframes: [a, b]\nsettings: {steps: 0x10}\n",
]  # fmt: skip


def mutated(text: str, position: int, insert: str, delete: int) -> str:
    """`text` with `delete` characters at `position` replaced by `insert`."""
    position %= len(text) + 1
    return text[:position] + insert + text[position + delete :]


PROJECT_TEXT = st.one_of(
    st.one_of(MOVIE, ANIMATION).map(lambda data: yaml.safe_dump(data, allow_unicode=True)),
    st.one_of(MOVIE, ANIMATION).map(lambda data: yaml.safe_dump(data, allow_unicode=True)),
    st.builds(
        mutated,
        MOVIE.map(yaml.safe_dump),
        st.integers(0, 400),
        st.text(":-[]{}&*!#|>'\"\n\t %@`", max_size=3),
        st.integers(0, 3),
    ),
    st.sampled_from(PROJECT_TEXTS),
    st.text(max_size=200),
)
PROJECT_FILE = st.one_of(
    PROJECT_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.just(None),  # a folder
)


@fuzzed(500)
@given(
    project=PROJECT_FILE,
    output=st.one_of(st.none(), OUTPUT),
    flags=flag_values(
        {
            "--max-batch": COMMON_FLAGS["--max-batch"],
            "--device": COMMON_FLAGS["--device"],
            "--dtype": COMMON_FLAGS["--dtype"],
            "--sheet": TRANSITION_FLAGS["--sheet"],
            "--compile": COMMON_FLAGS["--compile"],
        }
    ),
)
@example(project=ALIAS_BOMB.encode(), output=None, flags=())
@example(project=b"keyframes: [a, b]\nsettings: {plan: 5}\n", output=None, flags=())
@example(
    project=b"keyframes: [a, b]\nsettings: {plan: '1@s99999999999999'}\n", output=None, flags=()
)
def test_movie(workspace, project, output, flags):
    with example_folder(workspace) as folder:
        (folder / "song.wav").write_bytes(media()["ok.wav"])
        (folder / "clip.mp4").write_bytes(media()["ok.mp4"])
        image_folder(folder)
        path = folder / "p.yaml"
        if project is None:
            path.mkdir()
        else:
            path.write_bytes(project)
        argv = ["movie", str(path), "--quiet", *argv_of(flags, folder)]
        if output is not None:
            argv += ["-o", prepare(folder, IN_FOLDER + output)]
        check(argv, folder)


# --- the corpus: cases that once failed -----------------------------------------------------

TRUNCATED_CLIP = ("ok.mp4", 0.84375)
CORPUS = [
    # a line break in a file name split the error over two lines
    (["transition", "a", "b", "-o", "{d}/t.mp4\n"], "cannot write {d}/t.mp4\\n: unknown output"),
    # a damaged video's stream has no frame size: AttributeError
    (["animate", "{prompts}", "--init-video", "{clip}"], "--init-video: {clip} cannot be read"),
    # an image given as video was taken for a video of one frame
    (["animate", "{prompts}", "--init-video", "{image}"], "it is a still image, not a video"),
    # an image given as audio was found out only after the model loaded
    (["animate", "{prompts}", "--audio", "{image}"], "--audio: {image} cannot be read as audio"),
    # 15000 branches were refused only after the model loaded, as `branches: 14999`
    (["transition", "a", "b", "--quality", "ultra", "--duration", "1000"], "--quality: 'ultra'"),
    # a plan of 100000 images was accepted
    (["transition", "a", "b", "--plan", "100000@0.5"], "--plan: 100000 images is not allowed"),
    # int() of an image count of 5000 digits: ValueError
    (["transition", "a", "b", "--plan", "9" * 5000 + "@0.5"], "--plan: '99999"),
    # a time budget of 1e300 seconds was accepted
    (["transition", "a", "b", "--time-budget", "1e300"], "argument --time-budget: '1e300' is"),
    # /proc takes no files: OSError at the first frame, after the model loaded
    (["transition", "a", "b", "-o", "/proc/x.mp4"], "folder /proc does not take new files"),
    # zoom and translation had no upper bound
    (["animate", "{prompts}", "--zoom", "0:(1e308)"], "--zoom: value 1e+308 in '0:(1e308)'"),
    (["animate", "{prompts}", "--translation-x", "1e300"], "--translation-x: value 1e+300"),
    # a duration of less than 2 frames was found out after the model loaded
    (["animate", "{prompts}", "--duration", "0.1", "--fps", "10"], "--duration: 0.1 s at 10"),
    (["transition", "a", "b", "--duration", "0.01"], "--duration: 0.01 s at 30 fps gives 0"),
    # a project file name over 255 bytes: OSError (ENAMETOOLONG) from is_dir()
    (["transition", "a", "b", "-o", "{d}/" + "A" * 251 + ".gif"], "the file name is 256 bytes"),
    # the settings' names instead of the flags' and no allowed values
    (["transition", "a", "b", "--depth-strength", "2"], "argument --depth-strength: '2' is not"),
    (["transition", "a", "b", "--keyframe-crossfeed", "0", "2", "0"], "crossfeed: RANGE '2'"),
    (["transition", "a", "b", "--branches", "x"], "'x' is not a whole number; use a whole"),
    (["animate", "{prompts}", "--coherence-scale", "5"], "argument --coherence-scale: '5' is"),
    (["animate", "{prompts}", "--mode", "blend", "--zoom", "1.1"], "--mode: 'blend' cannot be"),
    (["transition", "", "b"], "prompt_a: missing; give a non-empty prompt"),
    # a project file's plan that is not text: AttributeError
    (["movie", "{project:settings: {plan: 5}}"], "plan: 5 is not allowed; use text such as"),
    (["movie", "{project:settings: {time_budget: 1.0e+300}}"], "time_budget: 1e+300 is not"),
    (["movie", "{project:settings: {keyframe_crossfeed: [0, 2, 0]}}"], "keyframe_crossfeed.range"),
    (["movie", "{project:settings: {quality: ultra}\nduration: 1000}"], "quality: 'ultra' gives"),
    # an m4a cut before its codec's parameters: AttributeError (the stream has no rate)
    (["animate", "{prompts}", "--audio", "{m4a}"], "--audio: {m4a} cannot be read as audio (it"),
]


def corpus_argv(words: list[str], folder: Path) -> tuple[list[str], dict[str, str]]:
    """The words with their placeholders filled: {d} the folder, {prompts} a schedule file,
    {clip} a damaged video, {m4a} a damaged m4a, {image} a PNG, {project:TEXT} a movie project
    file with TEXT."""
    files = {"d": str(folder), "prompts": str(folder / "prompts.txt")}
    (folder / "prompts.txt").write_text("0: a\n10: b\n")
    files["clip"] = write_media(folder, TRUNCATED_CLIP)
    files["m4a"] = write_media(folder, ("ok.m4a", 0.97265625))
    files["image"] = write_media(folder, ("image.png", None))
    argv = []
    for word in words:
        if word.startswith("{project:"):
            (folder / "p.yaml").write_text(f"model: tiny-sd\nkeyframes: [a, b]\n{word[9:-1]}\n")
            word = str(folder / "p.yaml")
        for key, value in files.items():
            word = word.replace(f"{{{key}}}", value)
        argv.append(word)
    if argv[0] != "movie" and "-o" not in argv:
        argv += ["-o", str(folder / "out.mp4")]
    if argv[0] != "movie":
        argv += ["--model", "tiny-sd"]
    return argv, files


@pytest.mark.parametrize("words, expected", CORPUS)
def test_corpus(workspace, words, expected):
    with example_folder(workspace) as folder:
        argv, files = corpus_argv(words, folder)
        line = check([*argv, "--quiet"], folder)
        assert expected.format(**files) in line
