"""Describe the series under a path (geometry, units, warnings) from headers (and an image file's first slices)."""

from __future__ import annotations

from os import PathLike

import numpy as np

from viewer.core.io import scan
from viewer.core.io.dicom_series import SeriesLoader
from viewer.core.io.image_files import read_image_sample


def describe(path: str | PathLike) -> list[dict]:
    """One JSON-able dict per series: series_uid, modality, description, size [x,y,z], spacing,
    origin, direction (9 numbers, row-major), units, n_files, warnings.

    DICOM series are described from their headers; NIfTI/NRRD/MHA files from their header and first
    slices, whose values tell the modality and units (as :func:`viewer.core.io.load_volume` infers them
    from all voxels).
    """
    out = []
    for s in scan(path):
        if s.headers:
            vol = SeriesLoader(s).volume
            size = vol.size
        else:
            vol, size = read_image_sample(s.files[0])
        out.append(
            {
                "series_uid": s.series_uid,
                "modality": vol.modality,
                "description": s.description,
                "size": [int(v) for v in size],
                "spacing": [float(v) for v in vol.spacing],
                "origin": [float(v) for v in vol.origin],
                "direction": [float(v) + 0.0 for v in np.asarray(vol.direction).ravel()],  # no -0.0
                "units": vol.units,
                "n_files": s.n_files,
                "warnings": list(vol.warnings),
            }
        )
    return out
