"""`radview register` on the demo PET/CT, landmarks, errors; `segment`/`detect --transform` place the extra input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.ai.conftest import write_model
from viewer.cli import main
from viewer.core.io import load_volume, save_volume
from viewer.core.registration import Transform
from viewer.core.registration.synthetic import phantom_pet_truth


@pytest.fixture(scope="module")
def registered(demo_study, tmp_path_factory):
    """`radview register` run once as a real process on the demo CT and PET DICOM folders."""
    out = tmp_path_factory.mktemp("register")
    proc = subprocess.run([sys.executable, "-m", "viewer", "register", str(demo_study.ct_dir),
                           str(demo_study.pet_dir), "--out", str(out / "pet_on_ct.nii.gz"), "--transform",
                           str(out / "pet_to_ct.tfm")], capture_output=True, text=True)
    return proc, out


def test_register_demo_pet_ct_writes_suv_on_the_ct_grid_and_the_transform(registered, demo_study):
    proc, out = registered
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "pet_to_ct.tfm" in proc.stdout
    truth = json.loads(demo_study.truth.read_text())
    t = Transform.load(out / "pet_to_ct.tfm")
    lesions = np.array([les["center_mm"] for les in truth["lesions"]])
    assert np.linalg.norm(t.fixed_to_moving(lesions) - np.array([les["center_pet_mm"] for les in truth["lesions"]]),
                          axis=1).max() < 1.0  # the file maps CT (fixed) points to PET (moving) points
    ct = load_volume(demo_study.ct_dir)
    pet = load_volume(demo_study.pet_dir)
    on_ct = load_volume(out / "pet_on_ct.nii.gz")
    assert on_ct.same_grid(ct)
    assert on_ct.array.dtype == np.float32  # SUV values, not rounded to integers
    for les in truth["lesions"]:  # lesion SUVmax where the CT shows the lesion, as in the PET itself
        r = les["radius_mm"] + 4
        near = np.linalg.norm(ct.index_to_world(np.argwhere(np.ones(ct.array.shape, bool))[:, ::-1])
                              - les["center_mm"], axis=1).reshape(ct.array.shape) <= r
        assert on_ct.array[near].max() == pytest.approx(les["suv_max"], rel=0.15)
    assert pet.units == "SUVbw"


def test_register_with_exact_landmarks_reports_zero_fre(demo_study, tmp_path, capsys):
    truth = json.loads(demo_study.truth.read_text())
    fixed = [les["center_mm"] for les in truth["lesions"]] + [[0.0, 0.0, 100.0]]
    moving = phantom_pet_truth(truth).fixed_to_moving(np.array(fixed)).tolist()
    (tmp_path / "f.json").write_text(json.dumps(fixed))
    (tmp_path / "m.json").write_text(json.dumps(moving))
    pet_file = tmp_path / "pet.nii.gz"
    save_volume(load_volume(demo_study.pet_dir), pet_file)
    assert main(["register", str(demo_study.ct_dir), str(pet_file), "--out", str(tmp_path / "o.nii.gz"), "--transform",
                 str(tmp_path / "t.h5"), "--fixed-landmarks", str(tmp_path / "f.json"), "--moving-landmarks",
                 str(tmp_path / "m.json")]) == 0
    err = capsys.readouterr().err
    assert "FRE 0.00 mm over 4 pairs" in err
    t = Transform.load(tmp_path / "t.h5")
    np.testing.assert_allclose(t.matrix, phantom_pet_truth(truth).matrix, atol=1e-4)


def test_register_errors_name_the_problem(demo_study, tmp_path, capsys):
    far = load_volume(demo_study.pet_dir)
    far.origin = (far.origin[0], far.origin[1], far.origin[2] + 2000.0)
    save_volume(far, tmp_path / "far.nii.gz")
    assert main(["register", str(demo_study.ct_dir), str(tmp_path / "far.nii.gz"), "--out",
                 str(tmp_path / "o.nii.gz"), "--transform", str(tmp_path / "t.tfm")]) == 2
    err = capsys.readouterr().err
    assert "do not overlap" in err and "far.nii.gz" in err and str(demo_study.ct_dir) in err
    assert not (tmp_path / "o.nii.gz").exists() and not (tmp_path / "t.tfm").exists()
    assert main(["register", str(demo_study.ct_dir), str(demo_study.pet_dir), "--out", str(tmp_path / "o.nii.gz"),
                 "--transform", str(tmp_path / "t.tfm"), "--fixed-landmarks", "f.json"]) == 2
    assert "go together" in capsys.readouterr().err


def test_segment_transform_places_the_pet_on_the_ct_grid(registered, demo_study, tmp_path):
    """A two-input (CT, PET) model given the registered-but-not-resampled PET and its transform produces the
    labels it produces on the PET resampled beforehand, and not the ones of the unplaced PET."""
    _, out = registered
    from ai.engine import run_segmentation
    from ai.registry import load_model

    model = write_model(tmp_path / "petct", modalities=("CT", "PT"), seed=1)
    t = Transform.load(out / "pet_to_ct.tfm")
    ct, pet = load_volume(demo_study.ct_dir), load_volume(demo_study.pet_dir)
    expected = run_segmentation(load_model(str(model)), [ct, t.resample(pet, ct)], device="cpu").labels.array

    def segment(pet_path, *extra):
        labels = tmp_path / f"labels{len(list(tmp_path.iterdir()))}.nii.gz"
        assert main(["segment", str(demo_study.ct_dir), str(pet_path), "--model", str(model), "--out", str(labels),
                     "--device", "cpu", *extra]) == 0
        return load_volume(labels).array

    placed = segment(demo_study.pet_dir, "--transform", str(out / "pet_to_ct.tfm"))
    np.testing.assert_array_equal(placed, expected)
    assert (placed != segment(demo_study.pet_dir)).sum() > 100


def test_detect_refuses_a_transform_count_that_does_not_match(demo_study, tmp_path, capsys):
    model = write_model(tmp_path / "petct", modalities=("CT", "PT"))
    assert main(["detect", str(demo_study.ct_dir), str(demo_study.pet_dir), "--model", str(model), "--out",
                 str(tmp_path / "d.json"), "--transform", "a.tfm", "--transform", "b.tfm"]) == 2
    assert "2 transform(s) for 1 extra input(s)" in capsys.readouterr().err
