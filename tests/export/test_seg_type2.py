"""`radview export-seg` on a valid series lacking Type 2 attributes (common in research and de-identified data):
the SEG is written with those attributes present and empty, as DICOM allows for Type 2, and stays valid."""

from __future__ import annotations

import argparse
import shutil

import numpy as np
import pydicom
import pytest

from viewer.commands import export_seg
from viewer.core.io import load_volume, save_volume
from viewer.core.io.seg import read_dicom_seg

#: Type 2 attributes of the Patient and General Study modules the SEG copies from its source images.
TYPE2 = ("PatientBirthDate", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyTime", "PatientSex",
         "StudyDate", "PatientName", "PatientID")


@pytest.fixture(scope="module")
def pet_labels(demo_study, tmp_path_factory):
    """A two-label map on the demo PET's grid, as a NIfTI file: (path, labels array)."""
    pet = load_volume(demo_study.pet_dir)
    labels = np.zeros(pet.array.shape, np.uint8)
    labels[30:45, 30:50, 30:50] = 1
    labels[pet.array > np.percentile(pet.array, 99.5)] = 2
    path = tmp_path_factory.mktemp("pet_labels") / "labels.nii.gz"
    return save_volume(pet.with_array(labels, units="label"), path), labels


def _without(series, attribute: str, out):
    """A copy of ``series`` (a folder of DICOM files) with ``attribute`` deleted from every data set."""
    out.mkdir()
    for f in sorted(series.iterdir()):
        ds = pydicom.dcmread(f)
        if attribute in ds:
            delattr(ds, attribute)
        ds.save_as(out / f.name)
    return out


@pytest.mark.parametrize("attribute", TYPE2)
def test_export_seg_from_a_series_missing_a_type2_attribute(attribute, demo_study, pet_labels, tmp_path,
                                                            dciodvfy_errors):
    series = _without(demo_study.pet_dir, attribute, tmp_path / "pet")
    nifti, labels = pet_labels
    parser = argparse.ArgumentParser()
    export_seg.add_arguments(parser)
    out = tmp_path / "seg.dcm"
    assert export_seg.run(parser.parse_args([str(series), str(nifti), "--out", str(out)])) == 0
    seg = pydicom.dcmread(out)
    assert attribute in seg and str(seg[attribute].value or "") == ""  # present, empty
    assert dciodvfy_errors(out) == []
    back, _, _ = read_dicom_seg(out, reference=load_volume(series))
    np.testing.assert_array_equal(back.array, labels)


def test_present_type2_values_are_copied_not_blanked(demo_study, pet_labels, tmp_path):
    series = tmp_path / "pet"
    shutil.copytree(demo_study.pet_dir, series)
    nifti, _ = pet_labels
    parser = argparse.ArgumentParser()
    export_seg.add_arguments(parser)
    assert export_seg.run(parser.parse_args([str(series), str(nifti), "--out", str(tmp_path / "seg.dcm")])) == 0
    seg, source = pydicom.dcmread(tmp_path / "seg.dcm"), pydicom.dcmread(next(series.iterdir()))
    for attribute in ("PatientID", "PatientName", "PatientSex", "StudyID", "StudyDate", "StudyTime"):
        assert str(seg[attribute].value) == str(source[attribute].value) != ""
