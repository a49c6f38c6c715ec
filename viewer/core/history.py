"""Undo/redo as sparse deltas (bounding box + changed-voxel mask + old/new values), in a memory budget."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: Default memory budget of the undo history.
DEFAULT_BUDGET_BYTES = 1 << 30


def compact(values: np.ndarray) -> np.ndarray:
    """``values`` or, when they are all equal, a single element (assignment broadcasts it back)."""
    if values.size > 1 and (values == values.flat[0]).all():
        return values[:1].copy()
    return values


class Delta:
    """Voxels changed inside ``box`` of one segmentation: where (a bit-packed mask), from what, to what.

    Value arrays are stored compacted (one element when uniform, as a brush writes one label), so the
    memory is about 2 bytes per changed voxel plus 1 bit per voxel of the bounding box.
    """

    __slots__ = ("seg_uid", "box", "shape", "bits", "count", "old", "new", "old_prov", "new_prov")

    def __init__(self, seg_uid: str, box: tuple[slice, slice, slice], mask: np.ndarray, old: np.ndarray,
                 new: np.ndarray, old_prov: np.ndarray, new_prov: np.ndarray):
        self.seg_uid = seg_uid
        self.box = box
        self.shape = mask.shape
        self.bits = np.packbits(mask.ravel())
        self.count = int(old.size)
        self.old, self.new = compact(old), compact(new)
        self.old_prov, self.new_prov = compact(old_prov), compact(new_prov)

    @property
    def mask(self) -> np.ndarray:
        """The changed voxels of the box (bool, box shape)."""
        return np.unpackbits(self.bits, count=int(np.prod(self.shape))).view(bool).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes + self.old.nbytes + self.new.nbytes + self.old_prov.nbytes + self.new_prov.nbytes

    def apply(self, array: np.ndarray, provenance: np.ndarray, forward: bool) -> None:
        """Write the new (forward) or old values back."""
        mask = self.mask
        array[self.box][mask] = self.new if forward else self.old
        provenance[self.box][mask] = self.new_prov if forward else self.old_prov


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
