"""NIfTI, NRRD and MHA/MHD images via SimpleITK (NIfTI's RAS becomes LPS here, at the file boundary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewer.core.errors import CorruptFileError, UnsupportedFormatError
from viewer.core.presets import looks_like_hu
from viewer.core.volume import Volume

#: Extensions SimpleITK reads and writes for us, longest first so '.nii.gz' wins over '.gz'.
IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def image_extension(path: Path) -> str | None:
    """The recognised image extension of ``path`` (lower case) or None."""
    name = path.name.lower()
    return next((ext for ext in IMAGE_EXTENSIONS if name.endswith(ext)), None)


def read_image_file(path: Path) -> Volume:
    """Read a NIfTI/NRRD/MHA file.

    These formats do not record the modality: an integer image whose darkest values sit at air
    (-1000) is taken as CT in HU (with a warning saying so), anything else is 'OT' / 'arbitrary'.
    """
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CorruptFileError(f"cannot read image ({first[-1] if first else 'unknown error'})", path) from err
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise UnsupportedFormatError(f"{img.GetNumberOfComponentsPerPixel()}-component images are not supported", path)
    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    elif img.GetDimension() == 2:
        img = sitk.JoinSeries(img)
    if img.GetDimension() != 3:
        raise UnsupportedFormatError(f"{img.GetDimension()}D image with size {img.GetSize()} is not a volume", path)
    vol = Volume.from_sitk(img, description=path.name, meta={"files": [str(path)], "format": image_extension(path)})
    if vol.array.dtype == np.float64:
        vol.array = vol.array.astype(np.float32)
    if looks_like_hu(vol):
        vol.modality, vol.units = "CT", "HU"
        vol.warnings.append("modality not recorded in the file: values look like CT in HU (air at -1000)")
    return vol


def write_image_file(vol: Volume, path: Path) -> Path:
    """Write ``vol`` with the same voxel values and physical geometry; format from the extension."""
    import SimpleITK as sitk

    path = Path(path)
    ext = image_extension(path)
    if ext not in WRITE_EXTENSIONS:
        raise UnsupportedFormatError(f"unknown output format; use one of {', '.join(WRITE_EXTENSIONS)}", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sitk.WriteImage(vol.to_sitk(), str(path), useCompression=ext in (".nii.gz", ".nrrd", ".mha"))
    except RuntimeError as err:
        raise CorruptFileError(f"cannot write image ({str(err).strip().splitlines()[-1]})", path) from err
    return path
