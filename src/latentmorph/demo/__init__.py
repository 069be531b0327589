"""The bundled demo model: a small SDXL-architecture text-to-image model of flat coloured shapes.

`dataset` renders the captioned training images, `train` trains the model from scratch and
`quality` measures whether generated images match their prompts.
"""

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "demo"
"""The folder of the bundled, trained demo model (a diffusers SDXL pipeline)."""
