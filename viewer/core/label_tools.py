"""Whole-label editing tools as pure functions: each returns a new label array; Session.apply commits it.

All sizes are in millimetres (anisotropic voxels are handled with distance maps in mm), masks are
boolean numpy arrays on the reference grid (z, y, x).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

from viewer.core.editing import writable
from viewer.core.slicing import view_axes
from viewer.core.volume import Volume


def threshold_mask(image: Volume, low: float, high: float) -> np.ndarray:
    """Voxels with ``low <= value <= high`` (a preview: nothing is committed)."""
    return (image.array >= low) & (image.array <= high)


def region_grow(image: Volume, seed_mm, low: float, high: float) -> np.ndarray:
    """Flood fill from the world point ``seed_mm`` through voxels within [low, high] (6-connected)."""
    seed = np.rint(image.world_to_index(seed_mm)).astype(int)[::-1]
    if np.any(seed < 0) or np.any(seed >= image.array.shape):
        raise ValueError(f"seed {tuple(seed_mm)} mm lies outside the image")
    inside = threshold_mask(image, low, high)
    if not inside[tuple(seed)]:
        return np.zeros(inside.shape, bool)
    components, _ = ndimage.label(inside)
    return components == components[tuple(seed)]


def keep_largest(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of ``mask``."""
    components, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return mask.copy()
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))


