"""DICOM SEG export/import: identical round trip, dciodvfy-clean files, codes, provenance, UIDs."""

from __future__ import annotations

import argparse

import numpy as np
import pydicom
import pytest

from viewer.commands import export_seg
from viewer.core.errors import LabelMapError
from viewer.core.io import load_volume
from viewer.core.io.dicom_headers import series_key
from viewer.core.io.seg import SegmentProvenance, read_dicom_seg, write_dicom_seg

NAMES = {1: "body", 2: "kidney_left", 3: "liver lesion"}


@pytest.fixture(scope="module")
def ct_seg(ct_dir, ct_labels, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "ct_seg.dcm"
    provenance = {1: "MANUAL", 2: SegmentProvenance("AUTOMATIC", "TinyUNet", "2.1"), 3: "SEMIAUTOMATIC"}
    return write_dicom_seg(
        ct_labels,
        ct_dir,
        out,
        names=NAMES,
        algorithm=provenance,
        series_description="radview test SEG",
        content_creator="Doe^Jane",
    )


def test_round_trip_on_the_jpeg2000_series_is_identical(ct_seg, ct_volume, ct_labels):
    labels, names, info = read_dicom_seg(ct_seg, reference=ct_volume)
    assert labels.same_grid(ct_volume) and labels.units == "label"
    np.testing.assert_array_equal(labels.array, ct_labels)
    assert names == NAMES
    assert info["series_description"] == "radview test SEG"


def test_reading_without_reference_rebuilds_the_series_grid(ct_seg, ct_volume, ct_labels):
    labels, _, _ = read_dicom_seg(ct_seg)
    # empty slices 0-1 are not stored, so the SEG's own grid starts at slice 2
    assert labels.array.shape == (ct_labels.shape[0] - 2, *ct_labels.shape[1:])
    np.testing.assert_allclose(labels.origin, ct_volume.index_to_world([0, 0, 2]), atol=1e-3)
    np.testing.assert_allclose(labels.spacing, ct_volume.spacing, atol=1e-4)
    np.testing.assert_array_equal(labels.array, ct_labels[2:])


def test_only_non_empty_frames_are_stored_as_binary(ct_seg, ct_labels):
    ds = pydicom.dcmread(ct_seg)
    assert ds.SegmentationType == "BINARY"
    expected = sum(int(np.any(ct_labels[k] == n)) for n in NAMES for k in range(ct_labels.shape[0]))
    assert int(ds.NumberOfFrames) == expected


def test_seg_passes_dciodvfy(ct_seg, dciodvfy_errors):
    assert dciodvfy_errors(ct_seg) == []


def test_segments_carry_names_snomed_codes_and_laterality(ct_seg):
    _, _, info = read_dicom_seg(ct_seg)
    seg = info["segments"]
    assert seg[2]["type"] == {"value": "64033007", "scheme": "SCT", "meaning": "Kidney"}
    assert seg[2]["category"]["value"] == "91723000"  # Anatomical Structure
    assert seg[2]["laterality"]["value"] == "7771000"  # Left
    assert seg[3]["type"]["value"] == "4147007" and seg[3]["category"]["value"] == "49755003"  # Mass
    assert seg[3]["region"]["value"] == "10200004"  # in the liver
    assert seg[1]["type"]["value"] == "85756007"  # unknown name: generic Tissue


def test_algorithm_type_follows_provenance(ct_seg):
    _, _, info = read_dicom_seg(ct_seg)
    seg = info["segments"]
    assert [seg[n]["algorithm_type"] for n in (1, 2, 3)] == ["MANUAL", "AUTOMATIC", "SEMIAUTOMATIC"]
    assert (seg[2]["algorithm_name"], seg[2]["algorithm_version"]) == ("TinyUNet", "2.1")
    assert seg[1]["algorithm_name"] is None
    assert info["content_creator"] == "Doe^Jane"


def test_references_use_file_meta_and_reader_series_uids(ct_seg, ct_dir):
    """The series' data sets have empty UIDs: the SEG references file meta SOP UIDs and the reader's series key."""
    _, _, info = read_dicom_seg(ct_seg)
    files = sorted(ct_dir.iterdir())
    ds0 = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds0.SeriesInstanceUID == "" and ds0.SOPInstanceUID == ""
    assert info["referenced_series_uid"] == series_key(ds0)
    meta_uids = {str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID) for f in files}
    assert set(info["referenced_instances"]) <= meta_uids and len(info["referenced_instances"]) == len(files)
    seg = pydicom.dcmread(ct_seg, stop_before_pixels=True)
    assert seg.StudyInstanceUID and seg.FrameOfReferenceUID == ds0.FrameOfReferenceUID


def test_round_trip_on_ct_small_and_label_values_kept(pydicom_file, tmp_path, dciodvfy_errors):
    src = pydicom_file("CT_small.dcm")
    vol = load_volume(src)
    labels = np.zeros(vol.array.shape, np.uint8)
    labels[0, 20:60, 30:90] = 4  # label 4 alone: segments 1-3 are described but empty
    labels[0, 70:100, 40:50] = 2
    out = write_dicom_seg(
        labels,
        [src],
        tmp_path / "small.dcm",
        names={4: "spleen", 2: "kidney_cyst_left"},
        algorithm="model",
        algorithm_name="demo-model",
    )
    back, names, info = read_dicom_seg(out, reference=vol)
    np.testing.assert_array_equal(back.array, labels)
    assert names[4] == "spleen" and names[1] == "label_1"
    assert info["segments"][4]["algorithm_type"] == "AUTOMATIC"
    assert info["segments"][4]["type"]["value"] == "78961009"
    cyst = info["segments"][2]
    assert (cyst["type"]["value"], cyst["region"]["value"], cyst["laterality"]["value"]) == (
        "367643001",
        "64033007",
        "7771000",
    )  # cyst, in the kidney, left
    assert dciodvfy_errors(out) == []


