"""What the command line sets up in its own process: thread waiting, library chatter, notes."""

from __future__ import annotations

import logging
import os
import sys


def prepare_process() -> None:
    """Sets the environment defaults of the command's process and shows the library's notes.

    Call it before torch is imported: OpenMP reads OMP_WAIT_POLICY once, when it starts.
    """
    _prefer_passive_threads()
    _quiet_libraries()
    _show_notes()


def _prefer_passive_threads() -> None:
    """Lets idle OpenMP threads sleep instead of spinning, unless the environment says otherwise:
    without this, torch on a few cores stalls whenever another process competes for them."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _quiet_libraries() -> None:
    """Silences the libraries' import-time chatter (optional backends, casting notes)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


class _NoteHandler(logging.Handler):
    """Prints the library's logged warnings as `latentmorph: note: ...` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"latentmorph: note: {record.getMessage()}", file=sys.stderr)


def _show_notes() -> None:
    """Prints the library's logged warnings as notes, with one handler however often it runs."""
    logger = logging.getLogger("latentmorph")
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        logger.addHandler(_NoteHandler())
        logger.propagate = False
