"""Reading a project file of either kind: a movie of keyframes or an animation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .project import Project, errors_naming, project_kind, read_project_data

if TYPE_CHECKING:
    from .animation.settings import Animation


def load_project(path: str | Path) -> Project | Animation:
    """Reads a project file: a `Project` (movie of keyframes) or, with `kind: animation`, an
    `Animation`; paths of audio, video and mask are taken relative to the file's folder. Errors
    name the file and the field; animation modules are imported for animations only."""
    path = Path(path)
    data = read_project_data(path)
    with errors_naming(path):
        if project_kind(data) == "animation":
            from .animation.settings import Animation

            project = Animation.from_dict(data, folder=path.parent)
        else:
            project = Project.from_dict(data, folder=path.parent)
    project.source = path
    return project
