"""Fixtures for the export tests: the shared JPEG 2000 CT series and a 3-label map on its grid."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ct_dir(shared_data):
    """The real 20-slice JPEG 2000 CT series whose data sets have empty UIDs."""
    return shared_data / "ct_abdomen_dicom"


@pytest.fixture(scope="module")
def ct_volume(ct_dir):
    from viewer.core.io import load_volume

    return load_volume(ct_dir)


@pytest.fixture(scope="module")
def ct_labels(ct_volume):
    """Three labels on the CT grid: body above -200 HU (1), a ball (2), a box (3); slices 0-1 empty."""
    arr = ct_volume.array
    labels = np.zeros(arr.shape, np.uint8)
    labels[arr > -200] = 1
    z, y, x = np.ogrid[: arr.shape[0], : arr.shape[1], : arr.shape[2]]
    labels[(x - 330) ** 2 + (y - 260) ** 2 + ((z - 10) * 4) ** 2 < 30**2] = 2
    labels[5:8, 100:120, 100:130] = 3
    labels[:2] = 0
    return labels


@pytest.fixture(scope="session")
def dciodvfy_errors():
    """dciodvfy_errors(path): the 'Error' lines dciodvfy (dicom3tools) reports for a DICOM file."""

    def check(path) -> list[str]:
        out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
        return [line for line in (out.stdout + out.stderr).splitlines() if line.strip().startswith("Error")]

    return check
