"""The names that options with a fixed set of choices accept.

Free of heavy imports, so that the command line can offer them without loading torch.
"""

DEVICES = ("auto", "cuda", "mps", "cpu")
"""Device kinds; cuda, mps and cpu take an index too (cuda:1)."""
DTYPES = ("auto", "float16", "bfloat16", "float32")
QUALITIES = ("lowest", "low", "medium", "high", "ultra")
DISTANCES = ("auto", "pixel", "lpips")
PLACEMENTS = ("adaptive", "even", "sequential")
COMPILE_MODES = ("auto", "on", "off")
VAE_DTYPES = ("auto", "float32", "bfloat16", "float16")
ANIMATION_MODES = ("auto", "blend", "walk")
BORDER_MODES = ("replicate", "reflect", "zero")
CURVES = ("linear", "sine", "curve")
AUDIO_COMPONENTS = ("percussive", "harmonic", "whole")
AUDIO_REDUCTIONS = ("max", "median", "mean")
FILLERS = ("flow", "crossfade")
"""Ways of making the filler frames between computed images (`movie.fillers`)."""
CONTROL_PREPROCESSORS = ("none", "canny")
"""What is done to a control image before the ControlNet reads it (`control_inputs`)."""
