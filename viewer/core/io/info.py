"""Describe the series under a path (geometry, units, warnings) from headers only, without pixels."""

from __future__ import annotations

from os import PathLike

import numpy as np

from viewer.core.io import scan
from viewer.core.io.dicom_series import SeriesLoader
from viewer.core.io.image_files import read_image_file


def describe(path: str | PathLike) -> list[dict]:
    """One JSON-able dict per series: series_uid, modality, description, size [x,y,z], spacing,
    origin, direction (9 numbers, row-major), units, n_files, warnings.

    DICOM series are described from their headers; NIfTI/NRRD/MHA files are read whole, because
    their modality and units are inferred from the values (as :func:`viewer.core.io.load_volume` does).
    """
    out = []
    for s in scan(path):
        vol = SeriesLoader(s).volume if s.headers else read_image_file(s.files[0])
        out.append(
            {
                "series_uid": s.series_uid,
                "modality": vol.modality,
                "description": s.description,
                "size": [int(v) for v in vol.size],
                "spacing": [float(v) for v in vol.spacing],
                "origin": [float(v) for v in vol.origin],
                "direction": [float(v) + 0.0 for v in np.asarray(vol.direction).ravel()],  # no -0.0
                "units": vol.units,
                "n_files": s.n_files,
                "warnings": list(vol.warnings),
            }
        )
    return out
