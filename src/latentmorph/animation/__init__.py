"""Keyframed animations: schedules, curves, walks, motion, audio and video input."""
