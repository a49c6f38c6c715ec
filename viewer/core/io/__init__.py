"""Readers and writers: DICOM series, NIfTI, NRRD, MHA, DICOM SEG; anonymization.

The public entry points are :func:`load_volume`, :func:`open_series`, :func:`scan` and
:func:`save_volume`. Everything returns or takes a :class:`viewer.core.volume.Volume`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from viewer.core.errors import CorruptFileError, EmptyInputError, MixedSeriesError, UnsupportedFormatError
from viewer.core.io.image_files import image_extension, read_image_file, write_image_file
from viewer.core.io.series_info import SeriesInfo
from viewer.core.progress import CancelToken, ProgressCallback
from viewer.core.volume import Volume

if TYPE_CHECKING:
    from viewer.core.io.dicom_series import SeriesLoader

# The DICOM modules (pydicom and its decoders) are imported where a DICOM file is read: a NIfTI/NRRD/MHA
# input never pays for them (`radview register a.nii.gz b.nii.gz`, tests/io/test_lazy_imports.py).

__all__ = ["load_volume", "open_series", "save_volume", "scan", "ScanResult", "SeriesInfo"]

log = logging.getLogger(__name__)

PathArg = str | PathLike | Sequence[str | PathLike]


def _paths(path: PathArg) -> tuple[list[Path], Path]:
    """(files, display path) for a file, a folder (recursive) or a list of files."""
    if isinstance(path, (str, PathLike)):
        p = Path(path)
        if not p.exists():
            raise EmptyInputError("no such file or folder", p)
        if p.is_file():
            files = [p]
        else:
            from viewer.core.io.dicom_headers import iter_files

            files = iter_files(p)
        if not files:
            raise EmptyInputError("folder holds no files", p)
        return files, p
    files = [Path(p) for p in path]
    if not files:
        raise EmptyInputError("no files given")
    for f in files:
        if not f.is_file():
            raise EmptyInputError("no such file", f)
    return files, files[0].parent


def _image_file_info(f: Path) -> SeriesInfo:
    """A NIfTI/NRRD/MHA file as a series: its slice count from the header (the modality is only known
    once the values are read, see :func:`viewer.core.io.image_files.read_image_file`)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(f))
    try:
        reader.ReadImageInformation()
        size = reader.GetSize()
        slices = int(size[2]) if len(size) > 2 else 1
    except RuntimeError:  # a damaged file: load_volume names the problem
        slices = 0
    return SeriesInfo(series_uid=str(f.resolve()), modality="OT", description=f.name, n_files=1, files=[f],
                      file_slices=slices)


class ScanResult(list):
    """The series found by :func:`scan` (a list of SeriesInfo), with ``damaged``: the DICOM files left out
    as unreadable, each a CorruptFileError naming the file and the problem."""

    def __init__(self, series: list[SeriesInfo], damaged: list[CorruptFileError]):
        super().__init__(series)
        self.damaged = list(damaged)


def left_out(damaged: list[CorruptFileError]) -> list[str]:
    """One warning line per damaged file: '<file>: <problem> (file left out)'."""
    return [f"{err} (file left out)" for err in damaged]


def _scan_dicom(files: list[Path], damaged: list[CorruptFileError]):
    """scan_dicom with radview's header rules; damaged files go to ``damaged`` (a lone file raises)."""
    dicom_files = [f for f in files if not image_extension(f)]
    if not dicom_files:
        return [], []
    from viewer.core.io.dicom_headers import scan_dicom
    from viewer.core.io.dicom_validation import check_image_header

    return scan_dicom(dicom_files, check=check_image_header, damaged=damaged)


def _nothing_readable(damaged: list[CorruptFileError], where: Path) -> None:
    """Raise for a path whose every DICOM file is damaged: the one error, or a count naming the first."""
    if len(damaged) == 1:
        raise damaged[0]
    if damaged:
        raise CorruptFileError(f"no readable image; {len(damaged)} damaged DICOM files, the first: {damaged[0]}",
                               where)


