"""Card normalisations of PET in SUV: linear and logarithmic."""

import numpy as np
import pytest

from ai.normalize import normalize
from viewer.core.errors import ModelError


def test_suv_is_clipped_to_its_maximum_and_scaled_to_one():
    out = normalize(np.array([-1.0, 0.0, 5.0, 20.0, 40.0], np.float32), {"kind": "suv", "max": 20})
    np.testing.assert_allclose(out, [0.0, 0.0, 0.25, 1.0, 1.0])


def test_log_suv_keeps_a_faint_lesion_s_contrast_against_a_hot_organ():
    suv = np.array([0.7, 3.0, 2.0, 10.0, 20.0, 35.0], np.float32)  # background, faint lesion, organ, hot organ, max
    linear = normalize(suv, {"kind": "suv", "max": 20})
    log = normalize(suv, {"kind": "suv", "max": 20, "log": True})
    np.testing.assert_allclose(log, np.log1p(np.minimum(suv, 20)) / np.log1p(20), rtol=1e-6)
    assert log[-2] == pytest.approx(1.0) and log[-1] == pytest.approx(1.0)
    # the faint lesion stands out from its background by a larger share of the range than linearly
    faint_vs_hot = lambda x: (x[1] - x[0]) / (x[3] - x[2])  # noqa: E731
    assert faint_vs_hot(log) > 1.5 * faint_vs_hot(linear)


def test_an_unknown_normalisation_is_refused():
    with pytest.raises(ModelError, match="unknown normalisation"):
        normalize(np.zeros(3, np.float32), {"kind": "suv_cubed"})
