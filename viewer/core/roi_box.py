"""Box regions of interest in world LPS mm: ((x0, y0, z0), (x1, y1, z1)) with x0 <= x1 etc.

AI runs can be restricted to such a box (ai.engine.run_segmentation(roi=...)); the viewer sets one
around the crosshair or from a drag on an MPR view.
"""

from __future__ import annotations

import numpy as np

from viewer.core.volume import Volume

Box = tuple[tuple[float, float, float], tuple[float, float, float]]

#: World axis along each view's normal (LPS: 0 = x, 1 = y, 2 = z).
VIEW_NORMAL_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


def _box(lo, hi) -> Box:
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi)


def image_box(vol: Volume) -> Box:
    """The box covering ``vol``'s voxels (voxel centres widened by half a voxel)."""
    lo, hi = vol.world_bounds()
    half = np.abs(np.asarray(vol.direction) @ np.diag(vol.spacing)).sum(axis=1) / 2
    return _box(lo - half, hi + half)


def box_around(center_mm, half_size_mm) -> Box:
    """A box centred on ``center_mm`` extending ``half_size_mm`` (a number or per-axis x, y, z) each way."""
    c = np.asarray(center_mm, float)
    h = np.broadcast_to(np.asarray(half_size_mm, float), (3,))
    if np.any(h <= 0):
        raise ValueError(f"box half size must be positive, got {h.tolist()} mm")
    return _box(c - h, c + h)


def box_from_drag(start_mm, end_mm, orientation: str, vol: Volume, previous: Box | None = None) -> Box:
    """The box a drag from ``start_mm`` to ``end_mm`` on an ``orientation`` view spans: the dragged
    rectangle in the view plane; along the view's normal the ``previous`` box's extent if there is one,
    else the whole image (so a drag on the axial then the coronal view sets all three extents)."""
    normal = VIEW_NORMAL_AXIS[orientation]
    lo, hi = np.minimum(start_mm, end_mm).astype(float), np.maximum(start_mm, end_mm).astype(float)
    source = previous if previous is not None else image_box(vol)
    lo[normal], hi[normal] = source[0][normal], source[1][normal]
    return _box(lo, hi)
