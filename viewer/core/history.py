"""Undo/redo as sparse deltas (bounding box + changed-voxel mask + old/new values), in a memory budget."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: Default memory budget of the undo history.
DEFAULT_BUDGET_BYTES = 1 << 30


_CODE_BITS = (1, 2, 4, 8, 16)


class Packed:
    """Values of a delta's changed voxels as their distinct values and, per voxel, the index of its value
    packed into 0 (all equal, as a brush writes one label), 1, 2, 4, 8 or 16 bits: an eraser over three
    labels costs 2 bits a voxel instead of a byte."""

    __slots__ = ("uniq", "counts", "size", "bits", "codes")

    def __init__(self, values: np.ndarray):
        values = np.asarray(values).ravel()
        self.size = values.size
        histogram = np.bincount(values, minlength=1) if values.size else np.zeros(1, np.intp)
        self.uniq = np.flatnonzero(histogram).astype(values.dtype)
        self.counts = histogram[self.uniq]
        k = len(self.uniq)
        self.bits = 0 if k <= 1 else next(b for b in _CODE_BITS if (1 << b) >= k)
        if self.bits == 0:
            self.codes = np.zeros(0, np.uint8)
            return
        lut = np.zeros(histogram.size, np.uint16 if self.bits == 16 else np.uint8)
        lut[self.uniq] = np.arange(k)
        codes = lut[values]
        if self.bits >= 8:
            self.codes = codes
            return
        shifts = self._shifts()
        per = len(shifts)
        codes = np.concatenate([codes, np.zeros(-self.size % per, np.uint8)]).reshape(-1, per)
        self.codes = np.bitwise_or.reduce(codes << shifts, axis=1).astype(np.uint8)

    def _shifts(self) -> np.ndarray:
        """Bit offset of each of the codes packed into one byte (``bits`` below 8)."""
        return np.arange(0, 8, self.bits, dtype=np.uint8)

    def unpack(self) -> np.ndarray:
        """The values (a single element when all are equal: assignment broadcasts it)."""
        if self.bits == 0:
            return self.uniq
        if self.bits >= 8:
            return self.uniq[self.codes]
        shifts = self._shifts()
        codes = ((self.codes[:, None] >> shifts) & np.uint8((1 << self.bits) - 1)).ravel()[: self.size]
        return self.uniq[codes]

    @property
    def nbytes(self) -> int:
        return self.uniq.nbytes + self.codes.nbytes


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """The smallest box (tuple of slices) holding every True voxel of ``mask``; None if there is none."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if not hit.size:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _tight(box: tuple[slice, ...], mask: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """``box`` and ``mask`` cropped to the bounding box of the mask's True voxels (which must exist)."""
    crop = bounding_box(mask)
    return tuple(slice(b.start + c.start, b.start + c.stop) for b, c in zip(box, crop, strict=True)), mask[crop]


class Delta:
    """Voxels changed inside ``box`` of one segmentation: where, from what, to what.

    ``box`` is cropped to the changed voxels; where they are is a bit-packed mask of it, or their flat
    indices when fewer bytes (scattered voxels); old/new labels and provenance are :class:`Packed`. A brush
    dab over background costs 1 bit per voxel of its box; over mixed labels a few bits more per voxel.
    """

    __slots__ = ("seg_uid", "box", "shape", "_bits", "_index", "count", "old", "new", "old_prov", "new_prov")

    def __init__(self, seg_uid: str, box: tuple[slice, slice, slice], mask: np.ndarray, old: np.ndarray,
                 new: np.ndarray, old_prov: np.ndarray, new_prov: np.ndarray):
        self.seg_uid = seg_uid
        self.box, mask = _tight(box, mask)
        self.shape = mask.shape
        self.count = int(old.size)
        index_dtype = np.uint16 if mask.size <= 1 << 16 else np.uint32
        if self.count * np.dtype(index_dtype).itemsize < mask.size / 8:
            self._bits, self._index = None, np.flatnonzero(mask).astype(index_dtype)
        else:
            self._bits, self._index = np.packbits(mask.ravel()), None
        self.old, self.new = Packed(old), Packed(new)
        self.old_prov, self.new_prov = Packed(old_prov), Packed(new_prov)

    @property
    def mask(self) -> np.ndarray:
        """The changed voxels of the box (bool, box shape)."""
        size = int(np.prod(self.shape))
        if self._bits is not None:
            return np.unpackbits(self._bits, count=size).view(bool).reshape(self.shape)
        mask = np.zeros(size, bool)
        mask[self._index] = True
        return mask.reshape(self.shape)

    @property
    def packed_mask(self) -> np.ndarray:
        """The changed voxels of the box bit-packed in C order (``np.packbits`` of :attr:`mask`)."""
        return self._bits if self._bits is not None else np.packbits(self.mask.ravel())

    @property
    def nbytes(self) -> int:
        where = self._bits if self._bits is not None else self._index
        return where.nbytes + self.old.nbytes + self.new.nbytes + self.old_prov.nbytes + self.new_prov.nbytes

    def values(self, forward: bool) -> tuple[np.ndarray, np.ndarray]:
        """(labels, provenance) the delta writes: the new ones (forward) or the old ones (undo)."""
        labels, prov = (self.new, self.new_prov) if forward else (self.old, self.old_prov)
        return labels.unpack(), prov.unpack()

    def apply(self, array: np.ndarray, provenance: np.ndarray, forward: bool) -> None:
        """Write the new (forward) or old values back."""
        mask = self.mask
        labels, prov = self.values(forward)
        array[self.box][mask] = labels
        provenance[self.box][mask] = prov


@dataclass
class Step:
    """One undoable user action (a stroke, a tool application): one or more deltas."""

    description: str
    author: dict
    deltas: list[Delta] = field(default_factory=list)
    time: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        return sum(d.nbytes for d in self.deltas) + 200

    @property
    def voxels(self) -> int:
        return sum(d.count for d in self.deltas)


class History:
    """Unlimited undo within ``budget_bytes``: the oldest steps are dropped first; a new step clears redo."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES):
        self.budget_bytes = int(budget_bytes)
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self.nbytes = 0

    def push(self, step: Step) -> None:
        if not step.deltas:
            return
        self._undo.append(step)
        self.nbytes += step.nbytes
        for s in self._redo:
            self.nbytes -= s.nbytes
        self._redo.clear()
        while self.nbytes > self.budget_bytes and len(self._undo) > 1:
            self.nbytes -= self._undo.popleft().nbytes

    def pop_undo(self) -> Step | None:
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return step

    def pop_redo(self) -> Step | None:
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return step

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    def steps(self) -> list[Step]:
        """Undoable steps, oldest first."""
        return list(self._undo)
