"""Web UI: pick keyframes from candidates, arrange them, render transitions and animations.

Gradio's usage analytics are turned off for every process that imports the UI.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
