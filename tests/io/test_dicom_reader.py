"""DICOM series reading: voxel-identical to SimpleITK, position-sorted, geometry checks, typed errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from viewer.core.errors import (
    CorruptFileError,
    EmptyInputError,
    GeometryError,
    MixedSeriesError,
    NotAnImageError,
    NotAVolumeObjectError,
    UnsupportedFormatError,
)
from viewer.core.io import load_volume, open_series, scan


def _sitk_series(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_shared_jpeg2000_series_equals_simpleitk_voxel_for_voxel(shared_data):
    folder = shared_data / "ct_abdomen_dicom"
    vol = load_volume(folder)
    ref = _sitk_series(folder)
    assert vol.modality == "CT" and vol.units == "HU"
    assert vol.array.dtype == np.int16
    assert np.array_equal(vol.array, sitk.GetArrayFromImage(ref))
    assert np.allclose(vol.spacing, ref.GetSpacing(), atol=1e-4)
    assert np.allclose(vol.origin, ref.GetOrigin(), atol=1e-4)
    assert np.allclose(vol.direction.ravel(), ref.GetDirection(), atol=1e-4)


def test_series_with_empty_uids_gets_one_stable_generated_uid(shared_data):
    folder = shared_data / "ct_abdomen_dicom"
    found = scan(folder)
    assert len(found) == 1 and found[0].n_files == 20
    assert found[0].series_uid.startswith("2.25.")
    assert load_volume(folder).meta["series_uid"] == found[0].series_uid == scan(folder)[0].series_uid


def test_slices_are_sorted_by_position_not_file_name(make_series, zpos):
    zs = [10.0, 12.0, 14.0, 16.0, 18.0]
    names = ["e.dcm", "a.dcm", "d.dcm", "b.dcm", "c.dcm"]
    order = [3, 0, 4, 1, 2]  # file k holds position zs[order[k]]
    paths = make_series([zpos(zs)[i] for i in order], names=names)
    vol = load_volume(paths[0].parent)
    assert vol.spacing[2] == pytest.approx(2.0)
    assert vol.origin[2] == pytest.approx(10.0)
    # the value in each slice is 100 + the index of the file that held it
    expected = [100 + order.index(i) for i in range(5)]
    assert [int(vol.array[k, 0, 0]) for k in range(5)] == [_hu(e) for e in expected]


def _hu(stored):
    # CT_small has RescaleSlope 1, RescaleIntercept -1024
    return stored - 1024


def test_spacing_comes_from_positions_and_gaps_are_reported(make_series, zpos):
    vol = load_volume(make_series(zpos([0, 3, 6, 12, 15]))[0].parent)
    assert vol.spacing[2] == pytest.approx(3.0)
    assert any("missing slice" in w for w in vol.warnings)


def test_duplicate_positions_are_dropped_with_a_warning(make_series, zpos):
    vol = load_volume(make_series(zpos([0, 2, 2, 4]))[0].parent)
    assert vol.array.shape[0] == 3
    assert any("duplicate" in w for w in vol.warnings)


def test_gantry_tilt_is_reported(make_series):
    positions = [(-158.0, -179.0 + 0.5 * k, 2.0 * k) for k in range(5)]
    vol = load_volume(make_series(positions)[0].parent)
    assert any("tilt" in w for w in vol.warnings)


def test_mixed_orientations_raise_geometry_error(make_series, zpos):
    paths = make_series(zpos([0, 2, 4]), orientation=[1, 0, 0, 0, 0, -1])
    with pytest.raises(GeometryError, match="orientation"):
        load_volume(paths[0].parent)


def test_two_series_in_one_folder_raise_and_can_be_chosen(make_series, zpos, tmp_path):
    make_series(zpos([0, 2, 4]), sub="mixed", series_uid="1.2.3.1")
    make_series(zpos([0, 2]), sub="mixed", series_uid="1.2.3.2", names=["x1.dcm", "x2.dcm"])
    folder = tmp_path / "mixed"
    with pytest.raises(MixedSeriesError) as err:
        load_volume(folder)
    assert {s.series_uid for s in err.value.series} == {"1.2.3.1", "1.2.3.2"}
    assert "1.2.3.1" in str(err.value) and "1.2.3.2" in str(err.value)
    assert load_volume(folder, series_uid="1.2.3.2").array.shape[0] == 2


def test_ct_small_is_int16_hu(pydicom_file):
    vol = load_volume(pydicom_file("CT_small.dcm"))
    assert vol.array.shape == (1, 128, 128) and vol.array.dtype == np.int16
    import pydicom

    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
    assert np.array_equal(vol.array[0], hu)


@pytest.mark.parametrize(
    "name",
    ["MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_jp2klossless.dcm",
     "MR_small_jpeg_ls_lossless.dcm"],
)
def test_mr_transfer_syntaxes_equal_uncompressed(pydicom_file, name):
    plain = load_volume(pydicom_file("MR_small.dcm"))
    other = load_volume(pydicom_file(name))
    assert plain.modality == "MR" and plain.units == "arbitrary"
    assert np.array_equal(plain.array, other.array)
    assert np.allclose(plain.origin, other.origin) and np.allclose(plain.spacing, other.spacing)


@pytest.mark.parametrize("name", ["liver_1frame.dcm", "liver_expb.dcm"])
def test_segmentation_is_refused_naming_the_file_and_how_to_open_it(pydicom_file, name):
    with pytest.raises(NotAVolumeObjectError, match=f"{name}.*DICOM SEG.*File > Open segmentation"):
        load_volume(pydicom_file(name))


def test_jpeg2000_file_decodes(pydicom_file):
    import pydicom

    vol = load_volume(pydicom_file("JPEG2000.dcm"))
    assert np.array_equal(vol.array[0], pydicom.dcmread(pydicom_file("JPEG2000.dcm")).pixel_array)


def test_multiframe_rtdose_uses_frame_offsets_and_is_equal_across_transfer_syntaxes(pydicom_file):
    # emri_small*.dcm are download-only in this pydicom; rtdose*.dcm are real 15-frame objects
    import pydicom

    ref = load_volume(pydicom_file("rtdose.dcm"))
    ds = pydicom.dcmread(pydicom_file("rtdose.dcm"))
    assert ref.array.shape[0] == 15
    assert ref.units == ("Gy" if ds.DoseUnits == "GY" else "arbitrary")  # this file's dose is RELATIVE
    offsets = np.asarray(ds.GridFrameOffsetVector, float)
    assert ref.spacing[2] == pytest.approx(abs(offsets[1] - offsets[0]))
    scaled = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    assert np.allclose(ref.array, scaled if offsets[1] > 0 else scaled[::-1], rtol=1e-6)
    for name in ("rtdose_expb.dcm", "rtdose_rle.dcm"):
        assert np.array_equal(load_volume(pydicom_file(name)).array, ref.array), name


def test_file_without_preamble_or_meta_is_read_or_named_as_damaged(pydicom_file):
    # pydicom's no_meta.dcm has no preamble/meta and no readable data elements
    with pytest.raises(CorruptFileError, match="no_meta.dcm"):
        load_volume(pydicom_file("no_meta.dcm"))


def test_truncated_file_raises_corrupt_error_naming_it(pydicom_file):
    path = pydicom_file("MR_truncated.dcm")
    with pytest.raises(CorruptFileError) as err:
        load_volume(path)
    assert str(path) in str(err.value) and "truncated" in str(err.value)


def test_garbage_behind_dicom_magic_is_corrupt(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 50)
    with pytest.raises(CorruptFileError, match="bad.dcm"):
        load_volume(bad)


@pytest.mark.parametrize(("name", "says"), [
    ("rtstruct.dcm", "RT Structure Set .*: contours, not an image: open the image series they were drawn on"),
    ("rtplan.dcm", "RT Plan .*: a radiotherapy plan or record: it holds no image"),
    ("test-SR.dcm", "Comprehensive SR .*: a structured report"),
    ("DICOMDIR", "Media Storage Directory .*: the index of a DICOM disc: open the folder that holds it"),
    ("waveform_ecg.dcm", "12-lead ECG Waveform .*: a waveform"),
])
def test_non_image_dicom_raises_not_an_image_saying_what_it_is(pydicom_file, name, says):
    with pytest.raises(NotAnImageError, match=f"{name}: DICOM object without pixel data: {says}"):
        load_volume(pydicom_file(name))


def test_empty_folder_and_unknown_format(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError, match="empty"):
        load_volume(tmp_path / "empty")
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="notes.txt"):
        load_volume(txt)


def test_progressive_loader_has_geometry_before_voxels_and_reports_middle_first(shared_data):
    loader = open_series(shared_data / "ct_abdomen_dicom")
    assert loader.volume.size == (512, 512, 20)
    assert not loader.volume.array.any()  # nothing decoded yet
    seen = []
    loader.load(on_slices=seen.extend)
    assert sorted(seen) == list(range(20))
    assert seen[0] == 10  # the middle slice lands first, so a viewer can show it at once
    assert loader.volume.array.any()


def test_cancel_stops_loading(shared_data):
    from viewer.core.errors import Cancelled
    from viewer.core.progress import CancelToken

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        load_volume(shared_data / "ct_abdomen_dicom", cancel=token)


def test_file_list_input(shared_data, tmp_path):
    files = sorted((shared_data / "ct_abdomen_dicom").iterdir())[:5]
    vol = load_volume(files)
    assert vol.array.shape[0] == 5
    copy = tmp_path / "one"
    copy.mkdir()
    shutil.copy(files[0], copy / "x")
    assert load_volume(copy).array.shape[0] == 1


def test_image_without_preamble_and_file_meta_still_loads(pydicom_file, tmp_path):
    import pydicom

    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    bare = tmp_path / "bare"
    ds.file_meta, ds.preamble = pydicom.dataset.FileMetaDataset(), None
    with open(bare, "wb") as f:  # raw Implicit VR Little Endian data set: no preamble, no DICM, no group 2
        pydicom.dcmwrite(f, ds, enforce_file_format=False, little_endian=True, implicit_vr=True)
    assert bare.read_bytes()[128:132] != b"DICM" and b"\x02\x00\x10\x00" not in bare.read_bytes()[:400]
    vol = load_volume(bare)
    assert np.array_equal(vol.array, load_volume(pydicom_file("CT_small.dcm")).array)


def test_enhanced_multiframe_uses_per_frame_positions_and_frame_rescale(pydicom_file, tmp_path):
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    stored = ds.pixel_array
    zs = [20.0, 10.0, 15.0]  # frames stored out of spatial order
    ds.NumberOfFrames = len(zs)
    ds.PixelData = np.stack([stored + k for k in range(len(zs))]).astype(stored.dtype).tobytes()

    def item(**kw):
        it = Dataset()
        for key, value in kw.items():
            setattr(it, key, value)
        return it

    shared = item(
        PlaneOrientationSequence=Sequence([item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
        PixelMeasuresSequence=Sequence([item(PixelSpacing=[0.5, 0.7], SliceThickness=5)]),
        PixelValueTransformationSequence=Sequence([item(RescaleSlope=1, RescaleIntercept=-1024, RescaleType="HU")]),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [item(PlanePositionSequence=Sequence([item(ImagePositionPatient=[-100, -90, z])])) for z in zs]
    )
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope",
                    "RescaleIntercept"):
        delattr(ds, keyword)
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path)

    vol = load_volume(path)
    assert vol.array.shape == (3, *stored.shape) and vol.spacing == pytest.approx((0.7, 0.5, 5.0))
    assert vol.origin == pytest.approx((-100, -90, 10))
    for z_index, frame in enumerate([1, 2, 0]):  # sorted by position: 10, 15, 20 mm
        assert np.array_equal(vol.array[z_index], stored.astype(np.int32) + frame - 1024)
    assert not vol.warnings


def test_deflated_transfer_syntax_decodes(pydicom_file):
    import pydicom

    path = pydicom_file("image_dfl.dcm")
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    assert np.array_equal(load_volume(path).array[0], pydicom.dcmread(path).pixel_array)


@pytest.mark.parametrize("source", ["CT_small.dcm", "MR_small.dcm"])
@pytest.mark.parametrize("flag, syntax", [("+e1", "1.2.840.10008.1.2.4.70"), ("+el", "1.2.840.10008.1.2.4.57")])
def test_jpeg_lossless_equals_uncompressed(pydicom_file, tmp_path, source, flag, syntax):
    """JPEG lossless (process 14, SV1 and any predictor) encoded by DCMTK decodes to the same voxels."""
    import subprocess

    import pydicom

    out = tmp_path / f"lossless_{source}"
    subprocess.run(["dcmcjpeg", flag, str(pydicom_file(source)), str(out)], check=True, capture_output=True)
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == syntax
    plain, lossless = load_volume(pydicom_file(source)), load_volume(out)
    assert lossless.units == plain.units and lossless.array.dtype == plain.array.dtype
    assert np.array_equal(lossless.array, plain.array)
    assert np.allclose(lossless.origin, plain.origin) and np.allclose(lossless.spacing, plain.spacing)


@pytest.mark.parametrize("name", ["emri_small_big_endian.dcm", "emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm",
                                  "emri_small_jpeg_ls_lossless.dcm"])
def test_multiframe_mr_in_every_transfer_syntax_equals_uncompressed(pydicom_file, name):
    import pydicom

    plain = load_volume(pydicom_file("emri_small.dcm"))
    ds = pydicom.dcmread(pydicom_file("emri_small.dcm"))
    assert plain.array.shape == (int(ds.NumberOfFrames), ds.Rows, ds.Columns) == (10, 64, 64)
    assert np.array_equal(plain.array, ds.pixel_array)
    other = load_volume(pydicom_file(name))
    assert np.array_equal(other.array, plain.array)
    assert other.spacing == plain.spacing and other.modality == "MR"


def test_truncated_multiframe_names_the_file(pydicom_file):
    with pytest.raises(CorruptFileError, match="emri_small_jpeg_2k_lossless_too_short.dcm"):
        load_volume(pydicom_file("emri_small_jpeg_2k_lossless_too_short.dcm"))


@pytest.mark.parametrize("name", ["JPGLosslessP14SV1_1s_1f_8b.dcm", "JPEG-LL.dcm"])
def test_real_jpeg_lossless_files_decode(pydicom_file, name):
    import pydicom

    ds = pydicom.dcmread(pydicom_file(name))
    assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57")
    vol = load_volume(pydicom_file(name))
    stored = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    assert np.array_equal(vol.array[0], stored.astype(vol.array.dtype))
