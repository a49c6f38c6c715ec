"""The fast header walk gives exactly the dataset pydicom's dcmread gives, or leaves the file to pydicom.

Pins: same elements (raw bytes, offsets, VRs), same file meta, encodings and file name on every
installed pydicom test file and on real and written series; damaged files (bytes flipped, cut short)
never raise from the walk and never yield a dataset that differs from pydicom's.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataelem import RawDataElement

from viewer.core.io.dicom_fast_header import read_header_fast
from viewer.core.io.dicom_headers import DEFER_SIZE
from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series
from viewer.core.volume import Volume


def _pydicom(path: Path):
    """pydicom's own result, or None where it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, defer_size=DEFER_SIZE)
        except Exception:  # noqa: BLE001 - any failure means: the fast walk must not claim the file
            return None


def _fast(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the walk itself must not warn: it leaves odd files to pydicom
        return read_header_fast(path, DEFER_SIZE)


def assert_same_dataset(fast, ref) -> None:
    """Element for element the same, raw values and file offsets included (damaged values warn as
    pydicom converts them for the comparison: not the point here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_same_dataset(fast, ref)


def _assert_same_dataset(fast, ref) -> None:
    assert fast.filename == ref.filename
    assert fast.preamble == ref.preamble
    assert fast.original_encoding == ref.original_encoding
    assert fast._read_charset == ref._read_charset
    assert list(fast.file_meta.keys()) == list(ref.file_meta.keys())
    assert fast.file_meta == ref.file_meta
    assert list(fast._dict) == list(ref._dict)
    for tag, elem in fast._dict.items():
        other = ref._dict[tag]
        if isinstance(other, RawDataElement):
            assert elem == other, tag
        else:  # undefined-length sequences are parsed by pydicom in both readers
            assert (type(elem), elem.VR, elem.value, elem.file_tell) == \
                (type(other), other.VR, other.value, other.file_tell), tag
    assert str(fast) == str(ref)


def _installed_test_files() -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(Path(p) for p in get_testdata_files("*") if Path(p).is_file())


def test_fast_header_equals_pydicom_on_every_installed_test_file():
    handled = 0
    for path in _installed_test_files():
        ref, fast = _pydicom(path), _fast(path)
        if fast is None:
            continue
        assert ref is not None, f"{path.name}: pydicom refuses a file the fast walk accepted"
        assert_same_dataset(fast, ref)
        handled += 1
    assert handled >= 100  # implicit/explicit VR, JPEG/JPEG 2000/RLE, multi-frame, sequences, charsets


def test_fast_header_reads_the_shared_jpeg2000_series(shared_data):
    files = sorted((shared_data / "ct_abdomen_dicom").iterdir())
    for path in files:
        fast = _fast(path)
        assert fast is not None, path.name
        assert_same_dataset(fast, _pydicom(path))


@pytest.mark.parametrize("implicit", [False, True])
def test_fast_header_reads_written_series_in_both_vr_encodings(tmp_path, implicit):
    vol = Volume(np.arange(2 * 8 * 6, dtype=np.int16).reshape(2, 8, 6), (0.5, 0.6, 2.0), (1.0, 2.0, 3.0),
                 modality="CT", units="HU")
    paths = write_dicom_series(vol, tmp_path, study=DicomStudy("fast", "Fast^Header", "FH"))
    for path in paths:
        if implicit:
            ds = pydicom.dcmread(path)
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
            ds.save_as(path, implicit_vr=True, little_endian=True)
        fast = _fast(path)
        assert fast is not None and fast.original_encoding == (implicit, True)
        assert_same_dataset(fast, _pydicom(path))


def _damaged_copies(src: Path, out: Path, n: int, seed: int) -> list[Path]:
    """Copies of ``src`` with header bytes flipped at random and copies cut short at random offsets."""
    data = src.read_bytes()
    header_end = data.find(b"\xe0\x7f\x10\x00") + 12 or len(data)
    rng = random.Random(seed)
    copies = []
    for k in range(n):
        damaged = bytearray(data)
        if k % 2:
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(128, header_end)] = rng.randrange(256)
        else:
            del damaged[rng.randrange(132, len(data)):]
        path = out / f"{src.stem}_{k}.dcm"
        path.write_bytes(bytes(damaged))
        copies.append(path)
    return copies


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "emri_small.dcm"])
def test_damaged_files_never_raise_and_never_differ_from_pydicom(pydicom_file, tmp_path, name):
    fast_count = 0
    for path in _damaged_copies(pydicom_file(name), tmp_path, 120, seed=len(name)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's own warnings on damaged values (charset, UIDs)
            fast = read_header_fast(path, DEFER_SIZE)  # must not raise, whatever the damage
        if fast is None:
            continue
        ref = _pydicom(path)
        assert ref is not None, f"{path.name}: pydicom refuses a file the fast walk accepted"
        assert_same_dataset(fast, ref)
        fast_count += 1
    assert fast_count > 0  # some damage (in values, or behind the header) still reads as pydicom reads it
