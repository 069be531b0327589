import numpy as np
import pytest

from latentmorph.blending.crossfeed import Crossfeed
from latentmorph.errors import InputError


def test_keyframe_coefficients_decay_over_range_then_zero():
    c = Crossfeed(0.3, 0.6, 0.9).keyframe_coefficients(10)
    np.testing.assert_allclose(c[:6], np.linspace(0.3, 0.27, 6))
    assert (c[6:] == 0).all()


def test_parental_coefficients_hold_power_before_injection():
    c = Crossfeed(0.5, 0.8, 0.5).parental_coefficients(10, start=3)
    np.testing.assert_allclose(c[:3], 0.5)
    np.testing.assert_allclose(c[3:8], np.linspace(0.5, 0.25, 5))
    assert (c[8:] == 0).all()


def test_parental_range_before_injection_gives_power_then_zero():
    c = Crossfeed(1.0, 0.2, 1.0).parental_coefficients(10, start=5)
    np.testing.assert_allclose(c, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0])


@pytest.mark.parametrize(
    "field, args", [("power", (1.5, 0, 0)), ("range", (0, -1, 0)), ("decay", (0, 0, 2))]
)
def test_values_outside_unit_interval_are_refused(field, args):
    with pytest.raises(InputError, match=f"crossfeed {field}"):
        Crossfeed(*args)
