"""Native pixel decoders run in child processes: a decoder that crashes fails its file, not the process.

Pins: a real native crash (abort, segfault) in a decoder process becomes CorruptFileError naming the file and
the signal, and the test process lives on; calls that shared the crashed pool are retried and decode
normally; the pool is replaced, so a JPEG 2000 series then loads (without retries) equal to SimpleITK; a
daemonic worker process, which may not start processes, decodes in itself; an error raised in a decoder
process comes back typed, naming its file; a JPEG 2000 SEG read through one equals its native copy.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import JPEG2000Lossless

from tests.export.test_seg_read import _highdicom_seg
from viewer.core.errors import CorruptFileError, LabelMapError
from viewer.core.io import load_volume
from viewer.core.io.decoder_process import run_isolated
from viewer.core.io.dicom_decode import decode_frames
from viewer.core.io.dicom_headers import read_header
from viewer.core.io.seg import read_dicom_seg

RETRIED = "decoding it again alone"


def _crash(path: Path) -> None:
    """A real native crash (null pointer read: SIGSEGV) in the decoder process, on behalf of ``path``."""
    run_isolated(path, ctypes.string_at, 0)


def _retried(caplog) -> set[str]:
    return {r.getMessage().split(": ")[0] for r in caplog.records if RETRIED in r.getMessage()}


@pytest.mark.parametrize(("fn", "args", "signal"), [(os.abort, (), "SIGABRT"), (ctypes.string_at, (0,), "SIGSEGV")])
def test_a_native_crash_is_a_corrupt_file_error_naming_the_file_and_signal(tmp_path, fn, args, signal):
    path = tmp_path / "crashes.dcm"
    says = rf"crashes.dcm: the pixel decoder crashed on this file \(signal {signal}\)"
    with pytest.raises(CorruptFileError, match=says) as err:
        run_isolated(path, fn, *args)
    assert err.value.path == str(path)  # ... and this process is still here to check it


def test_files_that_shared_the_crashed_pool_decode_normally(shared_data, tmp_path, caplog):
    files = sorted((shared_data / "ct_abdomen_dicom").iterdir())
    headers = [read_header(f) for f in files]
    crash = tmp_path / "crashes.dcm"
    caplog.set_level(logging.WARNING, "viewer.core.io.decoder_process")
    with ThreadPoolExecutor(len(files) + 1) as threads:  # the crash queued among the decodes
        decoded = [threads.submit(decode_frames, h) for h in headers[:10]]
        crashed = threads.submit(_crash, crash)
        decoded += [threads.submit(decode_frames, h) for h in headers[10:]]
    with pytest.raises(CorruptFileError, match="crashes.dcm: the pixel decoder crashed on this file"):
        crashed.result()
    for f, future in zip(files, decoded, strict=True):
        assert np.array_equal(future.result(), pydicom.dcmread(f).pixel_array[np.newaxis]), f.name
    assert _retried(caplog) - {str(crash)}, "no decode was in the crashed pool: the retry went untested"


def test_after_a_crash_a_jpeg2000_series_loads_equal_to_simpleitk_without_retries(shared_data, tmp_path, caplog):
    folder = shared_data / "ct_abdomen_dicom"
    with pytest.raises(CorruptFileError):
        _crash(tmp_path / "crashes.dcm")
    caplog.clear()
    caplog.set_level(logging.WARNING, "viewer.core.io.decoder_process")
    vol = load_volume(folder)
    ref = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    assert np.array_equal(vol.array, sitk.GetArrayFromImage(ref))
    assert not _retried(caplog), "the crashed pool was not replaced"


def test_a_daemonic_worker_process_decodes_in_itself(shared_data):
    """A multiprocessing.Pool (or Dask) worker may not start processes: it loads a JPEG 2000 series all the same."""
    folder = shared_data / "ct_abdomen_dicom"
    with multiprocessing.get_context("spawn").Pool(1) as workers:
        vol = workers.apply(load_volume, (folder,))
    assert np.array_equal(vol.array, load_volume(folder).array)


def _damage_codestream(src: Path, out: Path) -> Path:
    """A copy of ``src`` whose (first) JPEG 2000 codestream lost its SOC and SIZ markers."""
    data = bytearray(src.read_bytes())
    start = data.find(b"\xff\x4f\xff\x51")
    data[start:start + 4] = bytes(4)
    out.write_bytes(data)
    return out


def test_a_decoder_error_in_the_child_comes_back_typed_naming_the_file(shared_data, tmp_path):
    path = _damage_codestream(sorted((shared_data / "ct_abdomen_dicom").iterdir())[0], tmp_path / "damaged_j2k.dcm")
    with pytest.raises(CorruptFileError, match="damaged_j2k.dcm: pixel data cannot be decoded") as err:
        decode_frames(read_header(path))
    assert err.value.path == str(path)


def test_a_jpeg2000_seg_read_through_a_decoder_process_equals_its_native_copy(pydicom_file, tmp_path):
    """... and damaged, the typed error raised in the decoder process names it."""
    masks = np.zeros((1, 128, 128, 2), np.uint8)
    masks[0, 10:30, 10:30, 0] = 1
    masks[0, 50:70, 40:90, 1] = 1
    _highdicom_seg(pydicom_file, tmp_path / "native.dcm", masks, "BINARY")
    _highdicom_seg(pydicom_file, tmp_path / "j2k.dcm", masks, "BINARY", transfer_syntax_uid=JPEG2000Lossless)
    assert pydicom.dcmread(tmp_path / "j2k.dcm").file_meta.TransferSyntaxUID == JPEG2000Lossless
    native = read_dicom_seg(tmp_path / "native.dcm")[0].array
    assert np.array_equal(read_dicom_seg(tmp_path / "j2k.dcm")[0].array, native) and native.max() == 2
    damaged = _damage_codestream(tmp_path / "j2k.dcm", tmp_path / "damaged_seg.dcm")
    with pytest.raises(LabelMapError, match="damaged_seg.dcm: cannot read the SEG's frames"):
        read_dicom_seg(damaged)


def test_the_main_script_is_left_alone_once_every_decoder_process_runs(monkeypatch):
    """`__main__` is hidden while a submit may start a decoder process (a new process would run the main script
    again); once all WORKERS run, submits start none, and another thread reading `__main__` meanwhile sees it."""
    import sys
    import time
    from contextlib import nullcontext

    from viewer.core.io import decoder_process

    with ThreadPoolExecutor(decoder_process.WORKERS) as threads:  # busy at once: each submit finds none idle
        list(threads.map(lambda _: run_isolated("sleep", time.sleep, 0.5), range(decoder_process.WORKERS)))
    assert not decoder_process._may_start_process(decoder_process._shared_pool())
    hidden = []
    monkeypatch.setattr(decoder_process, "_main_script_hidden", lambda: hidden.append(sys.modules["__main__"])
                        or nullcontext())
    assert run_isolated("pid", os.getpid) != os.getpid()
    assert hidden == []
