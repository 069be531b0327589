"""The bundled demo model: a small SDXL-architecture text-to-image model of flat coloured shapes.

`dataset` renders the captioned training images, `train` trains the model from scratch and
`quality` measures whether generated images match their prompts. The trained model lies in
`latentmorph/models/demo` (`models.presets.DEMO_MODEL_DIR`).
"""
