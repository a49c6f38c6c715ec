"""Landmark registration: exact on exact landmarks, FRE reported, degenerate inputs refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.errors import RegistrationError
from viewer.core.registration import Transform, read_landmarks, register_landmarks

FIXED = np.array([[-60.0, 10.0, 5.0], [70.0, -20.0, 15.0], [0.0, 60.0, -40.0], [10.0, -50.0, 60.0],
                  [35.0, 25.0, -10.0]])


def true_rigid() -> Transform:
    return Transform(sitk.Euler3DTransform((5.0, 0.0, 0.0), *np.deg2rad([4.0, -3.0, 10.0]).tolist(),
                                           (3.0, -2.0, 5.0)))


@pytest.mark.parametrize("kind", ["rigid", "similarity", "affine"])
def test_exact_landmarks_give_the_exact_transform(kind):
    truth = true_rigid()
    if kind == "similarity":
        truth = Transform.from_matrix(truth.matrix @ np.diag([1.07, 1.07, 1.07, 1.0]))
    elif kind == "affine":
        truth = Transform.from_matrix(truth.matrix @ np.array([[1.05, 0.03, 0, 0], [0, 0.95, 0.02, 0],
                                                               [0.01, 0, 1.1, 0], [0, 0, 0, 1]]))
    result = register_landmarks(FIXED, truth.fixed_to_moving(FIXED), kind)
    assert result.fre_mm < 1e-6
    grid = np.random.default_rng(0).uniform(-150, 150, (20, 3))  # away from the landmarks too
    np.testing.assert_allclose(result.transform.fixed_to_moving(grid), truth.fixed_to_moving(grid), atol=1e-6)


def test_fre_is_the_rms_of_the_residuals_with_noisy_landmarks():
    truth = true_rigid()
    noise = np.random.default_rng(1).normal(0, 1.0, FIXED.shape)
    result = register_landmarks(FIXED, truth.fixed_to_moving(FIXED) + noise, "rigid")
    residuals = np.linalg.norm(result.transform.fixed_to_moving(FIXED) - (truth.fixed_to_moving(FIXED) + noise), axis=1)
    np.testing.assert_allclose(result.errors_mm, residuals, atol=1e-9)
    assert result.fre_mm == pytest.approx(np.sqrt(np.mean(residuals**2)))
    assert 0.3 < result.fre_mm < 2.0
    assert np.allclose(result.transform.matrix[:3, :3] @ result.transform.matrix[:3, :3].T, np.eye(3), atol=1e-9)


def test_degenerate_landmarks_are_refused():
    with pytest.raises(RegistrationError, match="at least 3"):
        register_landmarks(FIXED[:2], FIXED[:2])
    with pytest.raises(RegistrationError, match="pairs must match"):
        register_landmarks(FIXED, FIXED[:4])
    line = np.array([[0.0, 0, 0], [1.0, 1, 1], [2.0, 2, 2], [5.0, 5, 5]])
    with pytest.raises(RegistrationError, match="collinear"):
        register_landmarks(line, line)
    plane = FIXED.copy()
    plane[:, 2] = 0
    with pytest.raises(RegistrationError, match="coplanar"):
        register_landmarks(plane, plane, "affine")


def test_read_landmarks_json(tmp_path):
    good = tmp_path / "f.json"
    good.write_text(json.dumps(FIXED.tolist()))
    np.testing.assert_array_equal(read_landmarks(good), FIXED)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([[1, 2], [3, 4]]))
    with pytest.raises(RegistrationError, match=r"list of \[x, y, z\]") as err:
        read_landmarks(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(RegistrationError, match="no such landmark file"):
        read_landmarks(tmp_path / "none.json")
