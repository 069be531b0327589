"""VideoInput on small clips generated with PyAV: metadata, colours, resizing, streaming, errors."""

import inspect
import itertools
import wave

import numpy as np
import pytest

from latentmorph.animation.video_input import VideoInput
from latentmorph.errors import InputError, MediaError

from .media import COLOURS, FPS, HEIGHT, TOLERANCE, WIDTH, write_clip


@pytest.fixture(params=[("clip.mp4", "libx264"), ("clip.mkv", "mpeg4")], ids=["mp4", "mkv"])
def clip(request, tmp_path):
    name, codec = request.param
    return write_clip(tmp_path / name, codec)


def mean_colour(image):
    return np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def test_metadata(clip):
    with VideoInput(clip) as video:
        assert video.fps == pytest.approx(FPS)
        assert video.frame_count == len(COLOURS)
        assert video.size == (WIDTH, HEIGHT)


def test_iteration_yields_every_frame_in_order_with_its_colour(clip):
    with VideoInput(clip) as video:
        images = list(video)
    assert len(images) == len(COLOURS)
    for image, colour in zip(images, COLOURS):
        assert image.mode == "RGB"
        assert image.size == (WIDTH, HEIGHT)
        np.testing.assert_allclose(mean_colour(image), colour, atol=TOLERANCE)


def test_each_iteration_starts_from_the_first_frame(clip):
    with VideoInput(clip) as video:
        first = [mean_colour(image) for image in video.frames(limit=3)]
        again = [mean_colour(image) for image in video]
    assert len(first) == 3 and len(again) == len(COLOURS)
    np.testing.assert_allclose(first, again[:3], atol=1)


def test_resizes_to_the_given_size(clip):
    with VideoInput(clip, size=(32, 20)) as video:
        assert video.size == (32, 20)
        images = list(video.frames(limit=4))
    assert [image.size for image in images] == [(32, 20)] * 4
    np.testing.assert_allclose(mean_colour(images[3]), COLOURS[3], atol=TOLERANCE)


def test_limit_caps_the_frames_and_a_huge_limit_is_harmless(clip):
    with VideoInput(clip) as video:
        assert len(list(video.frames(limit=5))) == 5
        assert len(list(video.frames(limit=0))) == 0
        assert len(list(video.frames(limit=10**12))) == len(COLOURS)


class CountingContainer:
    """Stands in for the PyAV container and counts the frames decoded from it."""

    def __init__(self, container):
        self.container = container
        self.decoded = 0

    def __getattr__(self, name):
        return getattr(self.container, name)

    def decode(self, *args, **kwargs):
        for frame in self.container.decode(*args, **kwargs):
            self.decoded += 1
            yield frame


def test_iteration_streams_instead_of_decoding_the_whole_file(clip):
    with VideoInput(clip) as video:
        counter = CountingContainer(video._container)
        video._container = counter
        frames = iter(video)
        assert inspect.isgenerator(frames)
        assert counter.decoded == 0
        [first] = itertools.islice(frames, 1)
        assert counter.decoded == 1
        np.testing.assert_allclose(mean_colour(first), COLOURS[0], atol=TOLERANCE)
        assert len(list(frames)) == len(COLOURS) - 1
        assert counter.decoded == len(COLOURS)


def test_close_releases_the_file(clip):
    video = VideoInput(clip)
    video.close()
    with pytest.raises(MediaError, match="closed"):
        video.frames()


def test_missing_file(tmp_path):
    path = tmp_path / "nothing.mp4"
    with pytest.raises(MediaError, match="nothing.mp4"):
        VideoInput(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"not a video at all " * 50)
    with pytest.raises(MediaError, match="garbage.mp4") as caught:
        VideoInput(path)
    assert "\n" not in str(caught.value)


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.zeros(800, dtype="<i2").tobytes())
    with pytest.raises(MediaError, match="tone.wav.*no video stream"):
        VideoInput(path)


@pytest.mark.parametrize("size", [(0, 10), (10,), (10.5, 10), "64x48"])
def test_bad_size(clip, size):
    with pytest.raises(InputError, match="size"):
        VideoInput(clip, size=size)


@pytest.mark.parametrize("limit", [-1, 2.5, True])
def test_bad_limit(clip, limit):
    with VideoInput(clip) as video, pytest.raises(InputError, match="limit"):
        video.frames(limit=limit)
