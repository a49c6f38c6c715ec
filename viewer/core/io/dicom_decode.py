"""Decode a compressed or colour DICOM file's frames: typed errors whatever a decoder raises, colour as RGB.

Native decoders are isolated from the process as far as Python allows: pylibjpeg-rle (Rust) panics on
damaged RLE data with ``pyo3_runtime.PanicException``, a BaseException that ``except Exception`` misses,
so every decoder call here turns any BaseException but KeyboardInterrupt/SystemExit into
CorruptFileError. RLE is decoded by pydicom's own numpy decoder, which cannot panic or crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import RLELossless

from viewer.core.errors import CorruptFileError
from viewer.core.io import jpeg2000
from viewer.core.io.dicom_headers import DicomHeader

#: Decoder plugin per transfer syntax where pydicom's default choice is not safe on damaged data.
SAFE_PLUGINS = {RLELossless: "pydicom"}


@contextmanager
def decoder_guard(path) -> Iterator[None]:
    """Turn anything a decoder raises (also Rust panics, which are BaseExceptions) into CorruptFileError."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except CorruptFileError:
        raise
    except BaseException as err:  # noqa: BLE001 - a native decoder's panic must not end the process
        raise CorruptFileError(f"pixel data cannot be decoded ({type(err).__name__}: {err})", path) from err


def transfer_syntax(ds: pydicom.Dataset) -> str:
    """The dataset's transfer syntax UID ('' when its file meta does not say)."""
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""


def decode_frames(h: DicomHeader, *, rgb: bool = False) -> np.ndarray:
    """All frames of ``h``'s file: stored values (frames, rows, cols), or with ``rgb`` colour samples
    (frames, rows, cols, 3): RGB and YBR as RGB, PALETTE COLOR through its lookup tables.

    JPEG 2000 greyscale goes through :mod:`viewer.core.io.jpeg2000` (decoder threads run in parallel),
    the rest through pydicom's decoders. Raises CorruptFileError naming the file whatever goes wrong.
    """
    ds = h.dataset
    syntax = transfer_syntax(ds)
    with decoder_guard(h.path):
        frames = jpeg2000.decode_frames(ds, h.path) if jpeg2000.available(syntax) and not rgb else None
        if frames is None:
            arr = pixel_array(ds, decoding_plugin=SAFE_PLUGINS.get(syntax, ""))
            frames = arr[np.newaxis] if h.n_frames == 1 else arr
            if rgb and frames.ndim == 3:  # one sample per pixel: palette indices
                frames = apply_color_lut(frames, ds)
    return frames
