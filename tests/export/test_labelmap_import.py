"""Label map import: world-geometry resampling onto a reference, typed errors, label name tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.errors import LabelMapError
from viewer.core.io import load_volume
from viewer.core.io.labelmap import load_color_table, load_label_names, load_labelmap


@pytest.fixture(scope="module")
def ts_ct(shared_data):
    return load_volume(shared_data / "ct_abdomen_3mm.nii.gz")


def _flipped_copy(path, out, axes=(True, False, True)):
    """Same labels in the same world places, stored with reversed voxel order along ``axes``."""
    img = sitk.ReadImage(str(path))
    flipped = sitk.Flip(img, list(axes))
    d = np.array(img.GetDirection()).reshape(3, 3)
    corner = [s - 1 if a else 0 for s, a in zip(img.GetSize(), axes, strict=True)]
    flipped.SetOrigin(img.TransformIndexToPhysicalPoint(corner))
    flipped.SetDirection(tuple((d * np.where(axes, -1, 1)).ravel()))
    sitk.WriteImage(flipped, str(out))
    return out


def test_labels_on_the_reference_grid_load_unchanged_as_uint8(shared_data, ts_ct):
    labels = load_labelmap(shared_data / "ct_abdomen_3mm_labels.nii.gz", reference=ts_ct)
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct_abdomen_3mm_labels.nii.gz")))
    assert labels.units == "label" and labels.array.dtype == np.uint8
    assert labels.same_grid(ts_ct)
    np.testing.assert_array_equal(labels.array, raw)


def test_flipped_label_file_lands_on_the_original_voxels(shared_data, ts_ct, tmp_path):
    original = load_labelmap(shared_data / "ct_abdomen_3mm_labels.nii.gz")
    flipped_path = _flipped_copy(shared_data / "ct_abdomen_3mm_labels.nii.gz", tmp_path / "flipped.nii.gz")
    stored = load_labelmap(flipped_path)
    assert not np.array_equal(stored.array, original.array)  # really stored differently
    landed = load_labelmap(flipped_path, reference=ts_ct)
    assert landed.same_grid(ts_ct)
    np.testing.assert_array_equal(landed.array, original.array)


def test_label_map_outside_the_reference_raises_naming_the_file(shared_data, ts_ct, tmp_path):
    img = sitk.ReadImage(str(shared_data / "ct_abdomen_3mm_labels.nii.gz"))
    img.SetOrigin([o + 2000.0 for o in img.GetOrigin()])
    far = tmp_path / "far.nii.gz"
    sitk.WriteImage(img, str(far))
    with pytest.raises(LabelMapError) as err:
        load_labelmap(far, reference=ts_ct)
    assert err.value.path == str(far) and "overlap" in err.value.problem


def test_non_integer_values_are_rejected(tmp_path):
    img = sitk.GetImageFromArray(np.full((3, 4, 5), 0.5, np.float32))
    path = tmp_path / "prob.nii.gz"
    sitk.WriteImage(img, str(path))
    with pytest.raises(LabelMapError, match="not integers") as err:
        load_labelmap(path)
    assert err.value.path == str(path)


def test_float_file_with_integer_values_and_many_labels_becomes_uint16(tmp_path):
    arr = np.arange(60, dtype=np.float32).reshape(3, 4, 5) * 10  # labels up to 590
    path = tmp_path / "many.mha"
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    labels = load_labelmap(path)
    assert labels.array.dtype == np.uint16
    np.testing.assert_array_equal(labels.array, arr.astype(np.uint16))


def test_totalsegmentator_names_json(shared_data):
    names = load_label_names(shared_data / "totalsegmentator_total_labels.json")
    raw = json.loads((shared_data / "totalsegmentator_total_labels.json").read_text())
    assert names[1] == "spleen" and names[5] == "liver"
    assert len(names) == len([k for k in raw if int(k) != 0])
    assert all(isinstance(k, int) for k in names)


def test_slicer_and_itksnap_colour_tables(tmp_path):
    slicer = tmp_path / "labels.ctbl"
    slicer.write_text(
        "# Color table file\n0 Background 0 0 0 0\n1 liver 221 130 101 255\n2 kidney_left 185 102 83 255\n"
    )
    itksnap = tmp_path / "labels.txt"
    itksnap.write_text('#IDX R G B A VIS MSH LABEL\n0 0 0 0 0 0 0 "Clear Label"\n1 255 0 0 1 1 1 "Liver tumour"\n')
    assert load_color_table(slicer) == {1: ("liver", (221, 130, 101, 255)), 2: ("kidney_left", (185, 102, 83, 255))}
    assert load_label_names(itksnap) == {1: "Liver tumour"}
    assert load_color_table(itksnap)[1][1] == (255, 0, 0, 255)


def test_broken_name_table_raises(tmp_path):
    bad = tmp_path / "bad.ctbl"
    bad.write_text("1 liver\n")
    with pytest.raises(LabelMapError, match="line 1"):
        load_label_names(bad)


def test_labels_falling_outside_the_reference_are_reported(shared_data, ts_ct, tmp_path):
    img = sitk.ReadImage(str(shared_data / "ct_abdomen_3mm_labels.nii.gz"))
    img.SetOrigin((img.GetOrigin()[0], img.GetOrigin()[1], img.GetOrigin()[2] + 60.0))  # 20 slices off
    shifted = tmp_path / "shifted.nrrd"
    sitk.WriteImage(img, str(shifted))
    labels = load_labelmap(shifted, reference=ts_ct)
    assert labels.same_grid(ts_ct) and labels.meta["resampled_from"] == str(shifted)
    raw = sitk.GetArrayFromImage(img)
    np.testing.assert_array_equal(labels.array[20:], raw[:10])  # label slice k now lies at slice k + 20
    assert not labels.array[:20].any()
    assert any("outside the reference" in w for w in labels.warnings)


def test_label_values_beyond_the_name_table_are_kept_and_reported(shared_data, ts_ct, tmp_path):
    import shutil

    from viewer.core.segmentation_files import open_segmentation
    from viewer.core.session import Session

    labels_path = tmp_path / "organs.nii.gz"
    shutil.copy(shared_data / "ct_abdomen_3mm_labels.nii.gz", labels_path)
    (tmp_path / "organs.json").write_text(json.dumps({"5": "liver", "1": "spleen"}))  # most values unnamed
    session = Session(home=tmp_path / "home")
    seg = open_segmentation(session, ts_ct, labels_path)
    reference = load_labelmap(labels_path, reference=ts_ct).array
    np.testing.assert_array_equal(seg.array, reference)  # nothing dropped
    assert seg.table.labels[5].name == "liver"
    unnamed = sorted(set(np.unique(reference).tolist()) - {0, 1, 5})
    (warning,) = seg.warnings
    assert "organs.nii.gz" in warning and f"{unnamed[0]}, " in warning and "not in its label table" in warning
    session.close()
