"""NIfTI, NRRD and MHA/MHD images via SimpleITK (NIfTI's RAS becomes LPS here, at the file boundary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewer.core.errors import CorruptFileError, UnsupportedFormatError
from viewer.core.volume import Volume

#: Extensions SimpleITK reads and writes for us, longest first so '.nii.gz' wins over '.gz'.
IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def image_extension(path: Path) -> str | None:
    """The recognised image extension of ``path`` (lower case) or None."""
    name = path.name.lower()
    return next((ext for ext in IMAGE_EXTENSIONS if name.endswith(ext)), None)


def read_image_file(path: Path) -> Volume:
    """Read a NIfTI/NRRD/MHA file. Modality is 'OT' and units 'arbitrary' (files don't say)."""
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
    return vol


def read_image_info(path: Path) -> Volume:
    """Geometry of an image file from its header only; the returned array is an empty placeholder."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise CorruptFileError("cannot read image header", path) from err
    size = list(reader.GetSize()) + [1] * (3 - reader.GetDimension())
    if reader.GetDimension() > 3 and any(n != 1 for n in reader.GetSize()[3:]):
        raise UnsupportedFormatError(f"{reader.GetDimension()}D image is not a volume", path)
    spacing = list(reader.GetSpacing())[:3] + [1.0] * (3 - reader.GetDimension())
    origin = list(reader.GetOrigin())[:3] + [0.0] * (3 - reader.GetDimension())
    n = reader.GetDimension()
    d = np.array(reader.GetDirection()).reshape(n, n)[:3, :3] if n >= 3 else np.eye(3)
    placeholder = np.broadcast_to(np.zeros((), np.uint8), size[:3][::-1])
    return Volume(placeholder, spacing, origin, d, description=path.name, meta={"files": [str(path)]})


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
