"""Helpers to build small real DICOM series from pydicom's CT_small.dcm for geometry edge cases."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest


def write_series(src: Path, out: Path, positions, *, orientation=None, series_uid="1.2.3.4.5", names=None):
    """Copies of ``src`` at ``positions`` (IPP, mm); each slice's pixels hold its index + 100."""
    out.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(src)
    paths = []
    for k, pos in enumerate(positions):
        ds = copy.deepcopy(base)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = f"{series_uid}.{k + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [float(v) for v in pos]
        if orientation is not None and k == len(positions) - 1:
            ds.ImageOrientationPatient = orientation
        arr = ds.pixel_array.copy()
        arr[:] = k + 100
        ds.PixelData = arr.astype(arr.dtype).tobytes()
        name = (names[k] if names else f"{(k * 7919) % 1000:04d}.dcm")
        ds.save_as(out / name)
        paths.append(out / name)
    return paths


@pytest.fixture
def make_series(pydicom_file, tmp_path):
    src = pydicom_file("CT_small.dcm")

    def make(positions, sub="series", **kw):
        return write_series(src, tmp_path / sub, positions, **kw)

    return make


def z_positions(zs):
    return [(-158.0, -179.0, float(z)) for z in zs]


@pytest.fixture
def zpos():
    return z_positions


def np_equal(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))