def scan(path: PathArg) -> ScanResult:
    """The series under ``path``: one entry per DICOM series and per NIfTI/NRRD/MHA file.

    Only headers are read. Damaged DICOM files in a folder are left out and listed in the result's
    ``damaged``. Raises EmptyInputError / NotAnImageError / CorruptFileError when nothing can be shown.
    """
    return _scan(*_paths(path))


def _scan(files: list[Path], where: Path) -> ScanResult:
    """:func:`scan` of the files a path resolved to (``where``: the path named in errors)."""
    image_files = [f for f in files if image_extension(f)]
    damaged: list[CorruptFileError] = []
    series, others = _scan_dicom(files, damaged)
    found = series + [_image_file_info(f) for f in image_files]
    if not found:
        from viewer.core.io.dicom_headers import require_images

        _nothing_readable(damaged, where)
        require_images(series, others, where)
        if len(files) == 1:
            raise UnsupportedFormatError("not a DICOM, NIfTI, NRRD or MHA image", files[0])
        raise EmptyInputError("no DICOM, NIfTI, NRRD or MHA images found", where)
    for line in left_out(damaged):
        log.warning("%s", line)
    return ScanResult(found, damaged)


def _choose(found: list[SeriesInfo], series_uid: str | None, where: Path) -> SeriesInfo:
    if series_uid is not None:
        match = [s for s in found if s.series_uid == series_uid]
        if not match:
            raise EmptyInputError(f"series {series_uid} not found", where)
        return match[0]
    if len(found) > 1:
        listing = "; ".join(f"{s.series_uid} {s.modality} '{s.description}' ({s.n_files} files)" for s in found)
        raise MixedSeriesError(f"{len(found)} series found, choose one: {listing}", where, series=found)
    return found[0]


def open_series(path: PathArg, series_uid: str | None = None) -> SeriesLoader:
    """A loader for the DICOM series at ``path`` whose ``.volume`` geometry is known before loading."""
    from viewer.core.io.dicom_headers import require_images
    from viewer.core.io.dicom_series import SeriesLoader

    files, where = _paths(path)
    damaged: list[CorruptFileError] = []
    series, others = _scan_dicom(files, damaged)
    if not series:
        _nothing_readable(damaged, where)
        require_images(series, others, where)
        raise EmptyInputError("no DICOM image series found", where)
    loader = SeriesLoader(_choose(series, series_uid, where))
    loader.volume.warnings.extend(left_out(damaged))
    return loader


def load_volume(
    path: PathArg,
    *,
    series_uid: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Volume:
    """Read one image volume from a DICOM folder/file list/file or a NIfTI/NRRD/MHA file.

    Returns a Volume with ``array`` (z, y, x), ``spacing``/``origin`` (x, y, z mm, LPS),
    ``direction`` (3x3, as SimpleITK), ``modality``, ``units`` (CT in HU, PET in SUVbw when the
    tags allow, else Bq/mL with a warning). A path holding several series raises MixedSeriesError
    listing them unless ``series_uid`` picks one.
    """
    files, where = _paths(path)  # a folder is walked once
    found = _scan(files, where)
    chosen = _choose(found, series_uid, where)
    if not chosen.headers:  # a NIfTI/NRRD/MHA file
        return read_image_file(chosen.files[0])
    from viewer.core.io.dicom_series import SeriesLoader

    vol = SeriesLoader(chosen).load(progress=progress, cancel=cancel)
    for line in vol.warnings:  # geometry and units (missing slices, tilt, no SUV): said, as damaged files are
        log.warning("%s: %s", where, line)
    vol.warnings.extend(left_out(found.damaged))
    return vol


def save_volume(vol: Volume, path: str | PathLike) -> Path:
    """Write ``vol`` as .nii/.nii.gz/.nrrd/.mha/.mhd (by extension) with exact voxels and geometry."""
    return write_image_file(vol, Path(path))
