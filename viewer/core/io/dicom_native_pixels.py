"""Native (uncompressed, little-endian, greyscale) DICOM pixel data read by file offset into a given array.

The header parse leaves Pixel Data on disk and keeps its offset, so a frame's stored values are one
``preadv`` from the file straight into the caller's array: no intermediate bytes object, no copy.
Anything else (compressed, colour, big endian, pixel data already in memory) is not native here and
goes to the decoders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from viewer.core.errors import CorruptFileError, UnsupportedFormatError
from viewer.core.io.dicom_headers import PIXEL_DATA_TAGS, DicomHeader, describe_non_image, uint

NATIVE_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)


@dataclass(frozen=True)
class NativeFrame:
    """Where one frame's stored values are: file, byte offset, stored type and significant bits."""

    path: Path
    offset: int
    dtype: np.dtype
    bits_stored: int


def stored_dtype(h: DicomHeader) -> np.dtype:
    """The little-endian numpy type of the stored values (BitsAllocated 8/16/32, PixelRepresentation)."""
    ds = h.dataset
    bits = uint(ds, "BitsAllocated", 16)
    if bits not in (8, 16, 32):
        raise UnsupportedFormatError(
            f"BitsAllocated {bits} is not supported ({describe_non_image(h)}); "
            "DICOM SEG objects are opened as label maps", h.path)
    signed = uint(ds, "PixelRepresentation", 0) == 1
    return np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")


def native_frame(h: DicomHeader, frame: int, rows: int, cols: int) -> NativeFrame | None:
    """The location of ``frame`` of ``h``'s file, or None if its pixel data is not plain native data.

    Raises CorruptFileError when the declared pixel data is shorter than the frames need.
    """
    ds = h.dataset
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else ImplicitVRLittleEndian
    raw = ds._dict.get(PIXEL_DATA_TAGS[0])  # noqa: SLF001 - deferred element: keeps the file offset
    if (
        syntax not in NATIVE_SYNTAXES
        or not isinstance(raw, pydicom.dataelem.RawDataElement)
        or raw.value is not None
        or uint(ds, "SamplesPerPixel", 1) != 1
    ):
        return None
    dtype = stored_dtype(h)
    frame_bytes = rows * cols * dtype.itemsize
    if raw.length < frame_bytes * h.n_frames:
        raise CorruptFileError(
            f"pixel data is truncated ({raw.length} bytes, {frame_bytes * h.n_frames} expected)", h.path)
    bits = uint(ds, "BitsStored", dtype.itemsize * 8)
    return NativeFrame(h.path, raw.value_tell + frame * frame_bytes, dtype, bits)


def read_frame_into(frame: NativeFrame, out: np.ndarray) -> None:
    """Fill ``out`` (C-contiguous, ``frame.dtype``, one frame's size) with the frame's stored values.

    Signed values are sign-extended from BitsStored. Raises CorruptFileError when the file ends early.
    """
    fd = os.open(frame.path, os.O_RDONLY)
    try:
        n = os.preadv(fd, [memoryview(out).cast("B")], frame.offset)
    finally:
        os.close(fd)
    if n < out.nbytes:
        raise CorruptFileError("file ends inside the pixel data (truncated)", frame.path)
    width = frame.dtype.itemsize * 8
    if frame.dtype.kind == "i" and frame.bits_stored < width:
        shift = width - frame.bits_stored
        np.left_shift(out, shift, out=out)
        np.right_shift(out, shift, out=out)
