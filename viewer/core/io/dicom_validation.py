"""Header rules a DICOM image must pass before it is placed and decoded: typed errors naming file and element.

A damaged file (garbled numbers, flipped bytes in Rows/Columns/BitsAllocated, pixel data too short for
what the header declares) is refused here, at scan time, so a folder scan can list it as damaged and
still load the good series beside it. Objects that hold pixels but are not image series (DICOM SEG,
RT objects) get a message saying how to open them instead.
"""

from __future__ import annotations

import math

import pydicom
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from viewer.core.errors import DamagedHeaderError, NotAVolumeObjectError, RadviewError, UnsupportedFormatError
from viewer.core.io.dicom_headers import PIXEL_DATA_TAGS, DicomHeader, describe_non_image, numbers, text, uint

#: Photometric interpretations radview shows: grey (MONOCHROME1 inverted), colour converted to RGB.
GREY = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420", "PALETTE COLOR")
#: Retired photometric interpretations: valid DICOM, not shown by radview (no decoder converts them).
RETIRED = ("ARGB", "CMYK", "HSV", "YBR_PARTIAL_422")
_UNCOMPRESSED = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian)

#: SOP classes that carry pixel data but are not an image to stack: what they are and how to open them.
OBJECTS_WITH_PIXELS = {
    "1.2.840.10008.5.1.4.1.1.66.4": (
        "a DICOM SEG (segmentation) is a label map, not an image: open its image series, then File > Open "
        "segmentation... and choose this file"
    ),
    "1.2.840.10008.5.1.4.1.1.66.7": (
        "a DICOM Label Map Segmentation is a label map, not an image: open its image series, then File > Open "
        "segmentation... and choose this file"
    ),
    "1.2.840.10008.5.1.4.1.1.481.1": "an RT Image (a treatment-beam portal image) is not supported",
}


def _finite(values: list[float] | None, keyword: str, count: int, h: DicomHeader) -> None:
    if values is None:
        return
    if len(values) != count:
        raise DamagedHeaderError(f"{keyword} must have {count} values, has {len(values)}", h.path)
    if not all(math.isfinite(v) for v in values):
        raise DamagedHeaderError(f"{keyword} holds a value that is not a finite number ({values})", h.path)


def _spacing(values: list[float] | None, keyword: str, h: DicomHeader) -> None:
    """Two finite values, none negative (0 is written by some devices for "not known")."""
    _finite(values, keyword, 2, h)
    if values is not None and min(values) < 0:
        raise DamagedHeaderError(f"{keyword} is negative ({values})", h.path)


def check_geometry_values(h: DicomHeader) -> None:
    """Raise DamagedHeaderError when a position, orientation, pixel spacing or rescale value is unreadable.

    Absent elements pass (the geometry then falls back to documented defaults with a warning).
    """
    ds = h.dataset
    _finite(numbers(ds, "ImagePositionPatient"), "ImagePositionPatient", 3, h)
    iop = numbers(ds, "ImageOrientationPatient")
    _finite(iop, "ImageOrientationPatient", 6, h)
    if iop is not None and (math.hypot(*iop[:3]) < 0.5 or math.hypot(*iop[3:]) < 0.5):
        raise DamagedHeaderError(f"ImageOrientationPatient is not two unit vectors ({iop})", h.path)
    _spacing(numbers(ds, "PixelSpacing"), "PixelSpacing", h)
    _spacing(numbers(ds, "ImagerPixelSpacing"), "ImagerPixelSpacing", h)
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        values = numbers(ds, keyword)
        if values is not None:
            _finite(values[:1], keyword, 1, h)


def photometric(ds: pydicom.Dataset) -> str:
    """PhotometricInterpretation, upper case ('MONOCHROME2' when absent)."""
    return (text(ds, "PhotometricInterpretation") or "MONOCHROME2").upper()


