"""NIfTI, NRRD and MHA/MHD images via SimpleITK (NIfTI's RAS becomes LPS here, at the file boundary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewer.core.errors import CorruptFileError, UnsupportedFormatError
from viewer.core.io.nifti_length import check_nifti_length
from viewer.core.presets import looks_like_hu
from viewer.core.volume import SYNTHETIC_PREFIX, Volume

#: Format of each extension SimpleITK reads for us, longest first so '.nii.gz' wins over '.gz'.
IMAGE_FORMATS = {".nii.gz": "NIfTI", ".nii": "NIfTI", ".nrrd": "NRRD", ".nhdr": "NRRD", ".mha": "MetaImage",
                 ".mhd": "MetaImage"}
IMAGE_EXTENSIONS = tuple(IMAGE_FORMATS)
WRITE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
#: SimpleITK's key for a file's description: NIfTI ``descrip`` (80 bytes), a NRRD / MetaImage field.
FILE_NOTES = "ITK_FileNotes"
NIFTI_DESCRIP_BYTES = 79


def image_extension(path: Path) -> str | None:
    """The recognised image extension of ``path`` (lower case) or None."""
    name = path.name.lower()
    return next((ext for ext in IMAGE_EXTENSIONS if name.endswith(ext)), None)


#: Slices :func:`read_image_sample` reads from the start of a file (a .nii.gz can only be decompressed from
#: its start: reading its middle would decompress everything before it).
SAMPLE_SLICES = 8


def _open_reader(path: Path):
    """A SimpleITK ImageFileReader of ``path`` with its header read; raises if it is no scalar 2D/3D image
    (a 4D image with one time point counts as 3D)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    _execute(reader.ReadImageInformation, path)
    components, dim, size = reader.GetNumberOfComponents(), reader.GetDimension(), reader.GetSize()
    if components != 1:
        raise UnsupportedFormatError(f"{components}-component images are not supported", path)
    if dim not in (2, 3) and not (dim == 4 and size[3] == 1):
        raise UnsupportedFormatError(f"{dim}D image with size {size} is not a volume", path)
    return reader


def _execute(step, path: Path):
    """``step()``, a SimpleITK read, with its error as a CorruptFileError naming the file."""
    try:
        return step()
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CorruptFileError(f"cannot read image ({first[-1] if first else 'unknown error'})", path) from err


def _as_volume(img, path: Path) -> Volume:
    """An image read from ``path`` (2D, 3D or 4D with one time point) as a 3D Volume.

    These formats do not record the modality: an integer image whose darkest values sit at air
    (-1000) is taken as CT in HU (with a warning saying so), anything else is 'OT' / 'arbitrary'.
    """
    import SimpleITK as sitk

    if img.GetDimension() == 4:
        img = img[:, :, :, 0]
    elif img.GetDimension() == 2:
        img = sitk.JoinSeries(img)
    vol = Volume.from_sitk(img, description=path.name, meta={"files": [str(path)], "format": image_extension(path)})
    if vol.array.dtype == np.float64:
        vol.array = vol.array.astype(np.float32)
    notes = img.GetMetaData(FILE_NOTES).strip() if img.HasMetaDataKey(FILE_NOTES) else ""
    if notes.upper().startswith(SYNTHETIC_PREFIX):  # written by radview synthesize (or any tool saying so)
        vol.synthetic = notes
    if looks_like_hu(vol):
        vol.modality, vol.units = "CT", "HU"
        if not vol.synthetic:
            vol.warnings.append("modality not recorded in the file: values look like CT in HU (air at -1000)")
    return vol


def read_image_file(path: Path) -> Volume:
    """Read a NIfTI/NRRD/MHA file (modality and units inferred from the values, see :func:`_as_volume`)."""
    reader = _open_reader(path)
    if IMAGE_FORMATS.get(image_extension(Path(path))) == "NIfTI":
        check_nifti_length(path)  # ITK zero-fills a truncated NIfTI and calls it read
    return _as_volume(_execute(reader.Execute, path), path)


def read_image_sample(path: Path, n_slices: int = SAMPLE_SLICES) -> tuple[Volume, tuple[int, int, int]]:
    """The first ``n_slices`` z slices of a NIfTI/NRRD/MHA file as a Volume, and the file's size (x, y, z).

    Only the header and those slices are read. The Volume has the file's spacing, origin and direction,
    and the modality, units and warnings :func:`read_image_file` infers, from those slices' values.
    """
    reader = _open_reader(path)
    size = list(reader.GetSize())
    if len(size) > 2:
        reader.SetExtractIndex([0] * len(size))
        reader.SetExtractSize([size[0], size[1], min(n_slices, size[2]), *size[3:]])
    full = (int(size[0]), int(size[1]), int(size[2]) if len(size) > 2 else 1)
    return _as_volume(_execute(reader.Execute, path), path), full


def write_image_file(vol: Volume, path: Path, notes: str = "") -> Path:
    """Write ``vol`` with the same voxel values and physical geometry; format from the extension. A synthetic
    volume's statement (``Volume.synthetic``) goes into the header (NIfTI ``descrip``), and is read back;
    otherwise ``notes`` (what the image is, e.g. an explanation map's method) goes there."""
    import SimpleITK as sitk

    path = Path(path)
    ext = image_extension(path)
    if ext not in WRITE_EXTENSIONS:
        raise UnsupportedFormatError(f"unknown output format; use one of {', '.join(WRITE_EXTENSIONS)}", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = vol.to_sitk()
    notes = vol.synthetic or notes
    if notes:  # the flag lives in the file: NIfTI descrip, a NRRD / MetaImage header field
        img.SetMetaData(FILE_NOTES, notes[:NIFTI_DESCRIP_BYTES] if ext.startswith(".nii") else notes)
    try:
        sitk.WriteImage(img, str(path), useCompression=ext in (".nii.gz", ".nrrd", ".mha"))
    except RuntimeError as err:
        raise CorruptFileError(f"cannot write image ({str(err).strip().splitlines()[-1]})", path) from err
    return path
