"""PS3.15 basic-profile anonymization: identifiers gone, UIDs remapped consistently, pixels untouched."""

from __future__ import annotations

import argparse
import shutil

import numpy as np
import pydicom
import pytest

from viewer.commands import anonymize as anonymize_cmd
from viewer.core.errors import EmptyInputError
from viewer.core.io import load_volume
from viewer.core.io.anonymize import PROFILE, anonymize

IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "ContentDate",
    "AcquisitionDate",
    "OperatorsName",
    "StationName",
    "StudyDescription",
    "SeriesDescription",
    "IssuerOfPatientID",
    "DeviceSerialNumber",
)
DUMMIES = ("", "19000101", "000000", "ANONYMOUS")  # removed, emptied or a profile dummy value
GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "Rows", "Columns")


def _check_profile_applied(ds):
    """No element the profile removes, no non-empty element it empties, no private or curve/overlay data."""
    for elem in ds.iterall():
        action = PROFILE.get(int(elem.tag))
        assert action != "X", f"{elem.keyword} should have been removed"
        if action == "Z" and elem.keyword not in ("PatientID", "PatientName"):  # replaced by the caller
            assert elem.VM == 0 or elem.value in ("", None) or (elem.VR == "SQ" and len(elem.value) == 0), elem
        assert not elem.tag.is_private, f"private {elem.tag} left"
        assert not (0x5000 <= elem.tag.group <= 0x50FF), "curve data left"
        assert not (0x6000 <= elem.tag.group <= 0x60FF and elem.tag.element in (0x3000, 0x4000)), "overlay left"


@pytest.fixture
def tagged_ct_small(pydicom_file, tmp_path):
    """CT_small with a private tag, an overlay, burned-in annotation and a PHI-bearing reference sequence."""
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    ds.InstitutionName = "St Elsewhere Hospital"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.OperatorsName = "Tech^Tina"
    ds.PatientBirthDate = "19700101"
    block = ds.private_block(0x0011, "ACME", create=True)
    block.add_new(0x01, "LO", "patient phone 555-0100")
    ds.add_new(0x60004000, "LT", "overlay comment with name")
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 16)
    ref = pydicom.Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID  # refers to itself: must map to its new UID
    ds.ReferencedImageSequence = [ref]
    path = tmp_path / "in" / "ct.dcm"
    path.parent.mkdir()
    ds.save_as(path)
    (tmp_path / "in" / "notes.txt").write_text("not dicom")
    return path


def test_ct_small_identifiers_removed_and_pixels_kept(tagged_ct_small, tmp_path):
    original = pydicom.dcmread(tagged_ct_small)
    report = anonymize(tagged_ct_small.parent, tmp_path / "out", patient_name="ANON", patient_id="CASE-7")
    assert len(report.files_written) == 1
    assert [p.name for p, _ in report.skipped] == ["notes.txt"]
    ds = pydicom.dcmread(report.files_written[0])
    _check_profile_applied(ds)
    assert str(ds.PatientName) == "ANON" and ds.PatientID == "CASE-7"
    for keyword in IDENTIFYING[2:]:
        assert str(ds.get(keyword, "") or "") in DUMMIES, keyword
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert ds.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
    assert ds.PixelData == original.PixelData
    for keyword in GEOMETRY:
        assert ds.get(keyword) == original.get(keyword), keyword
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert ds.get(keyword) and ds.get(keyword) != original.get(keyword), keyword
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert report.burned_in == [tagged_ct_small]
    assert "St Elsewhere" not in report.files_written[0].read_bytes().decode("latin-1")


@pytest.fixture(scope="module")
def anonymized_series(ct_dir, tmp_path_factory):
    return anonymize(ct_dir, tmp_path_factory.mktemp("anon"))


def test_series_uids_remapped_consistently(anonymized_series, ct_dir):
    report = anonymized_series
    originals = {pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber: f for f in sorted(ct_dir.iterdir())}
    out = [pydicom.dcmread(f) for f in report.files_written]
    assert len(out) == len(originals) == 20
    assert len({ds.SeriesInstanceUID for ds in out}) == 1 and out[0].SeriesInstanceUID
    assert len({ds.StudyInstanceUID for ds in out}) == 1 and out[0].StudyInstanceUID
    assert len({ds.FrameOfReferenceUID for ds in out}) == 1
    assert len({ds.SOPInstanceUID for ds in out}) == 20
    for ds in out:
        _check_profile_applied(ds)
        orig = pydicom.dcmread(originals[ds.InstanceNumber])
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPInstanceUID != orig.file_meta.MediaStorageSOPInstanceUID
        assert ds.FrameOfReferenceUID != orig.FrameOfReferenceUID
        # the same original UID maps to the same new UID wherever it occurs
        assert orig.IrradiationEventUID == orig.SourceImageSequence[0].ReferencedSOPInstanceUID
        assert ds.IrradiationEventUID == ds.SourceImageSequence[0].ReferencedSOPInstanceUID
        assert ds.IrradiationEventUID != orig.IrradiationEventUID
        assert ds.PixelData == orig.PixelData
        for keyword in GEOMETRY:
            assert ds.get(keyword) == orig.get(keyword), keyword
        assert ds.PatientIdentityRemoved == "YES"
        assert "InstitutionAddress" not in ds and "StationName" not in ds
        assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert report.uid_map_size >= 20 + 3


