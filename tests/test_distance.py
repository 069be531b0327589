"""Image distances: pixel always, LPIPS only from weights already cached unless asked for."""

import sys
import types

import pytest
import torch
from PIL import Image

from latentmorph.blending import distance as distances
from latentmorph.blending.distance import ALEXNET_WEIGHTS, get_distance, pixel_distance
from latentmorph.errors import InputError
from latentmorph.pixels import to_pixels

BLACK, WHITE = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), "white")
GREY = Image.new("RGB", (8, 8), (51, 51, 51))


class _MeanAbsoluteLPIPS(torch.nn.Module):
    """Stands in for lpips.LPIPS: mean absolute difference of the [-1, 1] images."""

    built = 0

    def __init__(self, net: str, verbose: bool) -> None:
        super().__init__()
        assert net == "alex"
        _MeanAbsoluteLPIPS.built += 1

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)


class _MissingWeightsLPIPS:
    def __init__(self, **kwargs) -> None:
        raise OSError("alexnet weights not found")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache; the test may put a checkpoint in it."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


def _fake_lpips(monkeypatch, model) -> None:
    module = types.ModuleType("lpips")
    module.LPIPS = model
    monkeypatch.setitem(sys.modules, "lpips", module)


def _cache_weights(hub) -> None:
    (hub / "checkpoints").mkdir()
    (hub / "checkpoints" / ALEXNET_WEIGHTS).write_bytes(b"stand-in")


def test_auto_without_lpips_is_pixel_and_lpips_is_explicit(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # not installed
    assert get_distance("auto") is pixel_distance
    with pytest.raises(InputError, match="^distance: lpips is not installed; pip install lpips$"):
        get_distance("lpips")
    with pytest.raises(InputError, match="distance: 'ssim'"):
        get_distance("ssim")


def test_weights_are_looked_for_in_torch_hubs_checkpoints(hub):
    assert distances.alexnet_weights_path() == hub / "checkpoints" / "alexnet-owt-7be5be79.pth"


def test_auto_without_cached_weights_never_builds_lpips_and_says_how_to_get_it(
    hub, monkeypatch, caplog
):
    _fake_lpips(monkeypatch, _MeanAbsoluteLPIPS)
    built = _MeanAbsoluteLPIPS.built
    assert get_distance("auto") is pixel_distance
    assert _MeanAbsoluteLPIPS.built == built
    assert not (hub / "checkpoints").exists()
    assert "LPIPS's weights are not downloaded" in caplog.text
    assert "using the pixel distance" in caplog.text
    assert "run once with --distance lpips" in caplog.text


def test_auto_with_cached_weights_uses_lpips(hub, monkeypatch, caplog):
    _fake_lpips(monkeypatch, _MeanAbsoluteLPIPS)
    _cache_weights(hub)
    distance = get_distance("auto")
    assert distance is not pixel_distance
    assert distance(to_pixels([BLACK, BLACK]), to_pixels([WHITE, GREY])) == pytest.approx(
        [2.0, 51 / 127.5]
    )
    assert caplog.text == ""


def test_explicit_lpips_downloads_missing_weights_with_a_note(hub, monkeypatch, caplog):
    _fake_lpips(monkeypatch, _MeanAbsoluteLPIPS)
    assert get_distance("lpips") is not pixel_distance
    assert f"downloading LPIPS's AlexNet weights (about 230 MB) to {hub / 'checkpoints'}" in (
        caplog.text
    )


def test_unreadable_weights_fall_back_with_a_note_unless_asked_for(hub, monkeypatch, caplog):
    _fake_lpips(monkeypatch, _MissingWeightsLPIPS)
    _cache_weights(hub)
    assert get_distance("auto") is pixel_distance
    assert "lpips could not load (alexnet weights not found); using the pixel distance" in (
        caplog.text
    )
    with pytest.raises(
        InputError, match=r"^distance: lpips could not load its weights \(alexnet weights not"
    ):
        get_distance("lpips")


def test_pixel_distance_orders_changes_by_size():
    red = Image.new("RGB", (64, 64), (200, 30, 30))
    darker = Image.new("RGB", (64, 64), (180, 30, 30))
    blue = Image.new("RGB", (64, 64), (30, 30, 200))
    near, far, same = pixel_distance(to_pixels([red, red, red]), to_pixels([darker, blue, red]))
    assert same == 0 and 0 < near < far
