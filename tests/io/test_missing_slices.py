"""A series with missing slices (a damaged file left out, an instance lost in transfer): the gap stays on the grid,
blank and said, so every acquired slice stays where it was acquired; DICOM SEG export references acquired slices."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pydicom
import pytest

from viewer.cli import main
from viewer.core.io import load_volume
from viewer.core.io.seg import read_dicom_seg, write_dicom_seg


def _hu(k: int) -> int:
    """The HU value conftest.write_series stores in its k-th slice (CT_small: intercept -1024)."""
    return k + 100 - 1024


def test_a_missing_slice_keeps_its_gap_on_the_grid(make_series, zpos):
    vol = load_volume(make_series(zpos([0, 3, 6, 12, 15]))[0].parent)
    assert vol.array.shape[0] == 6 and vol.spacing[2] == pytest.approx(3.0) and vol.origin[2] == pytest.approx(0.0)
    # each acquired slice at its own position; the gap blank: the lowest value, below every acquired one
    assert [int(vol.array[z, 0, 0]) for z in (0, 1, 2, 4, 5)] == [_hu(k) for k in range(5)]
    assert (vol.array[3] == vol.array[[0, 1, 2, 4, 5]].min()).all()
    assert vol.index_to_world([0, 0, 4])[2] == pytest.approx(12.0)
    assert any("1 missing slice(s) at 9.0 mm" in w and "never acquired" in w for w in vol.warnings)
    assert vol.meta["missing_slices"] == [3]


def test_uneven_spacing_that_is_no_whole_slice_is_said_and_not_filled(make_series, zpos):
    vol = load_volume(make_series(zpos([0, 3, 6, 10, 13]))[0].parent)
    assert vol.array.shape[0] == 5
    # shown at 0, 3, 6, 9, 12 mm: the last two 1 mm from where they were acquired (10, 13), and it says so
    assert any("uneven slice spacing" in w and "up to 1.0 mm from where they were acquired" in w for w in vol.warnings)
    assert not any("missing" in w for w in vol.warnings)


def test_a_damaged_file_inside_the_shared_series_leaves_its_slice_blank_and_the_rest_in_place(
        shared_data, tmp_path, caplog):
    """Before: the damaged file was left out and the 19 others stacked at 2 mm, so every slice above the gap was
    shown 2 mm from where it was acquired."""
    intact = load_volume(shared_data / "ct_abdomen_dicom")
    folder = tmp_path / "series"
    shutil.copytree(shared_data / "ct_abdomen_dicom", folder)
    by_z = {float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]): f for f in folder.iterdir()}
    z = sorted(by_z)[13]
    data = by_z[z].read_bytes()
    by_z[z].write_bytes(data[:len(data) - 20000])  # cut inside the pixel data: no readable data elements
    out = tmp_path / "ct.nii.gz"
    with caplog.at_level(logging.WARNING, logger="viewer.core.io"):  # said on stderr by the CLI's logging
        assert main(["convert", str(folder), str(out)]) == 0
    assert f"1 missing slice(s) at {z:.1f} mm" in caplog.text and "left out" in caplog.text
    vol = load_volume(out)
    assert vol.same_grid(intact)
    kept = [k for k in range(intact.array.shape[0]) if k != 13]
    np.testing.assert_array_equal(vol.array[kept], intact.array[kept])
    assert (vol.array[13] == intact.array.min()).all()


def test_seg_export_references_the_acquired_slices_and_says_what_lies_on_a_missing_one(make_series, zpos, tmp_path,
                                                                                        caplog):
    folder = make_series(zpos([0, 3, 6, 12, 15]))[0].parent
    vol = load_volume(folder)
    labels = np.zeros(vol.array.shape, np.uint8)
    labels[:, 20:40, 30:50] = 1  # on every grid slice, the missing one (3) included
    with caplog.at_level(logging.WARNING, logger="viewer.core.io.seg"):
        out = write_dicom_seg(labels, folder, tmp_path / "seg.dcm", names={1: "liver"})
    assert "400 labelled voxel(s) on the series' missing slice(s) are not in the SEG" in caplog.text
    assert int(pydicom.dcmread(out).NumberOfFrames) == 5
    back, names, _ = read_dicom_seg(out, reference=vol)
    expected = labels.copy()
    expected[3] = 0
    np.testing.assert_array_equal(back.array, expected)
    assert names == {1: "liver"}