def remove_islands(mask: np.ndarray, spacing, min_volume_mm3: float) -> np.ndarray:
    """``mask`` without 26-connected components smaller than ``min_volume_mm3``."""
    components, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return mask.copy()
    voxel = float(np.prod(spacing))
    sizes = np.bincount(components.ravel()) * voxel
    keep = sizes >= min_volume_mm3
    keep[0] = False
    return keep[components]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with enclosed cavities filled (3D)."""
    return ndimage.binary_fill_holes(mask)


def _sampling(spacing) -> tuple[float, float, float]:
    return tuple(float(s) for s in spacing)[::-1]  # (z, y, x) order for scipy


def grow(mask: np.ndarray, spacing, mm: float) -> np.ndarray:
    """Dilate by ``mm`` (Euclidean, in world mm on anisotropic grids)."""
    if mm <= 0:
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=_sampling(spacing)) <= mm


def shrink(mask: np.ndarray, spacing, mm: float) -> np.ndarray:
    """Erode by ``mm`` (Euclidean, in world mm on anisotropic grids)."""
    if mm <= 0:
        return mask.copy()
    return ndimage.distance_transform_edt(mask, sampling=_sampling(spacing)) > mm


def smooth(mask: np.ndarray, spacing, mm: float, method: str = "median") -> np.ndarray:
    """'median' (majority in a ball of radius ``mm``), 'opening' or 'closing' with a ball of ``mm``."""
    if method == "opening":
        return grow(shrink(mask, spacing, mm), spacing, mm)
    if method == "closing":
        return shrink(grow(mask, spacing, mm), spacing, mm)
    if method != "median":
        raise ValueError(f"smoothing method must be median, opening or closing, got {method!r}")
    radius = np.maximum(np.rint(mm / np.asarray(_sampling(spacing))), 1).astype(int)
    zz, yy, xx = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    ball = (zz / max(radius[0], 1)) ** 2 + (yy / max(radius[1], 1)) ** 2 + (xx / max(radius[2], 1)) ** 2 <= 1
    counts = ndimage.convolve(mask.astype(np.uint16), ball.astype(np.uint16), mode="constant")
    return counts * 2 > ball.sum()


def _signed_distance(plane: np.ndarray, sampling) -> np.ndarray:
    """Negative inside, positive outside (mm), for a 2D mask."""
    return ndimage.distance_transform_edt(~plane, sampling=sampling) - ndimage.distance_transform_edt(
        plane, sampling=sampling)


def interpolate_slices(mask: np.ndarray, spacing=(1.0, 1.0, 1.0), axis: int = 0) -> np.ndarray:
    """Fill the empty slices between drawn slices along ``axis`` (0 = z) by shape-based interpolation.

    Between two drawn slices the signed distance maps (in mm) are blended linearly and thresholded
    at zero, so shapes morph smoothly from one contour to the next; drawn slices are kept as they are.
    """
    m = np.moveaxis(mask, axis, 0)
    sampling = tuple(np.delete(np.asarray(_sampling(spacing)), axis))
    drawn = [k for k in range(m.shape[0]) if m[k].any()]
    out = m.copy()
    for k0, k1 in zip(drawn, drawn[1:], strict=False):
        if k1 - k0 < 2:
            continue
        d0, d1 = _signed_distance(m[k0], sampling), _signed_distance(m[k1], sampling)
        for k in range(k0 + 1, k1):
            t = (k - k0) / (k1 - k0)
            out[k] = (1 - t) * d0 + t * d1 <= 0
    return np.moveaxis(out, 0, axis)


def logical(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    """'union', 'intersect' or 'subtract' (a without b) of two masks."""
    if op == "union":
        return a | b
    if op == "intersect":
        return a & b
    if op == "subtract":
        return a & ~b
    raise ValueError(f"logical operation must be union, intersect or subtract, got {op!r}")


def set_label(labels: np.ndarray, mask: np.ndarray, label: int, *, overwrite: str | bool = "unlocked",
              editable: np.ndarray | None = None, locked: Iterable[int] = ()) -> np.ndarray:
    """A copy of ``labels`` with ``label`` written on ``mask`` (0 erases), within ``editable`` if given.

    Other labels' voxels follow the overwrite rule (viewer.core.editing.OVERWRITE_RULES: 'all', 'unlocked'
    with ``locked`` label ids protected, 'background'; ``False`` means 'background'). ``mask`` is applied
    only where it is True, and voxels of ``label`` outside ``mask`` are cleared, so a tool's result
    replaces the label.
    """
    out = labels.astype(np.uint16) if label > np.iinfo(labels.dtype).max else labels.copy()
    allowed = writable(labels, label, overwrite=overwrite, locked=locked)
    if editable is not None:
        allowed &= editable
    out[(labels == label) & allowed & ~mask] = 0
    out[mask & allowed] = label
    return out


#: Tool name -> what it does, for menus; every tool yields the new mask of the target label.
TOOLS = {
    "threshold": "Threshold: the voxels with low <= value <= high",
    "region_grow": "Region grow: flood fill from a seed through values in [low, high]",
    "keep_largest": "Keep the largest island",
    "remove_islands": "Remove islands smaller than a volume (mm3)",
    "fill_holes": "Fill holes",
    "grow": "Grow by mm",
    "shrink": "Shrink by mm",
    "smooth": "Smooth (median, opening or closing) with a ball of mm",
    "interpolate": "Fill between slices drawn in a view",
    "logical": "Logical operation with another label (union, intersect, subtract)",
}


def tool_mask(tool: str, image: Volume, labels: np.ndarray, label: int, *, low: float = 0.0, high: float = 0.0,
              seed_mm=None, min_volume_mm3: float = 0.0, mm: float = 1.0, method: str = "median",
              orientation: str = "axial", other: int = 0, op: str = "union") -> np.ndarray:
    """The new mask of ``label`` after ``tool`` (a key of TOOLS) on ``image`` and the current ``labels``.

    Parameters by tool: threshold (``low``, ``high``), region_grow (``seed_mm``, ``low``, ``high``),
    remove_islands (``min_volume_mm3``), grow / shrink (``mm``), smooth (``mm``, ``method``), interpolate
    (``orientation`` of the view whose slices were drawn), logical (``other`` label, ``op``).
    Commit it with :func:`set_label` and Session.apply (one undo step).
    """
    own = labels == label
    spacing = image.spacing
    if tool == "threshold":
        return threshold_mask(image, low, high)
    if tool == "region_grow":
        return region_grow(image, seed_mm, low, high)
    if tool == "keep_largest":
        return keep_largest(own)
    if tool == "remove_islands":
        return remove_islands(own, spacing, min_volume_mm3)
    if tool == "fill_holes":
        return fill_holes(own)
    if tool == "grow":
        return grow(own, spacing, mm)
    if tool == "shrink":
        return shrink(own, spacing, mm)
    if tool == "smooth":
        return smooth(own, spacing, mm, method)
    if tool == "interpolate":
        return interpolate_slices(own, spacing, axis=2 - view_axes(image, orientation).slice_axis)
    if tool == "logical":
        return logical(own, labels == other, op)
    raise ValueError(f"label tool must be one of {tuple(TOOLS)}, got {tool!r}")
