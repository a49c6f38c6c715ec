"""Intensity registration: known transforms recovered (rigid, affine), B-spline improves a deformed pair, clear
errors for pairs that cannot be registered, progress and cancel."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.errors import Cancelled, RegistrationError
from viewer.core.io import load_volume
from viewer.core.phantom import make_phantom
from viewer.core.progress import CancelToken
from viewer.core.registration import Transform, register
from viewer.core.registration.synthetic import phantom_pet_truth, synthetic_pet
from viewer.core.volume import Volume


@pytest.fixture(scope="module")
def phantom():
    return make_phantom()


def pet_truth(phantom) -> Transform:
    return phantom_pet_truth(phantom.truth)


def body_points(vol: Volume, threshold: float, step: int = 8) -> np.ndarray:
    k, j, i = np.nonzero(vol.array[::step, ::step, ::step] > threshold)
    return vol.index_to_world(np.stack([i, j, k], axis=1) * step)


def tre(found: Transform, truth: Transform, points) -> np.ndarray:
    return np.linalg.norm(found.fixed_to_moving(points) - truth.fixed_to_moving(points), axis=1)


def test_ct_pet_rigid_recovers_the_known_offset(phantom):
    """The demo PET is rotated 2 deg and shifted (3, -2, 4) mm; its voxels are 4 mm."""
    result = register(phantom.ct, phantom.pet, method="rigid")
    truth = pet_truth(phantom)
    lesions = np.array([les["center_mm"] for les in phantom.truth["lesions"]])
    assert tre(result.transform, truth, lesions).max() < 1.0
    assert tre(result.transform, truth, body_points(phantom.ct, -500)).max() < 1.0
    assert tre(Transform.identity(), truth, lesions).min() > 4.0  # the offset was real
    assert result.transform.is_linear and result.metric < -0.3


def test_mr_ct_rigid_on_the_mrs_own_coronal_grid(phantom):
    """The MR has its own oblique-free coronal grid in the same world frame: truth is the identity."""
    result = register(phantom.mr, phantom.ct, method="rigid")
    assert tre(result.transform, Transform.identity(), body_points(phantom.mr, 100)).max() < 1.0


def test_real_ct_with_a_synthetic_pet(shared_data):
    """Acceptance mirror: a real CT and a PET made from its labels (4 mm, blurred, noisy, moved): TRE <= 2 mm,
    PET on the CT grid correlates >= 0.95 with the truth-resampled PET inside the body, lesion SUV within 15%."""
    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    labels = load_volume(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    names = {int(k): v for k, v in json.loads((shared_data / "totalsegmentator_total_labels.json").read_text()).items()}
    syn = synthetic_pet(ct, labels, names)
    result = register(ct, syn.pet)
    body = ct.array > -500
    assert tre(result.transform, syn.truth, body_points(ct, -500, 3)).max() <= 2.0
    on_ct, truth_on_ct = result.transform.resample(syn.pet, ct), syn.truth.resample(syn.pet, ct)
    assert on_ct.units == "SUVbw" and on_ct.array.dtype == np.float32
    assert np.corrcoef(on_ct.array[body], truth_on_ct.array[body])[0, 1] >= 0.95
    idx = np.stack(np.indices(ct.array.shape)[::-1], axis=-1).reshape(-1, 3)
    world = ct.index_to_world(idx).reshape(*ct.array.shape, 3)
    assert len(syn.lesions) == 3
    for les in syn.lesions:
        m = np.linalg.norm(world - les["centre_mm"], axis=-1) <= les["radius_mm"] + 3
        assert on_ct.array[m].max() == pytest.approx(truth_on_ct.array[m].max(), rel=0.15)


def warped(fixed: Volume, truth: Transform) -> Volume:
    """A moving image whose content at ``truth(p)`` is the fixed image's at p (fixed's grid)."""
    import SimpleITK as sitk

    img = sitk.Resample(fixed.to_sitk(), fixed.to_sitk(), truth.inverse().sitk if truth.is_linear else truth.sitk,
                        sitk.sitkLinear, -1024.0)
    return fixed.with_array(sitk.GetArrayFromImage(img), description="warped CT")


def test_affine_recovers_a_known_scale_and_shear(phantom):
    a = np.array([[1.04, 0.03, 0.0, 2.0], [0.0, 0.97, 0.02, -3.0], [0.01, 0.0, 1.03, 1.5], [0, 0, 0, 1.0]])
    truth = Transform.from_matrix(a)
    moving = warped(phantom.ct, truth)
    pts = body_points(phantom.ct, -500)
    rigid = register(phantom.ct, moving, method="rigid")
    affine = register(phantom.ct, moving, method="affine")
    assert tre(affine.transform, truth, pts).mean() < 1.0 and tre(affine.transform, truth, pts).max() < 2.0
    assert tre(affine.transform, truth, pts).mean() < tre(rigid.transform, truth, pts).mean() / 3
    assert affine.transform.is_linear and not np.allclose(affine.transform.matrix[:3, :3] @
                                                          affine.transform.matrix[:3, :3].T, np.eye(3), atol=1e-3)


def test_bspline_improves_a_deformed_pairs_similarity(phantom):
    fixed = phantom.ct
    bs = sitk.BSplineTransformInitializer(fixed.to_sitk(), [4, 4, 3], order=3)  # ~100 mm control points
    bs.SetParameters(np.random.default_rng(3).normal(0, 3.0, bs.GetNumberOfParameters()).tolist())
    moving = fixed.with_array(sitk.GetArrayFromImage(sitk.Resample(fixed.to_sitk(), fixed.to_sitk(), bs,
                                                                   sitk.sitkLinear, -1024.0)))
    body = fixed.array > -500

    def similarity(t: Transform) -> float:
        return float(np.corrcoef(t.resample(moving, fixed).array[body], fixed.array[body])[0, 1])

    affine = register(fixed, moving, method="affine")
    elastic = register(fixed, moving, method="bspline")
    assert not elastic.transform.is_linear and elastic.transform.matrix is None
    assert 1 - similarity(elastic.transform) < (1 - similarity(affine.transform)) * 0.75


def test_moments_init_registers_images_from_different_frames(phantom):
    """A PET whose world frame is 400 mm away: geometry refuses (no overlap), moments aligns then registers."""
    far = replace(phantom.pet, origin=tuple(np.add(phantom.pet.origin, (0.0, 0.0, 400.0))), meta={})
    with pytest.raises(RegistrationError, match="do not overlap"):
        register(phantom.ct, far, init="geometry")
    result = register(phantom.ct, far, init="moments")
    shift = Transform.from_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 400.0], [0, 0, 0, 1]]))
    truth = Transform.from_matrix(shift.matrix @ pet_truth(phantom).matrix)
    lesions = np.array([les["center_mm"] for les in phantom.truth["lesions"]])
    assert tre(result.transform, truth, lesions).max() < 2.0


def test_no_overlap_names_both_inputs(phantom):
    far = replace(phantom.pet, origin=(5000.0, 0.0, 0.0), description="far PET", meta={"files": ["/data/pet.nii"]})
    ct = replace(phantom.ct, meta={"files": ["/data/ct/1.dcm"], "format": "dicom"})
    with pytest.raises(RegistrationError, match="do not overlap") as err:
        register(ct, far)
    assert "/data/pet.nii" in str(err.value) and "/data/ct" in str(err.value)


def test_no_shared_information_is_an_error_not_a_silent_result(phantom):
    noise = phantom.pet.with_array(np.random.default_rng(0).gamma(2.0, 1.0, phantom.pet.array.shape)
                                   .astype(np.float32), description="noise")
    with pytest.raises(RegistrationError, match="share no information") as err:
        register(phantom.ct, noise)
    assert "noise" in str(err.value) and "Demo CT" in str(err.value)
    flat = phantom.pet.with_array(np.ones_like(phantom.pet.array), description="flat")
    with pytest.raises(RegistrationError, match="moving image is constant"):
        register(phantom.ct, flat)


def test_progress_reaches_one_and_cancel_stops(phantom):
    seen = []
    register(phantom.ct, phantom.pet, progress=lambda f, msg: seen.append((f, msg)))
    fractions = [f for f, _ in seen]
    assert fractions[-1] == 1.0 and all(0 <= f <= 1 for f in fractions)
    assert fractions == sorted(fractions) and len(fractions) > 10
    assert any("level 3" in msg for _, msg in seen)
    token, calls = CancelToken(), []

    def cancel_after_five(f, msg):
        calls.append(f)
        if len(calls) == 5:
            token.cancel()

    with pytest.raises(Cancelled):
        register(phantom.ct, phantom.pet, progress=cancel_after_five, cancel=token)
    assert len(calls) <= 6  # stopped at the next iteration


def test_fixed_mask_limits_the_metric_to_the_body(phantom):
    mask = phantom.ct.with_array((phantom.ct.array > -500).astype(np.uint8), modality="SEG", units="label")
    result = register(phantom.ct, phantom.pet, fixed_mask=mask)
    lesions = np.array([les["center_mm"] for les in phantom.truth["lesions"]])
    assert tre(result.transform, pet_truth(phantom), lesions).max() < 1.0
    empty = mask.with_array(np.zeros_like(mask.array))
    with pytest.raises(RegistrationError):
        register(phantom.ct, phantom.pet, fixed_mask=empty)


def test_registration_refines_an_initial_transform(phantom):
    """A start (e.g. landmarks or a manual nudge) 4 to 9 mm off at the lesions is refined to the known offset."""
    truth = pet_truth(phantom)
    start = truth.compose_nudge(translation_mm=(4.0, -3.0, 3.0), rotation_deg=(0.0, 0.0, 3.0))
    lesions = np.array([les["center_mm"] for les in phantom.truth["lesions"]])
    assert tre(start, truth, lesions).min() > 4.0
    result = register(phantom.ct, phantom.pet, initial=start)
    assert tre(result.transform, truth, lesions).max() < 1.0
