"""Edit operations on segmentations as pure functions that return the sparse change (a Delta).

Brushes (a 3D sphere or a 2D disc in a view's plane, sizes in world mm) and the rules every edit
obeys: threshold paint (only reference voxels in an intensity range), an editable area (everywhere,
inside or outside one label) and an overwrite rule for the voxels of other labels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from viewer.core.history import Delta, bounding_box
from viewer.core.labels import Segmentation
from viewer.core.slicing import view_axes
from viewer.core.volume import Volume

#: Which voxels of *other* labels an edit may change: every one (locks ignored), those of labels that
#: are not locked, or none (paint only on background; an eraser removes only its own label).
OVERWRITE_RULES = ("all", "unlocked", "background")
#: Where an edit may act: anywhere, only inside one label, or only outside it.
EDITABLE_AREAS = ("everywhere", "inside", "outside")
BRUSH_SHAPES = ("sphere", "disc")


def _ball_region(ref: Volume, center_mm, radius_mm: float, flat_axis: int | None):
    """(box, mask) of voxel centres within ``radius_mm`` of ``center_mm``; with ``flat_axis`` (index axis
    0 = x, 1 = y, 2 = z) only the one index plane nearest the centre along that axis, distances in-plane."""
    if radius_mm <= 0:
        raise ValueError(f"brush radius must be positive, got {radius_mm} mm")
    centre = ref.world_to_index(np.asarray(center_mm, float))
    m = ref.direction @ np.diag(ref.spacing)  # index -> world (without origin)
    # the ball's extent along each index axis: radius * norm of the rows of inv(m)
    reach = radius_mm * np.linalg.norm(np.linalg.inv(m), axis=1)
    lo = np.maximum(np.floor(centre - reach).astype(int), 0)
    hi = np.minimum(np.ceil(centre + reach).astype(int) + 1, np.asarray(ref.size))
    if flat_axis is not None:
        centre[flat_axis] = np.rint(centre[flat_axis])
        lo[flat_axis], hi[flat_axis] = int(centre[flat_axis]), int(centre[flat_axis]) + 1
        if not 0 <= lo[flat_axis] < ref.size[flat_axis]:
            return None
    if np.any(hi <= lo):
        return None
    ii, jj, kk = (np.arange(lo[a], hi[a], dtype=np.float32) - np.float32(centre[a]) for a in range(3))
    # world offset = m @ (di, dj, dk); squared length summed over world axes
    d2 = np.zeros((hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]), np.float32)
    for w in range(3):
        d2 += (m[w, 0] * ii[None, None, :] + m[w, 1] * jj[None, :, None] + m[w, 2] * kk[:, None, None]) ** 2
    mask = d2 <= np.float32(radius_mm) ** 2
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return box, mask


def sphere_region(ref: Volume, center_mm, radius_mm: float) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """(box, mask) of the voxels whose centres lie within ``radius_mm`` of world point ``center_mm``.

    Works for anisotropic spacing and any direction: distances are measured in world mm. The mask
    covers only the bounding box (z, y, x slices) clipped to the grid; None if it misses the grid.
    """
    return _ball_region(ref, center_mm, radius_mm, None)


def disc_region(ref: Volume, center_mm, radius_mm: float,
                orientation: str) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """(box, mask) of a 2D disc in the slice of ``orientation`` ('axial', 'coronal', 'sagittal') shown through
    ``center_mm``: one index plane (the one the view displays), voxels within ``radius_mm`` in world mm."""
    return _ball_region(ref, center_mm, radius_mm, view_axes(ref, orientation).slice_axis)


def brush_region(ref: Volume, center_mm, radius_mm: float, shape: str = "sphere", orientation: str = "axial"):
    """(box, mask) of a 'sphere' or a 'disc' brush (the disc lies in the ``orientation`` view's slice)."""
    if shape == "sphere":
        return sphere_region(ref, center_mm, radius_mm)
    if shape == "disc":
        return disc_region(ref, center_mm, radius_mm, orientation)
    raise ValueError(f"brush shape must be one of {BRUSH_SHAPES}, got {shape!r}")


def stroke_points(start, end, step_mm: float) -> list[np.ndarray]:
    """Points from ``start`` (excluded) to ``end`` (included) at most ``step_mm`` apart, so a fast mouse
    stroke leaves no gaps between brush dabs."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    n = max(int(np.ceil(np.linalg.norm(end - start) / step_mm)), 1)
    return [start + (end - start) * (t / n) for t in range(1, n + 1)]


def area_mask(labels: np.ndarray, area: tuple[str, int] | None) -> np.ndarray | None:
    """Where an edit may act: None (everywhere), ('inside', L) or ('outside', L) of label L in ``labels``."""
    if area is None or area[0] == "everywhere":
        return None
    kind, label = area
    if kind == "inside":
        return labels == label
    if kind == "outside":
        return labels != label
    raise ValueError(f"editable area must be one of {EDITABLE_AREAS}, got {kind!r}")


def overwrite_rule(value: str | bool) -> str:
    """The rule name; ``True``/``False`` mean 'unlocked'/'background' (the older boolean option)."""
    if isinstance(value, bool):
        return "unlocked" if value else "background"
    if value not in OVERWRITE_RULES:
        raise ValueError(f"overwrite rule must be one of {OVERWRITE_RULES}, got {value!r}")
    return value


def writable(labels: np.ndarray, label: int, *, overwrite: str | bool = "unlocked", locked: Iterable[int] = (),
             active_label: int | None = None) -> np.ndarray:
    """Voxels of ``labels`` that an edit writing ``label`` (0 erases) may change under the overwrite rule.

    The edit's own label is ``label``, or ``active_label`` for an eraser; background is always writable;
    other labels follow ``overwrite`` (see OVERWRITE_RULES); ``locked`` labels are protected unless 'all'.
    """
    rule = overwrite_rule(overwrite)
    own = label if label else active_label
    ok = np.ones(labels.shape, bool)
    if rule == "background":
        ok &= (labels == 0) | (labels == own) if own else labels == 0
    locked = list(locked)
    if rule != "all" and locked:
        ok &= ~np.isin(labels, locked)
    return ok


def _locked(seg: Segmentation) -> list[int]:
    return [i for i, info in seg.table.labels.items() if info.locked]


def paint_region(seg: Segmentation, box, mask: np.ndarray, label: int, provenance: int, *,
                 intensity_range: tuple[float, float] | None = None, editable: tuple[str, int] | None = None,
                 overwrite: str | bool = "unlocked", active_label: int | None = None) -> Delta | None:
    """Set ``label`` (0 erases) on ``mask`` within ``box``; returns the Delta or None if nothing changed.

    ``intensity_range=(lo, hi)`` restricts the edit to reference voxels with values in [lo, hi] (threshold
    paint); ``editable`` to ('inside' | 'outside', L) of label L; ``overwrite`` is one of OVERWRITE_RULES
    (default 'unlocked': other labels are overwritten unless locked). An eraser's ``active_label`` is its
    own label, which the 'background' rule still lets it erase.
    """
    seg.promote_for(label)
    region = seg.array[box]
    sel = mask & writable(region, label, overwrite=overwrite, locked=_locked(seg), active_label=active_label)
    if intensity_range is not None:
        values = seg.reference.array[box]
        sel &= (values >= intensity_range[0]) & (values <= intensity_range[1])
    area = area_mask(region, editable)
    if area is not None:
        sel &= area
    sel &= region != label
    if not sel.any():
        return None
    old = region[sel].copy()
    prov_region = seg.provenance[box]
    old_prov = prov_region[sel].copy()
    new_prov_value = provenance if label != 0 else 0
    region[sel] = label
    prov_region[sel] = new_prov_value
    if label:
        seg.table.ensure(label)
    return Delta(seg.uid, box, sel, old, np.full(old.shape, label, seg.array.dtype), old_prov,
                 np.full(old.shape, new_prov_value, np.uint8))


def paint_brush(seg: Segmentation, label: int, center_mm, radius_mm: float, provenance: int, *,
                shape: str = "sphere", orientation: str = "axial", **options) -> Delta | None:
    """A 'sphere' or 'disc' (in the ``orientation`` view's slice) brush dab in world mm; label 0 erases.
    See :func:`paint_region` for the rule options."""
    region = brush_region(seg.reference, center_mm, radius_mm, shape, orientation)
    if region is None:
        return None
    return paint_region(seg, region[0], region[1], label, provenance, **options)


def replace_all(seg: Segmentation, new_array: np.ndarray, provenance: int) -> Delta | None:
    """Replace the whole label map (e.g. a tool's accepted result) as one delta over the changed box."""
    if new_array.size:
        seg.promote_for(int(new_array.max()))
    changed = new_array != seg.array
    box = bounding_box(changed)
    if box is None:
        return None
    sel = changed[box]
    region, prov_region = seg.array[box], seg.provenance[box]
    old, old_prov = region[sel].copy(), prov_region[sel].copy()
    new = new_array[box][sel].astype(seg.array.dtype)
    new_prov = np.where(new > 0, provenance, 0).astype(np.uint8)
    region[sel] = new
    prov_region[sel] = new_prov
    return Delta(seg.uid, box, sel, old, new, old_prov, new_prov)
