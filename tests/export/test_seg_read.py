"""Reading DICOM SEG with highdicom: exact placement on a flipped or partly covering reference, overlapping
segments (higher number wins, counted), FRACTIONAL thresholding, sparse segment numbers."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from viewer.core.io import load_volume
from viewer.core.io.seg import read_dicom_seg, write_dicom_seg
from viewer.core.volume import Volume


@pytest.fixture(scope="module")
def ct_seg(ct_dir, ct_labels, tmp_path_factory):
    return write_dicom_seg(ct_labels, ct_dir, tmp_path_factory.mktemp("seg") / "seg.dcm")


def _flipped(vol: Volume) -> Volume:
    """The same voxels stored with x and y reversed (direction diag(-1, -1, 1), origin at the far corner)."""
    x, y, _ = vol.size
    return Volume(np.ascontiguousarray(vol.array[:, ::-1, ::-1]), vol.spacing,
                  tuple(vol.index_to_world((x - 1, y - 1, 0))), vol.direction @ np.diag([-1.0, -1.0, 1.0]))


def test_seg_lands_voxel_for_voxel_on_a_flipped_reference(ct_seg, ct_volume, ct_labels):
    flipped = _flipped(ct_volume)
    labels, _, _ = read_dicom_seg(ct_seg, reference=flipped)
    assert labels.same_grid(flipped) and labels.warnings == []
    np.testing.assert_array_equal(labels.array, ct_labels[:, ::-1, ::-1])


def test_labels_outside_a_smaller_reference_are_counted(ct_seg, ct_volume, ct_labels):
    part = Volume(np.zeros((10, 512, 512), np.int16), ct_volume.spacing, tuple(ct_volume.index_to_world((0, 0, 5))),
                  ct_volume.direction)  # slices 5-14 of the series
    labels, _, _ = read_dicom_seg(ct_seg, reference=part)
    np.testing.assert_array_equal(labels.array, ct_labels[5:15])
    lost = int(np.count_nonzero(ct_labels)) - int(np.count_nonzero(ct_labels[5:15]))
    assert labels.warnings == [f"{lost} labelled voxels lie outside the reference image"]


def _highdicom_seg(pydicom_file, path, masks: np.ndarray, seg_type: str, **options):
    """A SEG of CT_small written by highdicom itself: ``masks`` (1, rows, columns, segments)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    src = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    numbers = options.pop("numbers", range(1, masks.shape[-1] + 1))
    desc = [hd.seg.SegmentDescription(n, f"s{n}", codes.SCT.Tissue, codes.SCT.Tissue, "MANUAL") for n in numbers]
    hd.seg.Segmentation([src], masks, seg_type, desc, hd.UID(), 1, hd.UID(), 1, "x", "x", "1", "1",
                        **options).save_as(path)
    return load_volume(pydicom_file("CT_small.dcm"))


def test_overlapping_segments_keep_the_higher_number_and_are_counted(pydicom_file, tmp_path):
    masks = np.zeros((1, 128, 128, 2), np.uint8)
    masks[0, 10:30, 10:30, 0] = 1
    masks[0, 20:40, 20:40, 1] = 1  # 10 x 10 voxels in both
    ct = _highdicom_seg(pydicom_file, tmp_path / "overlap.dcm", masks, "BINARY")
    labels, names, _ = read_dicom_seg(tmp_path / "overlap.dcm", reference=ct)
    expected = np.zeros((1, 128, 128), np.uint8)
    expected[0, 10:30, 10:30] = 1
    expected[0, 20:40, 20:40] = 2
    np.testing.assert_array_equal(labels.array, expected)
    assert names == {1: "s1", 2: "s2"}
    assert labels.warnings == ["100 voxels belong to several segments; the higher number was kept"]


def test_fractional_segments_are_thresholded_at_half(pydicom_file, tmp_path):
    masks = np.zeros((1, 128, 128, 2), np.float32)
    masks[0, 10:30, 10:30, 0] = 0.8
    masks[0, 50:60, 50:60, 0] = 0.3  # below half: not in segment 1
    masks[0, 70:90, 20:40, 1] = 0.6
    ct = _highdicom_seg(pydicom_file, tmp_path / "frac.dcm", masks, "FRACTIONAL", max_fractional_value=255)
    labels, _, info = read_dicom_seg(tmp_path / "frac.dcm", reference=ct)
    expected = np.zeros((1, 128, 128), np.uint8)
    expected[0, 10:30, 10:30] = 1
    expected[0, 70:90, 20:40] = 2
    np.testing.assert_array_equal(labels.array, expected)
    assert info["segmentation_type"] == "FRACTIONAL" and labels.warnings == []


def test_sparse_segment_numbers_become_the_same_label_values(pydicom_file, tmp_path):
    masks = np.zeros((1, 128, 128, 2), np.uint8)
    masks[0, 10:30, 10:30, 0] = 1
    masks[0, 60:70, 60:90, 1] = 1
    ct = _highdicom_seg(pydicom_file, tmp_path / "sparse.dcm", masks, "BINARY", numbers=(1, 2))
    ds = pydicom.dcmread(tmp_path / "sparse.dcm")
    ds.SegmentSequence[0].SegmentNumber, ds.SegmentSequence[1].SegmentNumber = 7, 300  # renumber: 7 and 300
    for frame in ds.PerFrameFunctionalGroupsSequence:
        ident = frame.SegmentIdentificationSequence[0]
        ident.ReferencedSegmentNumber = {1: 7, 2: 300}[int(ident.ReferencedSegmentNumber)]
    ds.save_as(tmp_path / "sparse.dcm")
    labels, names, _ = read_dicom_seg(tmp_path / "sparse.dcm", reference=ct)
    assert labels.array.dtype == np.uint16 and names == {7: "s1", 300: "s2"}
    assert set(np.unique(labels.array).tolist()) == {0, 7, 300}
    assert (labels.array == 7).sum() == 400 and (labels.array == 300).sum() == 300


def test_slices_omitted_as_empty_between_labelled_ones_read_back_as_zeros(ct_dir, ct_volume, tmp_path):
    labels = np.zeros(ct_volume.array.shape, np.uint8)
    labels[3, 100:140, 200:260] = 1
    labels[10, 300:320, 100:110] = 2
    out = write_dicom_seg(labels, ct_dir, tmp_path / "gaps.dcm")
    assert int(pydicom.dcmread(out).NumberOfFrames) == 2
    native, _, _ = read_dicom_seg(out)  # slices 3..10 of the series
    np.testing.assert_array_equal(native.array, labels[3:11])
    np.testing.assert_allclose(native.origin, ct_volume.index_to_world((0, 0, 3)), atol=1e-3)
    placed, _, _ = read_dicom_seg(out, reference=ct_volume)
    np.testing.assert_array_equal(placed.array, labels)
