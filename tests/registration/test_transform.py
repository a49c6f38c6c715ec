"""Transform: the fixed -> moving convention, matrices, inverse, nudge, ITK files and resampling."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.errors import RegistrationError
from viewer.core.registration import Transform
from viewer.core.volume import Volume


def rigid(angles_deg=(3.0, -2.0, 5.0), translation=(4.0, -3.0, 2.5), centre=(10.0, -5.0, 0.0)) -> Transform:
    return Transform(sitk.Euler3DTransform(centre, *np.deg2rad(angles_deg).tolist(), translation), "test rigid")


def bspline(fixed: Volume) -> Transform:
    """A smooth non-linear transform: rigid, then a B-spline with a few mm of displacement."""
    img = fixed.to_sitk()
    bs = sitk.BSplineTransformInitializer(img, [3, 3, 3], order=3)
    rng = np.random.default_rng(1)
    bs.SetParameters(rng.normal(0, 3.0, bs.GetNumberOfParameters()).tolist())
    return Transform(sitk.CompositeTransform([rigid().sitk, bs]), "test bspline")


def dot_volume(point_lps, *, spacing=(2.0, 2.0, 2.0), size=(40, 40, 30), origin=(-40.0, -40.0, -30.0),
               dtype=np.float32, value=100, units="SUVbw", modality="PT") -> Volume:
    """A volume that is zero except a bright voxel nearest to ``point_lps``."""
    vol = Volume(np.zeros(size[::-1], dtype), spacing, origin, np.eye(3), modality, units)
    i, j, k = np.rint(vol.world_to_index(point_lps)).astype(int)
    vol.array[k, j, i] = value
    return vol


@pytest.fixture
def grids():
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    rot *= np.sign(np.linalg.det(rot))
    size, spacing = np.array([32, 36, 30]), np.array([2.5, 2.0, 3.0])
    origin = -rot @ ((size - 1) * spacing / 2)  # centred on the world origin, obliquely oriented
    return Volume(np.zeros(size[::-1], np.int16), tuple(spacing), tuple(origin), rot, "CT", "HU")


def test_fixed_to_moving_maps_points_like_simpleitk():
    t = rigid()
    pts = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 0.0], [30.0, 40.0, -20.0]])
    expected = np.array([t.sitk.TransformPoint(tuple(p)) for p in pts])
    np.testing.assert_allclose(t.fixed_to_moving(pts), expected)
    np.testing.assert_allclose(t.fixed_to_moving(pts[2]), expected[2])
    np.testing.assert_allclose(t.fixed_to_moving([10.0, -5.0, 0.0]), np.array([14.0, -8.0, 2.5]), atol=1e-12)


def test_matrix_and_offset_are_the_homogeneous_fixed_to_moving_map():
    t = rigid()
    pts = np.random.default_rng(2).uniform(-100, 100, (5, 3))
    homo = np.c_[pts, np.ones(len(pts))] @ t.matrix.T
    np.testing.assert_allclose(homo[:, :3], t.fixed_to_moving(pts), atol=1e-9)
    np.testing.assert_allclose(t.offset, t.fixed_to_moving([0.0, 0.0, 0.0]), atol=1e-12)
    assert t.is_linear


def test_inverse_undoes_the_mapping_and_bspline_has_none(grids):
    t = rigid()
    pts = np.random.default_rng(3).uniform(-80, 80, (6, 3))
    np.testing.assert_allclose(t.inverse().fixed_to_moving(t.fixed_to_moving(pts)), pts, atol=1e-9)
    np.testing.assert_allclose(t.moving_to_fixed(t.fixed_to_moving(pts)), pts, atol=1e-9)
    b = bspline(grids)
    assert not b.is_linear and b.matrix is None and b.offset is None
    with pytest.raises(RegistrationError, match="no exact inverse"):
        b.inverse()


def test_resample_puts_the_moving_value_at_the_fixed_point_that_maps_onto_it():
    """ITK convention: the resampled image at fixed point p shows the moving image at T(p)."""
    t = rigid()
    fixed_point = np.array([6.0, -8.0, 4.0])
    moving = dot_volume(t.fixed_to_moving(fixed_point), spacing=(1.0, 1.0, 1.0), size=(80, 80, 60))
    fixed = Volume(np.zeros((30, 40, 40), np.float32), (2.0, 2.0, 2.0), (-40.0, -40.0, -30.0))
    out = t.resample(moving, fixed)
    k, j, i = np.unravel_index(int(np.argmax(out.array)), out.array.shape)
    assert np.linalg.norm(fixed.index_to_world([i, j, k]) - fixed_point) <= np.sqrt(3)  # within one fixed voxel
    assert out.same_grid(fixed) and out.units == "SUVbw" and out.modality == "PT"


def test_resample_equals_simpleitks_own_resample(grids):
    rng = np.random.default_rng(4)
    moving = Volume(rng.normal(0, 1, (40, 44, 48)).astype(np.float32), (2.0, 2.2, 1.8), (-50.0, -45.0, -40.0),
                    modality="MR", units="arbitrary")
    for t in (rigid(), bspline(grids)):
        ours = t.resample(moving, grids).array
        ref = sitk.GetArrayFromImage(sitk.Resample(moving.to_sitk(), grids.to_sitk(), t.sitk, sitk.sitkLinear, 0.0))
        np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_resample_keeps_ct_int16_hu_without_overflow_and_pet_float_suv(grids):
    """A CT stays int16 HU: B-spline overshoot next to 3071 HU is clipped, not wrapped to negative values."""
    arr = np.full((40, 40, 40), -1000, np.int16)
    arr[10:30, 10:30, 10:30] = 32767  # worst case: overshoot above the int16 range
    ct = Volume(arr, (2.0, 2.0, 2.0), (-40.0, -40.0, -40.0), modality="CT", units="HU")
    t = rigid(translation=(0.3, 0.7, -0.2))
    out = t.resample(ct, grids, interpolator="bspline")
    assert out.array.dtype == np.int16 and out.units == "HU" and out.modality == "CT"
    exact = sitk.GetArrayFromImage(sitk.Resample(ct.to_sitk(), grids.to_sitk(), t.sitk, sitk.sitkBSpline, -1024.0,
                                                 sitk.sitkFloat32))
    assert exact.max() > 32767  # the interpolation overshoots ...
    np.testing.assert_array_equal(out.array, np.clip(np.rint(exact), -32768, 32767))  # ... and is clipped
    assert out.array.max() == 32767 and out.array[0, 0, 0] == -1024  # air outside the CT's field of view
    pet = dot_volume((0.0, 0.0, 0.0), value=7.5)
    out_pet = rigid().resample(pet, grids)
    assert out_pet.array.dtype == np.float32 and out_pet.units == "SUVbw"


def test_resample_rounds_integer_values():
    ct = Volume(np.array([[[0, 3, -3, 0]]] * 3, np.int16).repeat(3, axis=1), (1.0, 1.0, 1.0), modality="CT",
                units="HU")
    shifted = Transform.from_matrix(np.array([[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]))
    out = shifted.resample(ct, ct)
    # linear values 1.5, 0, -1.5 at x + 0.5: rounded to 2, 0, -2 (truncation would give 1, 0, -1)
    assert out.array[1, 1].tolist() == [2, 0, -2, -1024]


@pytest.mark.parametrize("suffix", [".tfm", ".h5"])
def test_file_round_trip_keeps_the_mapping(tmp_path, grids, suffix):
    pts = np.random.default_rng(5).uniform(-30, 30, (8, 3))
    for t in (rigid(), Transform.from_matrix(np.array([[1.05, 0.02, 0, 3], [0, 0.97, 0.01, -2], [0.03, 0, 1.1, 1],
                                                       [0, 0, 0, 1]])), bspline(grids)):
        path = t.save(tmp_path / f"t{suffix}")
        back = Transform.load(path)
        np.testing.assert_allclose(back.fixed_to_moving(pts), t.fixed_to_moving(pts), atol=1e-6)
        assert back.is_linear == t.is_linear


def test_tfm_text_is_itks_euler3d_with_fixed_to_moving_parameters(tmp_path):
    text = rigid().save(tmp_path / "r.tfm").read_text()
    assert "Transform: Euler3DTransform_double_3_3" in text
    assert "FixedParameters: 10 -5 0" in text


def test_load_and_save_errors_name_the_file(tmp_path):
    with pytest.raises(RegistrationError, match="no such transform file") as err:
        Transform.load(tmp_path / "missing.tfm")
    assert "missing.tfm" in str(err.value)
    bad = tmp_path / "bad.tfm"
    bad.write_text("not a transform\n")
    with pytest.raises(RegistrationError, match="not a readable ITK transform file") as err:
        Transform.load(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(RegistrationError, match="transform files end with"):
        rigid().save(tmp_path / "t.json")


def test_nudge_moves_the_shown_content_by_the_motion():
    """A nudge of +d mm moves what is shown at fixed point p to p + d; a rotation turns it about the centre."""
    t = rigid()
    p = np.array([20.0, 5.0, -10.0])
    d = np.array([1.0, -0.5, 0.25])
    nudged = t.compose_nudge(translation_mm=d)
    np.testing.assert_allclose(nudged.fixed_to_moving(p + d), t.fixed_to_moving(p), atol=1e-9)
    centre = np.array([20.0, 0.0, -10.0])
    turned = t.compose_nudge(rotation_deg=(0.0, 0.0, 90.0), center_lps=centre)
    # +90 deg about z (LPS): the point 5 mm posterior of the centre turns to 5 mm right
    np.testing.assert_allclose(turned.fixed_to_moving(centre + [-5.0, 0.0, 0.0]), t.fixed_to_moving(p), atol=1e-9)
    assert nudged.is_linear and type(nudged.sitk) is sitk.Euler3DTransform


def test_nudge_composes_in_front_of_a_bspline(grids):
    b = bspline(grids)
    d = np.array([2.0, 0.0, 0.0])
    p = np.array([0.0, 5.0, 3.0])
    np.testing.assert_allclose(b.compose_nudge(translation_mm=d).fixed_to_moving(p + d), b.fixed_to_moving(p),
                               atol=1e-9)
