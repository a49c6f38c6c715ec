"""JPEG 2000 frames decoded by OpenJPEG through imagecodecs, which releases the GIL so threads scale.

pydicom's own JPEG 2000 plugin (pylibjpeg-openjpeg) holds the GIL while it decodes, so a series decodes
one slice at a time whatever the number of threads. This module reads a file's encapsulated frames
straight from the Pixel Data offset of an already parsed header (no second parse) and decodes them with
imagecodecs. Anything it does not handle exactly as pydicom would (colour, sign conventions it cannot
reproduce) returns None, and the caller falls back to pydicom.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000, JPEG2000Lossless

from viewer.core.io.dicom_headers import PIXEL_DATA_TAGS

try:  # an optional accelerator: without it pydicom decodes (slower, same values)
    import imagecodecs
except ImportError:  # pragma: no cover - imagecodecs is a dependency, kept optional for slim installs
    imagecodecs = None

#: Transfer syntaxes decoded here.
SYNTAXES = frozenset({JPEG2000, JPEG2000Lossless})


def available(syntax: str) -> bool:
    """True when frames of this transfer syntax can be decoded by :func:`decode_frames`."""
    return imagecodecs is not None and syntax in SYNTAXES


def _encapsulated_bytes(ds: pydicom.Dataset, path) -> bytes | None:
    """The encapsulated Pixel Data of ``ds``, read from its file offset when the header deferred it."""
    raw = ds._dict.get(PIXEL_DATA_TAGS[0])  # noqa: SLF001 - the deferred element keeps the file offset
    if raw is None:
        return None
    if isinstance(raw, pydicom.dataelem.RawDataElement) and raw.value is None:
        with open(path, "rb") as f:
            f.seek(raw.value_tell)
            return f.read()  # the item parser stops at the sequence delimiter
    return ds.PixelData


def decode_frames(ds: pydicom.Dataset, path) -> np.ndarray | None:
    """All frames of a JPEG 2000 file as stored values, shape (frames, rows, cols); None if not handled.

    The values equal pydicom's ``pixel_array`` (stored values, before any rescale): the dtype follows
    PixelRepresentation and BitsAllocated, and signed data stored in an unsigned codestream is
    sign-extended from BitsStored, as pydicom does.
    """
    if int(ds.get("SamplesPerPixel", 1)) != 1 or int(ds.get("BitsAllocated", 16)) not in (8, 16):
        return None
    data = _encapsulated_bytes(ds, path)
    if data is None:
        return None
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    bits_allocated = int(ds.get("BitsAllocated", 16))
    bits_stored = int(ds.get("BitsStored", bits_allocated))
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits_allocated // 8}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    out = np.empty((n_frames, rows, cols), dtype=dtype)
    frames = generate_frames(data, number_of_frames=n_frames)
    for k in range(n_frames):
        try:
            arr = imagecodecs.jpeg2k_decode(next(frames))
        except Exception:  # broken or unusual encapsulation: pydicom's reader decides, and says why
            return None
        if arr.shape != (rows, cols) or arr.dtype.itemsize != dtype.itemsize:
            return None
        if arr.dtype.kind == "i" and not signed:
            return None  # a signed codestream for unsigned data: pydicom's own rules apply
        frame = arr.view(dtype)
        if signed and arr.dtype.kind == "u" and bits_stored < bits_allocated:
            shift = bits_allocated - bits_stored
            frame = (frame << shift) >> shift
        out[k] = frame
    return out
