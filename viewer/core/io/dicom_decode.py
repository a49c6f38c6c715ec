"""Decode a compressed or colour DICOM file's frames: typed errors whatever a decoder raises, colour as RGB.

Native decoders run in a decoder process (:mod:`viewer.core.io.decoder_process`), so one that crashes fails
its file with CorruptFileError instead of ending radview. There, pylibjpeg-rle (Rust) panics on damaged RLE
data with ``pyo3_runtime.PanicException``, a BaseException that ``except Exception`` misses, so every decoder
call turns any BaseException but KeyboardInterrupt/SystemExit into CorruptFileError. RLE is decoded by
pydicom's own numpy decoder, which cannot panic or crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import RLELossless

from viewer.core.errors import CorruptFileError
from viewer.core.io import jpeg2000
from viewer.core.io.decoder_process import run_isolated
from viewer.core.io.dicom_headers import DicomHeader, read_header

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

    Decoded in a decoder process: JPEG 2000 greyscale by :mod:`viewer.core.io.jpeg2000`, the rest by
    pydicom's decoders. Raises CorruptFileError naming the file whatever goes wrong, a decoder crash included.
    """
    return run_isolated(h.path, _decode, h.path, rgb)


def _decode(path: Path, rgb: bool) -> np.ndarray:
    """:func:`decode_frames`' work, in the decoder process: the header is parsed again there (0.5 ms for a CT
    slice, less than pickling the parsed one)."""
    h = read_header(path)
    ds = h.dataset
    syntax = transfer_syntax(ds)
    with decoder_guard(path):
        frames = jpeg2000.decode_frames(ds, path) if jpeg2000.available(syntax) and not rgb else None
        if frames is None:
            arr = pixel_array(ds, decoding_plugin=SAFE_PLUGINS.get(syntax, ""))
            frames = arr[np.newaxis] if h.n_frames == 1 else arr
            if rgb and frames.ndim == 3:  # one sample per pixel: palette indices
                frames = apply_color_lut(frames, ds)
    return frames
