"""Native pixel data read by file offset into the volume is bit-exact with pydicom and SimpleITK.

Pins: values equal pydicom's pixel_array x slope + intercept, slice for slice, for stored types that land
in the volume as they are (int16 MR, uint8) and for those rescaled on the way (CT uint16 + intercept,
signed 12-bit values that need sign extension), in explicit and implicit VR; a file cut short after
the scan is a CorruptFileError naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from viewer.core.errors import CorruptFileError
from viewer.core.io import load_volume, open_series
from viewer.core.io.dicom_native_pixels import native_frame, read_frame_into
from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series
from viewer.core.volume import Volume


def _reference(folder: Path) -> np.ndarray:
    """pydicom's values of every file, sorted along the slice normal, rescaled."""
    datasets = [pydicom.dcmread(f) for f in folder.iterdir()]
    normal = np.cross(*np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3)))
    datasets.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)))
    return np.stack([d.pixel_array * float(d.get("RescaleSlope", 1)) + float(d.get("RescaleIntercept", 0))
                     for d in datasets])


def _simpleitk(folder: Path) -> np.ndarray:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def _write(folder: Path, modality: str, values: np.ndarray) -> list[Path]:
    vol = Volume(values, (0.7, 0.8, 1.5), (-20.0, -30.0, 40.0), modality=modality,
                 units="HU" if modality == "CT" else "arbitrary")
    return write_dicom_series(vol, folder, study=DicomStudy("native", "Native^Pixels", "NP"))


def _load_native(folder: Path) -> Volume:
    """load_volume, after checking that the files' pixel data is read natively (by offset)."""
    loader = open_series(folder)
    g = loader.geometry
    assert all(native_frame(s.header, s.frame, g.rows, g.columns) is not None for s in g.slices)
    return load_volume(folder)


def _rewrite(paths: list[Path], edit) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        implicit = edit(ds)
        ds.save_as(path, implicit_vr=implicit, little_endian=True)


def _values(seed: int, lo: int, hi: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, size=(7, 40, 36)).astype(np.int16)


def test_int16_mr_lands_in_the_volume_as_stored(tmp_path):
    _write(tmp_path, "MR", _values(1, -32768, 32767))
    vol = _load_native(tmp_path)
    assert vol.array.dtype == np.int16
    assert np.array_equal(vol.array, _reference(tmp_path))
    assert np.array_equal(vol.array, _simpleitk(tmp_path))


def test_ct_uint16_with_intercept_is_rescaled_exactly(tmp_path):
    _write(tmp_path, "CT", _values(2, -1024, 3071))
    vol = _load_native(tmp_path)
    assert vol.array.dtype == np.int16 and vol.units == "HU"
    assert np.array_equal(vol.array, _reference(tmp_path))
    assert np.array_equal(vol.array, _simpleitk(tmp_path))


@pytest.mark.parametrize("implicit", [False, True])
def test_signed_12_bit_values_are_sign_extended(tmp_path, implicit):
    values = _values(3, -2048, 2047)
    paths = _write(tmp_path, "MR", values)

    def to_12_bit(ds):  # two's complement in 12 bits, the 4 high bits left as garbage (ones)
        stored = ds.pixel_array.astype(np.uint16) & 0x0FFF | 0xF000 * (ds.pixel_array >= 0)
        ds.PixelData = stored.astype("<u2").tobytes()
        ds.BitsStored, ds.HighBit = 12, 11
        if implicit:
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        return implicit

    _rewrite(paths, to_12_bit)
    vol = _load_native(tmp_path)
    assert np.array_equal(vol.array, _reference(tmp_path))
    assert np.array_equal(np.sort(vol.array.ravel()), np.sort(values.ravel()))


def test_fractional_slope_gives_float_values_exactly(tmp_path):
    paths = _write(tmp_path, "MR", _values(6, -3000, 3000))

    def rescaled(ds):
        ds.RescaleSlope, ds.RescaleIntercept = "0.25", "-7.5"
        return False

    _rewrite(paths, rescaled)
    vol = _load_native(tmp_path)
    assert vol.array.dtype == np.float32
    assert np.array_equal(vol.array, _reference(tmp_path).astype(np.float32))


def test_uint8_lands_in_the_volume_as_stored(tmp_path):
    paths = _write(tmp_path, "MR", _values(4, 0, 255))

    def to_uint8(ds):
        ds.PixelData = ds.pixel_array.astype(np.uint8).tobytes()
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        return False

    _rewrite(paths, to_uint8)
    vol = _load_native(tmp_path)
    assert vol.array.dtype == np.uint8
    assert np.array_equal(vol.array, _reference(tmp_path))


def test_native_frame_locates_each_frame_of_a_multiframe_file(pydicom_file):
    ds = pydicom.dcmread(pydicom_file("emri_small.dcm"))
    loader = open_series(pydicom_file("emri_small.dcm"))
    header = loader.geometry.slices[0].header
    out = np.empty((ds.Rows, ds.Columns), np.int16 if ds.PixelRepresentation else np.uint16)
    for k in range(int(ds.NumberOfFrames)):
        frame = native_frame(header, k, ds.Rows, ds.Columns)
        read_frame_into(frame, out)
        assert np.array_equal(out, ds.pixel_array[k]), k


def test_file_cut_short_after_the_scan_names_the_file(tmp_path):
    paths = _write(tmp_path, "MR", _values(5, -100, 100))
    loader = open_series(tmp_path)
    victim = paths[3]
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match=victim.name) as err:
        loader.load()
    assert "truncated" in str(err.value)


def test_compressed_and_colour_files_are_not_native(pydicom_file):
    for name in ("JPEG2000.dcm", "SC_rgb.dcm", "MR_small_bigendian.dcm"):
        loader_headers = open_series(pydicom_file(name)).geometry.slices
        h = loader_headers[0].header
        assert native_frame(h, 0, int(h.dataset.Rows), int(h.dataset.Columns)) is None, name
