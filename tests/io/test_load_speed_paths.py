"""The fast paths of DICOM loading give exactly what the general ones give.

Header layouts: the files of a series that share a layout are read by it (no walk) and equal pydicom's
dataset, attributes and file meta included, in both VR encodings, with nothing shared between two files
that a change to one would show in the other; a file of the same size whose structure differs (an extra
private tag in place of a shorter value) is not read by the layout, and its series still loads bit-exact
with the right geometry; a flipped byte in a value reads as pydicom reads it, one in the structure sends
the file back to the walk. Batches: slices are decoded in tasks of several whole files, the middle
slice's file first and alone, each file's frames landing in its own slices.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.io.test_load_fast_header import assert_same_dataset
from viewer.core.io import load_volume, open_series
from viewer.core.io.dicom_fast_header import CHUNK, read_header_fast
from viewer.core.io.dicom_header_layout import read_with_layout
from viewer.core.io.dicom_headers import DEFER_SIZE
from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series
from viewer.core.volume import Volume

SPACING, ORIGIN = (0.5, 0.6, 2.0), (-10.0, 20.0, 30.0)


def _series(folder: Path, implicit: bool = False) -> tuple[Volume, list[Path]]:
    """A small CT series whose files all have one layout (one-digit instance numbers, equal-length positions)."""
    values = np.random.default_rng(3).integers(-1024, 3071, size=(6, 10, 8)).astype(np.int16)
    vol = Volume(values, SPACING, ORIGIN, modality="CT", units="HU")
    paths = write_dicom_series(vol, folder, study=DicomStudy("layout", "Layout^Test", "LT"))
    if implicit:
        for path in paths:
            ds = pydicom.dcmread(path)
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
            ds.save_as(path, implicit_vr=True, little_endian=True)
    return vol, paths


def _by_layout(path: Path):
    """The dataset read by a remembered layout, or None when no layout fits the file."""
    with open(path, "rb") as f:
        head = f.read(CHUNK)
    stat = os.stat(path)
    return read_with_layout(str(path), head, stat.st_size, stat.st_mtime, DEFER_SIZE)


def _attributes(ds) -> dict:
    return {k: v for k, v in ds.__dict__.items() if k not in ("_dict", "file_meta")}


@pytest.mark.parametrize("implicit", [False, True])
def test_files_of_one_layout_are_read_by_it_and_equal_pydicom(tmp_path, implicit):
    _, paths = _series(tmp_path, implicit)
    assert len({p.stat().st_size for p in paths}) == 1
    read_header_fast(paths[0], DEFER_SIZE)  # walked: its layout is remembered
    for path in paths[1:]:
        fast = _by_layout(path)
        assert fast is not None, path.name
        ref = pydicom.dcmread(path, defer_size=DEFER_SIZE)
        assert_same_dataset(fast, ref)
        assert _attributes(fast) == _attributes(ref)
        assert fast.original_encoding == (implicit, True)


def test_files_read_by_one_layout_share_nothing_mutable(tmp_path):
    _, paths = _series(tmp_path)
    read_header_fast(paths[0], DEFER_SIZE)
    a, b = _by_layout(paths[1]), _by_layout(paths[2])
    for name, value in _attributes(a).items():
        if isinstance(value, (dict, list)):
            assert value is not getattr(b, name), name
    assert a._dict[0x00080005] is not b._dict[0x00080005]  # the converted character set element
    a.PatientName, a.file_meta.MediaStorageSOPInstanceUID = "Changed^Name", "1.2.3"
    a.SpecificCharacterSet = "ISO_IR 192"
    assert str(b.PatientName) == "Layout^Test" and b.SpecificCharacterSet == "ISO_IR 100"
    assert b.file_meta.MediaStorageSOPInstanceUID == b.SOPInstanceUID


def test_a_file_of_the_same_size_with_an_extra_private_tag_is_walked_and_loads_exactly(tmp_path):
    vol, paths = _series(tmp_path)
    odd = paths[3]
    ds = pydicom.dcmread(odd)
    assert len(ds.Manufacturer) == 15  # 16 bytes with padding: given up for an element of 8 + 8 bytes
    ds.Manufacturer = ""
    ds.add_new(0x00090010, "LO", "RADVIEW")
    ds.save_as(odd)
    assert odd.stat().st_size == paths[0].stat().st_size  # the same size: the layout is tried, and refused
    read_header_fast(paths[0], DEFER_SIZE)
    assert _by_layout(odd) is None
    fast = read_header_fast(odd, DEFER_SIZE)
    assert_same_dataset(fast, pydicom.dcmread(odd, defer_size=DEFER_SIZE))
    assert fast[0x00090010].value == "RADVIEW"

    loaded = load_volume(tmp_path)
    assert np.array_equal(loaded.array, vol.array)
    assert np.allclose(loaded.spacing, SPACING) and np.allclose(loaded.origin, ORIGIN)
    assert np.allclose(loaded.direction, np.eye(3))


def test_flipped_bytes_in_values_read_as_pydicom_and_in_structure_are_walked(tmp_path):
    _, paths = _series(tmp_path)
    read_header_fast(paths[0], DEFER_SIZE)
    data = paths[1].read_bytes()
    name = pydicom.dcmread(paths[1], defer_size=DEFER_SIZE)._dict[0x00100010]  # PatientName, raw
    for where, layout_reads in ((name.value_tell + 1, True), (name.value_tell - 2, False)):  # value; length
        damaged = bytearray(data)
        damaged[where] ^= 0x5A
        path = tmp_path / f"flipped_{where}.dcm"
        path.write_bytes(bytes(damaged))
        assert (_by_layout(path) is not None) == layout_reads
        fast = read_header_fast(path, DEFER_SIZE)
        if fast is not None:
            assert_same_dataset(fast, pydicom.dcmread(path, defer_size=DEFER_SIZE))


def _compressed_series(folder: Path, n: int) -> Volume:
    """An RLE-compressed CT series of ``n`` slices (decoded by pydicom, file by file)."""
    values = np.random.default_rng(5).integers(-1024, 3071, size=(n, 12, 10)).astype(np.int16)
    vol = Volume(values, SPACING, ORIGIN, modality="CT", units="HU")
    for path in write_dicom_series(vol, folder, study=DicomStudy("rle", "Rle^Test", "RLE")):
        ds = pydicom.dcmread(path)
        ds.compress(pydicom.uid.RLELossless)
        ds.save_as(path)
    return vol


def test_slices_decode_in_batches_of_whole_files_middle_first(tmp_path):
    vol = _compressed_series(tmp_path, 40)
    loader = open_series(tmp_path)
    tasks = loader._tasks(workers=1)
    assert tasks[0] == [20] and max(len(ks) for ks in tasks) > 1  # the middle alone, then several files a task
    assert sorted(k for ks in tasks for k in ks) == list(range(40))
    for ks in tasks:  # each task decodes each of its files into its own slices
        loader._load_task(ks)
    assert np.array_equal(loader.volume.array, vol.array)

    seen: list[int] = []
    loaded = open_series(tmp_path).load(on_slices=seen.extend)
    assert seen[0] == 20 and sorted(seen) == list(range(40))
    assert np.array_equal(loaded.array, vol.array)
