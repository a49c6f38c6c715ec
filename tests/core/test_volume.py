"""Volume geometry: index<->world maps follow SimpleITK exactly, types are kept, no float64."""

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.volume import Volume


def _oblique_image():
    img = sitk.Image(7, 5, 3, sitk.sitkInt16)
    img.SetSpacing((0.7, 1.3, 2.5))
    img.SetOrigin((-10.0, 20.0, 5.0))
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ np.diag([-1, 1, 1])
    img.SetDirection(tuple(rot.ravel()))
    return img


def test_index_to_world_matches_simpleitk_for_oblique_anisotropic_grid():
    img = _oblique_image()
    vol = Volume.from_sitk(img)
    for idx in [(0, 0, 0), (6, 4, 2), (3, 1, 2)]:
        expected = img.TransformIndexToPhysicalPoint(idx)
        assert np.allclose(vol.index_to_world(idx), expected)
        assert np.allclose(vol.world_to_index(expected), idx)


def test_sitk_round_trip_keeps_geometry_and_dtype():
    img = _oblique_image()
    vol = Volume.from_sitk(img, modality="CT", units="HU")
    back = vol.to_sitk()
    assert vol.array.dtype == np.int16
    assert vol.size == img.GetSize()
    assert np.allclose(back.GetDirection(), img.GetDirection())
    assert np.allclose(back.GetOrigin(), img.GetOrigin())
    assert np.allclose(back.GetSpacing(), img.GetSpacing())


def test_float64_is_never_stored_and_bad_shapes_are_refused():
    vol = Volume(np.zeros((2, 3, 4)))
    assert vol.array.dtype == np.float32
    with pytest.raises(ValueError, match="3D"):
        Volume(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="spacing"):
        Volume(np.zeros((2, 2, 2), np.int16), spacing=(1, 0, 1))


def test_value_at_world_point_and_outside():
    arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    vol = Volume(arr, spacing=(2, 2, 2), origin=(10, 0, 0))
    assert vol.value_at((12, 2, 2)) == arr[1, 1, 1]
    assert vol.value_at((-50, 0, 0)) is None
