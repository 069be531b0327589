"""Shared fixtures: tiny pipelines built in code, offline."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402

from latentmorph.models.loading import adapter_for  # noqa: E402
from latentmorph.models.presets import TINY_DEFAULTS  # noqa: E402
from latentmorph.models.tiny import tiny_sd_pipeline, tiny_sdxl_pipeline  # noqa: E402


@pytest.fixture(scope="session")
def tiny_sd():
    return adapter_for(tiny_sd_pipeline(), TINY_DEFAULTS, "tiny-sd")


@pytest.fixture(scope="session")
def tiny_sdxl():
    return adapter_for(tiny_sdxl_pipeline(), TINY_DEFAULTS, "tiny-sdxl")


@pytest.fixture(scope="session")
def tiny_vpred():
    """SD-style pipeline with v-prediction (as SD 2.x 768)."""
    return adapter_for(tiny_sd_pipeline(prediction_type="v_prediction"), TINY_DEFAULTS, "vpred")


@pytest.fixture(scope="session")
def tiny_turbo():
    """SDXL-style pipeline with a turbo-style schedule: 4 trailing steps, no guidance."""
    pipe = tiny_sdxl_pipeline(timestep_spacing="trailing")
    defaults = TINY_DEFAULTS.__class__(4, 0.0, 64, 64, (1.0, 1.0, 1.0), few_step=True)
    return adapter_for(pipe, defaults, "turbo")


@pytest.fixture(params=["tiny_sd", "tiny_sdxl", "tiny_vpred", "tiny_turbo"])
def any_model(request):
    return request.getfixturevalue(request.param)
