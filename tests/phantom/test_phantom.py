"""The demo study: deterministic, anatomically oriented (LPS), readable by SimpleITK, truth consistent."""

import hashlib
import json

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.io import load_volume
from viewer.core.phantom import LABEL_NAMES, make_phantom, write_demo_study


@pytest.fixture(scope="module")
def phantom():
    return make_phantom()


def test_generation_is_deterministic(phantom):
    again = make_phantom()
    assert np.array_equal(again.ct.array, phantom.ct.array)
    assert np.array_equal(again.pet.array, phantom.pet.array)


def test_liver_is_on_patient_right_and_spleen_on_left(phantom):
    lab = phantom.labels
    for name, sign in (("liver", -1), ("spleen", +1), ("kidney_right", -1), ("kidney_left", +1)):
        label = next(k for k, v in LABEL_NAMES.items() if v == name)
        zyx = np.argwhere(lab.array == label).mean(axis=0)
        x_world = lab.index_to_world(zyx[::-1])[0]
        assert np.sign(x_world) == sign, name  # LPS: +x is the patient's left


def test_organ_hu_ranges(phantom):
    ct, lab = phantom.ct.array, phantom.labels.array
    names = {v: k for k, v in LABEL_NAMES.items()}
    # portal-venous phase: enhanced liver, spleen brighter than liver, kidneys brighter still
    liver, spleen = ct[lab == names["liver"]].mean(), ct[lab == names["spleen"]].mean()
    assert 85 < liver < 120 and liver < spleen < ct[lab == names["kidney_left"]].mean()
    assert ct[lab == names["lung_left"]].mean() < -700
    assert ct[lab == names["vertebrae"]].mean() > 200
    assert ct[0, 0, 0] < -900  # air outside the body


def test_organs_lie_in_visceral_fat_inside_a_muscle_wall(phantom):
    """The abdomen is not a uniform soft-tissue blob: organs are surrounded by fat, inside a muscle ring."""
    ct = phantom.ct
    hu = [ct.value_at(p) for p in ((0.0, -60.0, -60.0), (0.0, -92.0, -60.0), (0.0, -105.0, -60.0))]
    assert hu[0] < -60, hu  # visceral fat in front of the aorta, below the liver
    assert 10 < hu[1] < 70, hu  # the anterior abdominal wall's muscle
    assert hu[2] < -60, hu  # subcutaneous fat


def test_lesion_centres_lie_in_lesion_label(phantom):
    for lesion in phantom.truth["lesions"]:
        assert phantom.labels.value_at(lesion["center_mm"]) == 90, lesion["name"]


def test_truth_volumes_match_label_counts(phantom):
    voxel_ml = np.prod(phantom.ct.spacing) / 1000
    for name, organ in phantom.truth["organs"].items():
        count = int((phantom.labels.array == organ["label"]).sum())
        assert organ["volume_ml"] == pytest.approx(count * voxel_ml, abs=1e-3), name


def _pixel_hash(folder):
    h = hashlib.sha1()
    for f in sorted(folder.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_written_study_is_byte_identical_twice_and_matches_simpleitk(tmp_path, demo_study, phantom):
    again = write_demo_study(tmp_path / "again")
    assert _pixel_hash(again.ct_dir) == _pixel_hash(demo_study.ct_dir)
    assert _pixel_hash(again.pet_dir) == _pixel_hash(demo_study.pet_dir)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(demo_study.ct_dir)))
    ref = reader.Execute()
    assert np.array_equal(sitk.GetArrayFromImage(ref), phantom.ct.array)
    assert np.allclose(ref.GetOrigin(), phantom.ct.origin) and np.allclose(ref.GetSpacing(), phantom.ct.spacing)
    ct = load_volume(demo_study.ct_dir)
    assert ct.array.dtype == np.int16 and np.array_equal(ct.array, phantom.ct.array)


def test_mr_and_labels_round_trip_and_truth_is_json(demo_study, phantom):
    mr = load_volume(demo_study.mr)
    assert mr.same_grid(phantom.mr, tol=1e-4)
    assert np.allclose(mr.direction, phantom.mr.direction)
    labels = load_volume(demo_study.labels)
    assert np.array_equal(labels.array, phantom.labels.array)
    truth = json.loads(demo_study.truth.read_text())
    assert truth["pet_to_ct"]["translation_mm"] == [3.0, -2.0, 4.0]
    assert json.loads(demo_study.label_names.read_text())["5"] == "liver"
