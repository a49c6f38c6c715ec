"""Ruler, angle and ROI statistics in world mm and the image's units."""

import numpy as np
import pytest

from viewer.core.measurements import Measurement, angle_deg, distance_mm, roi_statistics
from viewer.core.volume import Volume


def test_ruler_and_angle():
    assert distance_mm((0, 0, 0), (3, 4, 12)) == pytest.approx(13)
    assert angle_deg((1, 0, 0), (0, 0, 0), (0, 2, 0)) == pytest.approx(90)
    m = Measurement("ruler", [[0, 0, 0], [3, 4, 12]], "test", {"length_mm": 13.0})
    assert m.to_json()["values"]["length_mm"] == 13.0


def test_roi_statistics_on_known_image():
    arr = np.zeros((3, 50, 60), np.int16)
    arr[1, 10:30, 20:40] = 100
    vol = Volume(arr, spacing=(0.5, 0.5, 2.0), modality="CT", units="HU")
    a, b = vol.index_to_world((20, 10, 1)), vol.index_to_world((39, 29, 1))
    rect = roi_statistics(vol, a, b, "rectangle")
    assert rect["mean"] == 100 and rect["voxels"] == 400 and rect["area_mm2"] == pytest.approx(100)
    ell = roi_statistics(vol, a, b, "ellipse")
    assert ell["mean"] == 100 and ell["voxels"] < 400 and ell["units"] == "HU"
