"""Generated audio and video inputs for tests."""

import wave

import av
import numpy as np

RATE = 22050
LENGTH = 3.2
CLICKS = (0.5, 1.25, 2.0, 2.6)


def write_wav(path, samples):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def click_samples():
    samples = np.zeros(round(LENGTH * RATE))
    t = np.arange(round(0.05 * RATE)) / RATE
    click = 0.8 * np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.01)
    for time in CLICKS:
        start = round(time * RATE)
        samples[start : start + click.size] += click
    return samples


WIDTH, HEIGHT, FPS = 64, 48, 8
COLOURS = [
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 255, 255),
    (0, 0, 0),
    (128, 128, 128),
    (255, 128, 0),
    (128, 0, 255),
    (0, 128, 64),
]
TOLERANCE = 12  # codec and yuv420p rounding on flat colours


def write_clip(path, codec="libx264"):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "0"}
        for colour in COLOURS:
            pixels = np.full((HEIGHT, WIDTH, 3), colour, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def tone_samples(freq, rate, length=LENGTH, channels=1):
    t = np.arange(round(length * rate)) / rate
    return np.tile(0.5 * np.sin(2 * np.pi * freq * t), (channels, 1))


def write_aac(path, samples, rate=RATE, video=False, options=None):
    """AAC audio of `samples` (one row per channel) in the container `path` names, e.g. m4a, mp4.

    With `video`, the file also gets a black video track as long as the audio.
    """
    samples = np.atleast_2d(samples).astype(np.float32)
    with av.open(str(path), "w", options=options or {}) as container:
        audio = container.add_stream("aac", rate=rate)
        audio.layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
        pictures = _add_video(container) if video else None
        for start in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=audio.layout.name)
            frame.sample_rate, frame.pts = rate, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
        if pictures is not None:
            black = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            for _ in range(round(samples.shape[1] / rate * FPS)):
                container.mux(pictures.encode(av.VideoFrame.from_ndarray(black)))
            container.mux(pictures.encode())
    return path


def _add_video(container):
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    return stream
