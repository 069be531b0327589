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
