"""A process pool for compressed slices whose decoder holds the GIL (OpenJPEG's JPEG 2000).

pylibjpeg-openjpeg decodes with the GIL held, so decoder threads run one at a time; worker
processes do scale with the cores. The pool starts on first use (forkserver, so it is safe in a
threaded GUI) and lives for the rest of the process, so later loads pay no start-up cost.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pydicom
from pydicom.uid import HTJ2K, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, JPEG2000Lossless

log = logging.getLogger(__name__)

#: Transfer syntaxes whose installed decoder does not release the GIL (measured: 2 threads, no speed-up).
GIL_BOUND_SYNTAXES = frozenset({JPEG2000, JPEG2000Lossless, HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL})
#: Below this many files the pool's start-up and transfer cost is not repaid.
MIN_FILES = 8

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def worth_it(transfer_syntax: str, n_files: int) -> bool:
    """True when decoding ``n_files`` of this syntax in worker processes beats threads."""
    return transfer_syntax in GIL_BOUND_SYNTAXES and n_files >= MIN_FILES and (os.cpu_count() or 1) >= 2


def decode_pool() -> ProcessPoolExecutor:
    """The shared decoder process pool (created on first call)."""
    global _pool
    with _lock:
        if _pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["numpy", "pydicom", "pydicom.pixels", "openjpeg", __name__])
            workers = max(2, min(os.cpu_count() or 2, 8))
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            atexit.register(shutdown_decode_pool)
            log.debug("started %d decoder processes", workers)
        return _pool


def shutdown_decode_pool() -> None:
    """Stop the decoder processes (at exit; safe to call when the pool never started)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


def decode_file(path: str) -> np.ndarray:
    """All frames of one DICOM file as stored values, shape (frames, rows, cols) (runs in a worker)."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    return arr if int(ds.get("NumberOfFrames", 1) or 1) > 1 else arr[np.newaxis]