def test_label_map_off_the_series_grid_is_refused(ct_dir, ct_labels, tmp_path):
    with pytest.raises(LabelMapError, match="does not match the series grid"):
        write_dicom_seg(ct_labels[:, :100], ct_dir, tmp_path / "x.dcm")
    with pytest.raises(LabelMapError, match="empty"):
        write_dicom_seg(np.zeros_like(ct_labels), ct_dir, tmp_path / "x.dcm")


def test_export_seg_command_resamples_a_nifti_onto_the_series(ct_dir, ct_volume, ct_labels, tmp_path):
    from viewer.core.io import save_volume

    nifti = save_volume(ct_volume.with_array(ct_labels, units="label"), tmp_path / "labels.nii.gz")
    names = tmp_path / "names.json"
    names.write_text('{"1": "body", "2": "kidney_left"}')
    parser = argparse.ArgumentParser()
    export_seg.add_arguments(parser)
    args = parser.parse_args(
        [
            str(ct_dir),
            str(nifti),
            "--out",
            str(tmp_path / "cli.dcm"),
            "--names",
            str(names),
            "--algorithm-name",
            "TinyUNet",
        ]
    )
    assert export_seg.NAME == "export-seg"
    assert export_seg.run(args) == 0
    back, got_names, info = read_dicom_seg(tmp_path / "cli.dcm", reference=ct_volume)
    np.testing.assert_array_equal(back.array, ct_labels)
    assert got_names == {1: "body", 2: "kidney_left", 3: "label_3"}
    assert {s["algorithm_type"] for s in info["segments"].values()} == {"AUTOMATIC"}


def test_seg_read_onto_a_coarser_reference_is_resampled_by_position(ct_seg, ct_volume, ct_labels):
    from viewer.core.volume import Volume

    sx, sy, sz = ct_volume.spacing
    coarse = Volume(np.zeros((20, 256, 256), np.int16), (2 * sx, 2 * sy, sz), ct_volume.origin, ct_volume.direction)
    labels, _, _ = read_dicom_seg(ct_seg, reference=coarse)
    assert labels.same_grid(coarse)
    np.testing.assert_array_equal(labels.array, ct_labels[:, ::2, ::2])


def test_labelmap_segmentation_from_another_writer_is_read(pydicom_file, tmp_path):
    """A LABELMAP SEG (pixel values are segment numbers) written by highdicom itself reads back."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    src = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    arr = np.zeros((1, 128, 128), np.uint8)
    arr[0, 10:20, 10:20], arr[0, 50:60, 10:30] = 1, 2
    desc = [hd.seg.SegmentDescription(n, f"s{n}", codes.SCT.Tissue, codes.SCT.Tissue, "MANUAL") for n in (1, 2)]
    seg = hd.seg.Segmentation([src], arr, "LABELMAP", desc, hd.UID(), 1, hd.UID(), 1, "x", "x", "1", "1")
    seg.save_as(tmp_path / "lm.dcm")
    labels, names, info = read_dicom_seg(tmp_path / "lm.dcm", reference=load_volume(pydicom_file("CT_small.dcm")))
    np.testing.assert_array_equal(labels.array, arr)
    assert names == {1: "s1", 2: "s2"} and info["segmentation_type"] == "LABELMAP"


def _two_squares_on_ct_small(pydicom_file, path):
    """(CT_small's path, its Volume, a two-label map on it, that map saved at ``path``)."""
    from viewer.core.io import save_volume

    src = pydicom_file("CT_small.dcm")
    vol = load_volume(src)
    labels = np.zeros(vol.array.shape, np.uint8)
    labels[0, 10:40, 10:40], labels[0, 60:90, 60:90] = 1, 2
    return src, vol, labels, save_volume(vol.with_array(labels, units="label"), path)


def test_export_seg_command_takes_names_and_colours_from_a_colour_table(pydicom_file, tmp_path):
    src, vol, labels, nifti = _two_squares_on_ct_small(pydicom_file, tmp_path / "l.nrrd")
    table = tmp_path / "t.ctbl"
    table.write_text("1 liver 221 130 101 255\n2 spleen 157 108 162 255\n")
    parser = argparse.ArgumentParser()
    export_seg.add_arguments(parser)
    args = parser.parse_args([str(src), str(nifti), "--out", str(tmp_path / "c.dcm"), "--names", str(table)])
    assert export_seg.run(args) == 0
    back, names, info = read_dicom_seg(tmp_path / "c.dcm", reference=vol)
    np.testing.assert_array_equal(back.array, labels)
    assert names == {1: "liver", 2: "spleen"}
    for n, rgb in ((1, (221, 130, 101)), (2, (157, 108, 162))):
        assert np.abs(np.subtract(info["segments"][n]["color"], rgb)).max() <= 1  # CIELab round trip
    assert {s["algorithm_type"] for s in info["segments"].values()} == {"MANUAL"}


def test_export_seg_command_reads_the_names_beside_the_labels(pydicom_file, tmp_path):
    """Without --names, labels.nrrd takes its segment names from labels.json beside it."""
    src, vol, _, path = _two_squares_on_ct_small(pydicom_file, tmp_path / "labels.nrrd")
    (tmp_path / "labels.json").write_text('{"1": "liver", "2": "spleen"}')
    parser = argparse.ArgumentParser()
    export_seg.add_arguments(parser)
    assert export_seg.run(parser.parse_args([str(src), str(path), "--out", str(tmp_path / "s.dcm")])) == 0
    _, names, _ = read_dicom_seg(tmp_path / "s.dcm", reference=vol)
    assert names == {1: "liver", 2: "spleen"}
