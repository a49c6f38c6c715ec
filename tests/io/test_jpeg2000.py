"""JPEG 2000 frames decoded by the threaded path equal pydicom's pixel_array on every real J2K test file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from viewer.core.io import jpeg2000, load_volume
from viewer.core.io.dicom_headers import DEFER_SIZE

# grey-level JPEG 2000 files of pydicom / pydicom-data: signed and unsigned, 10-16 bits stored, a
# pixel-representation mismatch between data set and codestream, lossy and lossless, multi-frame
J2K_FILES = ["693_J2KR.dcm", "693_J2KI.dcm", "MR2_J2KI.dcm", "MR2_J2KR.dcm", "RG1_J2KR.dcm", "RG3_J2KI.dcm",
             "J2K_pixelrep_mismatch.dcm", "JPEG2000.dcm", "MR_small_jp2klossless.dcm",
             "emri_small_jpeg_2k_lossless.dcm"]


@pytest.mark.parametrize("name", J2K_FILES)
def test_frames_equal_pydicom(name):
    path = get_testdata_file(name)
    header = pydicom.dcmread(path, defer_size=DEFER_SIZE)
    frames = jpeg2000.decode_frames(header, path)
    assert frames is not None, f"{name} should take the threaded path"
    ref = pydicom.dcmread(path).pixel_array
    ref = ref if int(header.get("NumberOfFrames", 1) or 1) > 1 else ref[np.newaxis]
    assert frames.dtype == ref.dtype
    assert np.array_equal(frames, ref)


def test_colour_is_left_to_pydicom():
    path = get_testdata_file("US1_J2KR.dcm")
    assert jpeg2000.decode_frames(pydicom.dcmread(path, defer_size=DEFER_SIZE), path) is None


def test_script_without_main_guard_loads_the_shared_series(tmp_path, shared_data):
    """A plain script (no ``if __name__ == '__main__'``) can load a JPEG 2000 series: the decoder processes
    do not run the script again."""
    import subprocess
    import sys

    script = tmp_path / "load.py"
    script.write_text("from viewer.core.io import load_volume\n"
                      f"v = load_volume({str(shared_data / 'ct_abdomen_dicom')!r})\n"
                      "print('SHAPE', v.array.shape, v.units)\n")
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=repo, timeout=120,
                         env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("SHAPE") == 1 and "(20, 512, 512) HU" in out.stdout


def test_shared_series_loads_through_threads(shared_data):
    vol = load_volume(shared_data / "ct_abdomen_dicom")
    assert vol.array.shape == (20, 512, 512) and vol.array.dtype == np.int16