def _expected_pixel_bytes(h: DicomHeader, rows: int, cols: int, samples: int, bits: int) -> int:
    """Bytes of uncompressed pixel data the header declares (YBR_FULL_422 stores 2 samples per pixel)."""
    frames = h.n_frames
    if bits == 1:
        return (rows * cols * frames + 7) // 8
    per_pixel = 2 if photometric(h.dataset) == "YBR_FULL_422" else samples
    return rows * cols * per_pixel * (bits // 8) * frames


def check_pixel_description(h: DicomHeader) -> None:
    """Raise DamagedHeaderError when the image pixel module cannot describe decodable pixels.

    Rows/Columns/BitsAllocated/BitsStored/SamplesPerPixel/NumberOfFrames/PhotometricInterpretation must be
    valid and consistent; uncompressed pixel data must hold at least the bytes they declare (a flipped
    byte in Rows or BitsAllocated shows here, before anything is allocated).
    """
    ds = h.dataset
    kind = photometric(ds)
    if kind in RETIRED:  # valid, but refused at load as unsupported (see check_volume_object)
        return
    rows, cols = uint(ds, "Rows", 0), uint(ds, "Columns", 0)
    if rows == 0 or cols == 0:
        raise DamagedHeaderError(f"image size Rows x Columns is {rows} x {cols}", h.path)
    bits = uint(ds, "BitsAllocated", 0)
    if bits not in (1, 8, 16, 32, 64):
        raise DamagedHeaderError(f"BitsAllocated is {bits} (1, 8, 16, 32 or 64 expected)", h.path)
    stored = uint(ds, "BitsStored", bits)
    if not 0 < stored <= bits:
        raise DamagedHeaderError(f"BitsStored is {stored} with BitsAllocated {bits}", h.path)
    samples = uint(ds, "SamplesPerPixel", 1)
    if samples not in (1, 3):
        raise DamagedHeaderError(f"SamplesPerPixel is {samples} (1 or 3 expected)", h.path)
    frames = numbers(ds, "NumberOfFrames")
    if frames is not None and (len(frames) != 1 or frames[0] < 0 or frames[0] != int(frames[0])):
        raise DamagedHeaderError(f"NumberOfFrames is not a count ({frames})", h.path)
    if kind not in GREY + COLOUR:
        raise DamagedHeaderError(f"PhotometricInterpretation '{kind}' is not a known value", h.path)
    if (samples == 3) != (kind in COLOUR and kind != "PALETTE COLOR"):
        raise DamagedHeaderError(f"PhotometricInterpretation {kind} with SamplesPerPixel {samples}", h.path)
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else ImplicitVRLittleEndian
    raw = ds._dict.get(PIXEL_DATA_TAGS[0])  # noqa: SLF001 - the deferred element keeps its declared length
    if syntax in _UNCOMPRESSED and raw is not None:  # (deflated: lengths are those of the inflated stream)
        length = raw.length if isinstance(raw, pydicom.dataelem.RawDataElement) else len(raw.value or b"")
        expected = _expected_pixel_bytes(h, rows, cols, samples, bits)
        if length != 0xFFFFFFFF and length < expected:
            raise DamagedHeaderError(
                f"pixel data holds {length} bytes; {h.n_frames} frame(s) of {rows} x {cols} x {samples} "
                f"samples of {bits} bits need {expected}", h.path)


def check_volume_object(h: DicomHeader) -> None:
    """Raise NotAVolumeObjectError for an object with pixels that is not an image (SEG, RT Image, ...),
    UnsupportedFormatError for a retired photometric interpretation (ARGB, CMYK, HSV)."""
    why = OBJECTS_WITH_PIXELS.get(h.sop_class)
    if why is not None:
        raise NotAVolumeObjectError(f"{describe_non_image(h)}: {why}", h.path)
    kind = photometric(h.dataset)
    if kind in RETIRED:
        raise UnsupportedFormatError(f"PhotometricInterpretation {kind} (retired from DICOM) is not supported", h.path)


def check_image_header(h: DicomHeader) -> None:
    """All scan-time rules for a file with pixel data (see the module docstring).

    Whatever pydicom raises while reading a damaged header becomes DamagedHeaderError naming the file.
    """
    try:
        check_pixel_description(h)
        check_geometry_values(h)
    except RadviewError:
        raise
    except Exception as err:  # pydicom raises many types on garbled elements
        raise DamagedHeaderError(f"header cannot be read ({type(err).__name__}: {err})", h.path) from err
