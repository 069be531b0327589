"""Keyframed animations: schedules, curves, walks, motion, audio and video input."""

DEFAULT_FPS = 24.0
"""Frames per second of an animation given neither fps nor a video input."""
