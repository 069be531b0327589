"""latentmorph: butter-smooth videos with latent diffusion models.

The public names are imported on first use, so `import latentmorph` stays cheap.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "BlendSettings": ".blending.settings",
    "BranchingPlan": ".blending.plan",
    "Crossfeed": ".blending.crossfeed",
    "DeviceMemoryError": ".errors",
    "Keyframe": ".project",
    "LatentmorphError": ".errors",
    "MovieRenderer": ".render",
    "Project": ".project",
    "Summary": ".render",
    "Transition": ".transition",
    "adapter_for": ".models.loading",
    "load_pipeline": ".models.loading",
    "render_project": ".render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'latentmorph' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
