"""How a volume's index axes map onto the three standard views (axial, coronal, sagittal).

Views show patient anatomy in the radiological convention whatever the voxel order on disk:
axial: patient right on screen left, anterior up; coronal: patient right on screen left, superior
up; sagittal: anterior on screen left, superior up. Each view shows one index axis as its slice
axis (the index axis closest to the view's normal) and flips the in-plane axes as needed; oblique
acquisitions are shown along their nearest index planes (no resampling), like most viewers' default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viewer.core.volume import Volume

ORIENTATIONS = ("axial", "coronal", "sagittal")

#: For each view: (world axis shown left->right on screen, its sign; world axis shown bottom->top, sign).
#: World axes are LPS: 0 = x (to patient left), 1 = y (to posterior), 2 = z (to superior).
_SCREEN_AXES = {
    "axial": ((0, +1), (1, -1)),  # right = patient left, up = anterior
    "coronal": ((0, +1), (2, +1)),  # right = patient left, up = superior
    "sagittal": ((1, +1), (2, +1)),  # right = posterior, up = superior
}
_NORMAL = {"axial": 2, "coronal": 1, "sagittal": 0}
_LETTERS = {(0, +1): "L", (0, -1): "R", (1, +1): "P", (1, -1): "A", (2, +1): "S", (2, -1): "I"}


@dataclass(frozen=True)
class ViewAxes:
    """Index axes (0 = x/i, 1 = y/j, 2 = z/k) of one view and the flips that put them on screen."""

    orientation: str
    slice_axis: int
    right_axis: int
    right_flip: bool
    up_axis: int
    up_flip: bool

    def extract(self, array: np.ndarray, k: int) -> np.ndarray:
        """The 2D slice ``k`` of a (z, y, x) array as (rows = screen up, cols = screen right), row 0 at bottom."""
        a = np.take(array, k, axis=2 - self.slice_axis)  # remaining axes in (z, y, x) order minus one
        remaining = [ax for ax in (2, 1, 0) if ax != self.slice_axis]  # index axes of a's dims
        a = a.transpose(remaining.index(self.up_axis), remaining.index(self.right_axis))
        if self.up_flip:
            a = a[::-1]
        if self.right_flip:
            a = a[:, ::-1]
        return a

    def plane_to_index(self, col: float, row: float, k: float, size: tuple[int, int, int]) -> np.ndarray:
        """Continuous (col, row) of the extracted slice plus slice ``k`` -> continuous index (x, y, z)."""
        ijk = np.zeros(3)
        ijk[self.slice_axis] = k
        ijk[self.right_axis] = (size[self.right_axis] - 1 - col) if self.right_flip else col
        ijk[self.up_axis] = (size[self.up_axis] - 1 - row) if self.up_flip else row
        return ijk

    def index_to_plane(self, ijk, size: tuple[int, int, int]) -> tuple[float, float, float]:
        """Continuous index (x, y, z) -> (col, row, k) in the extracted slice."""
        ijk = np.asarray(ijk, float)
        col = ijk[self.right_axis]
        row = ijk[self.up_axis]
        if self.right_flip:
            col = size[self.right_axis] - 1 - col
        if self.up_flip:
            row = size[self.up_axis] - 1 - row
        return float(col), float(row), float(ijk[self.slice_axis])


def view_axes(vol: Volume, orientation: str) -> ViewAxes:
    """The index axes and flips that show ``vol`` in ``orientation`` in the radiological convention."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    d = np.asarray(vol.direction)
    # world axis each index axis runs along (largest direction component) and its sign
    world_of = [int(np.argmax(np.abs(d[:, a]))) for a in range(3)]
    if len(set(world_of)) != 3:
        world_of = list(np.argsort(-np.abs(d), axis=0)[0])  # degenerate obliques: fall back to order
    sign_of = [float(np.sign(d[world_of[a], a])) or 1.0 for a in range(3)]
    index_for_world = {w: a for a, w in enumerate(world_of)}
    (rw, rs), (uw, us) = _SCREEN_AXES[orientation]
    right, up = index_for_world[rw], index_for_world[uw]
    return ViewAxes(
        orientation,
        slice_axis=index_for_world[_NORMAL[orientation]],
        right_axis=right,
        right_flip=sign_of[right] != rs,
        up_axis=up,
        up_flip=sign_of[up] != us,
    )


def orientation_letters(orientation: str) -> dict[str, str]:
    """Patient-direction letters for the four screen edges: {'left','right','top','bottom'}."""
    (rw, rs), (uw, us) = _SCREEN_AXES[orientation]
    return {
        "right": _LETTERS[(rw, rs)],
        "left": _LETTERS[(rw, -rs)],
        "top": _LETTERS[(uw, us)],
        "bottom": _LETTERS[(uw, -us)],
    }
