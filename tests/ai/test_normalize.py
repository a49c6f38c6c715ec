"""Card normalisations: PET in SUV, unknown kinds."""

import numpy as np
import pytest

from ai.normalize import normalize
from viewer.core.errors import ModelError


def test_suv_is_clipped_to_its_maximum_and_scaled_to_one():
    out = normalize(np.array([-1.0, 0.0, 5.0, 20.0, 40.0], np.float32), {"kind": "suv", "max": 20})
    np.testing.assert_allclose(out, [0.0, 0.0, 0.25, 1.0, 1.0])


def test_an_unknown_normalisation_is_refused():
    with pytest.raises(ModelError, match="unknown normalisation"):
        normalize(np.zeros(3, np.float32), {"kind": "suv_cubed"})
