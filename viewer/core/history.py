"""Undo/redo as sparse deltas (bounding box + changed-voxel mask + old/new values), in a memory budget."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: Default memory budget of the undo history.
DEFAULT_BUDGET_BYTES = 1 << 30


@dataclass
class Delta:
    """Voxels changed inside ``box`` of one segmentation: where (mask), from what (old), to what (new)."""

    seg_uid: str
    box: tuple[slice, slice, slice]
    mask: np.ndarray  # bool, shape of the box
    old: np.ndarray  # values at mask, before
    new: np.ndarray  # values at mask, after
    old_prov: np.ndarray
    new_prov: np.ndarray

    @property
    def nbytes(self) -> int:
        # the mask is counted packed (1 bit per voxel of the box), as it could be stored
        return (self.mask.size + 7) // 8 + self.old.nbytes + self.new.nbytes + self.old_prov.nbytes + \
            self.new_prov.nbytes

    def apply(self, array: np.ndarray, provenance: np.ndarray, forward: bool) -> None:
        """Write the new (forward) or old values back."""
        region = array[self.box]
        region[self.mask] = self.new if forward else self.old
        provenance[self.box][self.mask] = self.new_prov if forward else self.old_prov


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
        return sum(int(d.new.size) for d in self.deltas)


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
