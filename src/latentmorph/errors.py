"""Exceptions raised for bad user input; the CLI prints their message on one line and exits 2."""


class LatentmorphError(ValueError):
    """Base class of every error caused by what the user asked for."""


class InputError(LatentmorphError):
    """A setting, prompt or option has a value that is not allowed."""


class ProjectFileError(LatentmorphError):
    """A project file cannot be read or does not describe a valid project."""


class ModelLoadError(LatentmorphError):
    """A model cannot be found or loaded."""


class OutputError(LatentmorphError):
    """An output path cannot be written."""


class ScheduleError(InputError):
    """A prompt schedule, parameter schedule or curve is malformed or out of range."""


class MediaError(InputError):
    """An audio or video input cannot be read."""


class DeviceMemoryError(LatentmorphError):
    """The device ran out of memory even for one image at a time."""
