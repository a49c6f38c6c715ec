"""Readers and writers: DICOM series, NIfTI, NRRD, MHA, DICOM SEG; anonymization.

The public entry points are :func:`load_volume`, :func:`open_series`, :func:`scan` and
:func:`save_volume`. Everything returns or takes a :class:`viewer.core.volume.Volume`.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from viewer.core.errors import EmptyInputError, MixedSeriesError, UnsupportedFormatError
from viewer.core.io.dicom_headers import SeriesInfo, iter_files, require_images, scan_dicom
from viewer.core.io.dicom_series import SeriesLoader
from viewer.core.io.image_files import image_extension, read_image_file, write_image_file
from viewer.core.progress import CancelToken, ProgressCallback
from viewer.core.volume import Volume

__all__ = ["load_volume", "open_series", "save_volume", "scan", "SeriesInfo", "SeriesLoader"]

PathArg = str | PathLike | Sequence[str | PathLike]


def _paths(path: PathArg) -> tuple[list[Path], Path]:
    """(files, display path) for a file, a folder (recursive) or a list of files."""
    if isinstance(path, (str, PathLike)):
        p = Path(path)
        if not p.exists():
            raise EmptyInputError("no such file or folder", p)
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


def scan(path: PathArg) -> list[SeriesInfo]:
    """The series under ``path``: one entry per DICOM series and per NIfTI/NRRD/MHA file.

    Only headers are read. Raises EmptyInputError / NotAnImageError when nothing can be shown.
    """
    files, where = _paths(path)
    image_files = [f for f in files if image_extension(f)]
    series, others = scan_dicom([f for f in files if not image_extension(f)])
    found = series + [_image_file_info(f) for f in image_files]
    if not found:
        require_images(series, others, where)
        if len(files) == 1:
            raise UnsupportedFormatError("not a DICOM, NIfTI, NRRD or MHA image", files[0])
        raise EmptyInputError("no DICOM, NIfTI, NRRD or MHA images found", where)
    return found


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
    files, where = _paths(path)
    series, others = scan_dicom([f for f in files if not image_extension(f)])
    if not series:
        require_images(series, others, where)
        raise EmptyInputError("no DICOM image series found", where)
    return SeriesLoader(_choose(series, series_uid, where))


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
    found = scan(path)
    where = _paths(path)[1]
    chosen = _choose(found, series_uid, where)
    if not chosen.headers:  # a NIfTI/NRRD/MHA file
        return read_image_file(chosen.files[0])
    return SeriesLoader(chosen).load(progress=progress, cancel=cancel)


def save_volume(vol: Volume, path: str | PathLike) -> Path:
    """Write ``vol`` as .nii/.nii.gz/.nrrd/.mha/.mhd (by extension) with exact voxels and geometry."""
    return write_image_file(vol, Path(path))