def test_anonymized_series_loads_to_the_same_volume(anonymized_series, ct_volume):
    out_dirs = {p.parent for p in anonymized_series.files_written}
    assert len(out_dirs) == 1
    vol = load_volume(out_dirs.pop())
    np.testing.assert_array_equal(vol.array, ct_volume.array)
    assert vol.same_grid(ct_volume)


def test_patient_id_pseudonym_is_stable_within_a_run(anonymized_series):
    ids = {pydicom.dcmread(f, stop_before_pixels=True).PatientID for f in anonymized_series.files_written}
    assert len(ids) == 1 and ids.pop().startswith("ANON-")


def test_anonymize_command_reports_burned_in_annotation(tagged_ct_small, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    anonymize_cmd.add_arguments(parser)
    assert anonymize_cmd.NAME == "anonymize"
    args = parser.parse_args([str(tagged_ct_small), str(tmp_path / "cli"), "--patient-name", "Case^One"])
    assert anonymize_cmd.run(args) == 0
    captured = capsys.readouterr()
    assert "wrote 1 files" in captured.out
    assert "BurnedInAnnotation: 1 YES" in captured.out
    assert "BurnedInAnnotation YES" in captured.err
    written = list((tmp_path / "cli").rglob("*.dcm"))
    assert str(pydicom.dcmread(written[0]).PatientName) == "Case^One"


def test_folder_without_dicom_raises(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    with pytest.raises(EmptyInputError):
        anonymize(tmp_path / "in", tmp_path / "out")
    shutil.rmtree(tmp_path / "in")
    with pytest.raises(EmptyInputError):
        anonymize(tmp_path / "in", tmp_path / "out")


def test_seg_and_its_series_anonymized_together_stay_linked(ct_dir, ct_labels, tmp_path, dciodvfy_errors):
    from viewer.core.io.seg import read_dicom_seg, write_dicom_seg

    study = tmp_path / "study"
    shutil.copytree(ct_dir, study / "ct")
    write_dicom_seg(ct_labels, ct_dir, study / "seg" / "seg.dcm", names={1: "body", 2: "kidney_left", 3: "lesion"})
    report = anonymize(study, tmp_path / "anon")
    seg_file = next(p for p in report.files_written if "SEG" in p.parent.name)
    ct_folder = next(p.parent for p in report.files_written if "CT" in p.parent.name)
    ct = load_volume(ct_folder)
    labels, _, info = read_dicom_seg(seg_file, reference=ct)
    np.testing.assert_array_equal(labels.array, ct_labels)
    assert info["referenced_series_uid"] == ct.meta["series_uid"]
    new_sops = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in ct.meta["files"]}
    assert set(info["referenced_instances"]) == new_sops
    seg = pydicom.dcmread(seg_file, stop_before_pixels=True)
    assert seg.FrameOfReferenceUID == pydicom.dcmread(ct.meta["files"][0], stop_before_pixels=True).FrameOfReferenceUID
    assert dciodvfy_errors(seg_file) == []


def test_cancel_keeps_nothing_partial(ct_dir, tmp_path):
    from viewer.core.errors import Cancelled
    from viewer.core.progress import CancelToken

    token = CancelToken()

    def progress(fraction, message):
        if fraction >= 0.5:
            token.cancel()

    with pytest.raises(Cancelled):
        anonymize(ct_dir, tmp_path / "out", progress=progress, cancel=token)
    assert not list((tmp_path / "out").rglob("*.dcm"))


def test_anonymize_command_reports_undeclared_burned_in_flags(pydicom_file, tmp_path, capsys):
    """CT_small does not declare BurnedInAnnotation: the report says so rather than staying silent."""
    parser = argparse.ArgumentParser()
    anonymize_cmd.add_arguments(parser)
    assert anonymize_cmd.run(parser.parse_args([str(pydicom_file("CT_small.dcm")), str(tmp_path / "o")])) == 0
    assert "BurnedInAnnotation: 1 not declared" in capsys.readouterr().out
