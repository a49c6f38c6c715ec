"""Describe the series under a path (geometry, units, warnings) from headers (and an image file's first slices),
and the damaged files left out."""

from __future__ import annotations

from os import PathLike

import numpy as np

from viewer.core.errors import CorruptFileError, RadviewError
from viewer.core.io import SeriesInfo, scan
from viewer.core.io.dicom_series import SeriesLoader
from viewer.core.io.image_files import read_image_sample


def describe(path: str | PathLike) -> list[dict]:
    """One JSON-able dict per series: series_uid, modality, description, size [x,y,z], spacing,
    spacing_source (the DICOM element the in-plane spacing came from), origin, direction (9 numbers,
    row-major), units, colour ('RGB' or 'grey'), photometric, n_files, warnings.

    DICOM series are described from their headers; NIfTI/NRRD/MHA files from their header and first
    slices, whose values tell the modality and units (as :func:`viewer.core.io.load_volume` infers them
    from all voxels).
    """
    return report(path)["series"]


def report(path: str | PathLike) -> dict:
    """{'series': :func:`describe`'s list, 'damaged': [...], 'not_shown': [...]}, each problem entry a
    {'file', 'problem'}: the series that can be shown, the DICOM files left out as damaged, and series
    that are not images to show (a DICOM SEG, mixed orientations, ...) with what they are. When nothing
    can be shown, the first problem is raised (as its typed error)."""
    found = scan(path)
    series, problems = [], [(err, err.path) for err in found.damaged]
    for s in found:
        try:
            series.append(_series_entry(s))
        except RadviewError as err:
            problems.append((err, err.path or str(s.files[0])))
    if not series:
        raise problems[0][0]
    entries = [(isinstance(err, CorruptFileError), {"file": file, "problem": err.problem}) for err, file in problems]
    return {"series": series, "damaged": [e for bad, e in entries if bad],
            "not_shown": [e for bad, e in entries if not bad]}


def _series_entry(s: SeriesInfo) -> dict:
    if s.headers:
        vol = SeriesLoader(s).volume
        size = vol.size
    else:
        vol, size = read_image_sample(s.files[0])
    return {
        "series_uid": s.series_uid,
        "modality": vol.modality,
        "description": s.description,
        "size": [int(v) for v in size],
        "spacing": [float(v) for v in vol.spacing],
        "spacing_source": vol.meta.get("spacing_source", "header"),
        "origin": [float(v) for v in vol.origin],
        "direction": [float(v) + 0.0 for v in np.asarray(vol.direction).ravel()],  # no -0.0
        "units": vol.units,
        "colour": "RGB" if vol.is_rgb else "grey",
        "photometric": vol.meta.get("photometric", ""),
        "n_files": s.n_files,
        "warnings": list(vol.warnings),
    }
