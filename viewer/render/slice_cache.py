"""x-major copies of (z, y, x) voxel arrays, so views whose slice axis is x (sagittal) read slices contiguously.

A slice ``array[:, :, k]`` of a C-ordered (z, y, x) array takes one element per 64-byte cache line:
on a 512 x 512 x 300 CT that gather costs ~1.5-3 ms per array and slice change, against ~0.15 ms for
a contiguous (z, y) block of an (x, z, y) copy. The copy is built in a background thread (numpy
releases the GIL while copying) and used once it is complete and still current; until then, and
whenever the source changed since (``invalidate``), callers fall back to the strided slice. An edit
of a box (a brush dab) is copied into the current copy in place (``update``), not rebuilt whole.
"""

from __future__ import annotations

import threading
import time

import numpy as np

#: Arrays larger than this are not copied (the copy doubles their memory).
MAX_COPY_BYTES = 1 << 30
#: z slices copied per block: keeps reads and writes cache-friendly (~20% faster than one transpose).
_BLOCK = 32


def x_major_copy(array: np.ndarray) -> np.ndarray:
    """The (x, z, y) C-ordered copy of a (z, y, x) array: ``copy[k]`` equals ``array[:, :, k]``."""
    nz, ny, nx = array.shape
    out = np.empty((nx, nz, ny), array.dtype)
    for z0 in range(0, nz, _BLOCK):
        out[:, z0:z0 + _BLOCK] = array[z0:z0 + _BLOCK].transpose(2, 0, 1)
    return out


class XMajorCache:
    """A background-built x-major copy of one array at a time; ``slab(array, k)`` is its slice ``k`` as a
    contiguous (z, y, 1) array (index it like ``array[:, :, k:k + 1]``), or None while no current copy exists."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._source: np.ndarray | None = None
        self._copy: np.ndarray | None = None
        self._wanted: np.ndarray | None = None  # the array to copy next
        self._delay = 0.0
        self._building = False  # a thread is waiting or copying
        self._thread: threading.Thread | None = None

    def invalidate(self, array: np.ndarray | None, delay_s: float = 0.0) -> None:
        """``array``'s voxels changed (or a new array is shown; None: none): drop the copy and build a new
        one once ``delay_s`` seconds pass without another ``invalidate`` (edits in a row rebuild once, by
        one thread)."""
        wanted = array is not None and array.ndim == 3 and array.nbytes <= MAX_COPY_BYTES
        with self._lock:
            self._generation += 1
            self._copy = self._source = None
            self._wanted = array if wanted else None
            self._delay = float(delay_s)
            if wanted and not self._building:
                self._building = True
                self._thread = threading.Thread(target=self._build, name="x-major-copy", daemon=True)
                self._thread.start()

    def update(self, array: np.ndarray, box: tuple[slice, slice, slice], delay_s: float = 0.0) -> None:
        """``array``'s voxels changed inside ``box`` (z, y, x slices): copy that block into the current copy
        of ``array``; while that copy is still being built, build it anew after ``delay_s`` (see
        ``invalidate``); a copy of another array, or none wanted, is left alone."""
        with self._lock:
            if self._copy is not None and self._source is array:
                self._copy[box[2], box[0], box[1]] = array[box].transpose(2, 0, 1)
                return
            rebuild = self._wanted is array
        if rebuild:
            self.invalidate(array, delay_s)

    def _build(self) -> None:
        """Wait until the source stops changing, copy it, keep the copy if nothing changed meanwhile."""
        while True:
            with self._lock:
                generation, delay = self._generation, self._delay
            if delay > 0:
                time.sleep(delay)
            with self._lock:
                if generation != self._generation:  # changed while waiting: wait again
                    continue
                array = self._wanted
                if array is None:
                    self._building = False
                    return
            copy = x_major_copy(array)
            with self._lock:
                if generation == self._generation:  # no change while copying
                    self._copy, self._source = copy, array
                    self._building = False
                    return

    def wait(self) -> None:
        """Block until the copy being built (if any) is done."""
        thread = self._thread
        if thread is not None:
            thread.join()

    @property
    def ready(self) -> bool:
        """Whether a copy is built (for the array last passed to ``invalidate``)."""
        return self._copy is not None

    def slab(self, array: np.ndarray, k: int) -> np.ndarray | None:
        """``array[:, :, k:k + 1]`` read from the copy (contiguous), or None if there is no current copy."""
        with self._lock:
            copy, source = self._copy, self._source
        if copy is None or source is not array:
            return None
        return copy[k][:, :, np.newaxis]
