"""Edit operations on segmentations as pure functions that return the sparse change (a Delta)."""

from __future__ import annotations

import numpy as np

from viewer.core.history import Delta
from viewer.core.labels import Segmentation
from viewer.core.volume import Volume


def sphere_region(ref: Volume, center_mm, radius_mm: float) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """(box, mask) of the voxels whose centres lie within ``radius_mm`` of world point ``center_mm``.

    Works for anisotropic spacing and any direction: distances are measured in world mm. The mask
    covers only the bounding box (z, y, x slices) clipped to the grid; None if it misses the grid.
    """
    if radius_mm <= 0:
        raise ValueError(f"brush radius must be positive, got {radius_mm} mm")
    centre = ref.world_to_index(np.asarray(center_mm, float))
    m = ref.direction @ np.diag(ref.spacing)  # index -> world (without origin)
    # the sphere's extent along each index axis: radius * norm of the rows of inv(m)
    reach = radius_mm * np.linalg.norm(np.linalg.inv(m), axis=1)
    lo = np.maximum(np.floor(centre - reach).astype(int), 0)
    hi = np.minimum(np.ceil(centre + reach).astype(int) + 1, np.asarray(ref.size))
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


def paint_region(seg: Segmentation, box, mask: np.ndarray, label: int, provenance: int, *,
                 intensity_range: tuple[float, float] | None = None, overwrite: bool = True) -> Delta | None:
    """Set ``label`` (0 erases) on ``mask`` within ``box``; returns the Delta or None if nothing changed.

    ``intensity_range`` restricts painting to reference voxels with values in [lo, hi] (threshold
    paint); ``overwrite=False`` paints only background voxels. Locked labels are never changed.
    """
    seg.promote_for(label)
    region = seg.array[box]
    sel = mask.copy()
    if intensity_range is not None:
        values = seg.reference.array[box]
        sel &= (values >= intensity_range[0]) & (values <= intensity_range[1])
    if not overwrite and label != 0:
        sel &= region == 0
    locked = [i for i, info in seg.table.labels.items() if info.locked]
    if locked:
        sel &= ~np.isin(region, locked)
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


def paint_sphere(seg: Segmentation, label: int, center_mm, radius_mm: float, provenance: int,
                 **options) -> Delta | None:
    """3D sphere brush in world mm (label 0 erases); see :func:`paint_region` for options."""
    region = sphere_region(seg.reference, center_mm, radius_mm)
    if region is None:
        return None
    return paint_region(seg, region[0], region[1], label, provenance, **options)


def replace_all(seg: Segmentation, new_array: np.ndarray, provenance: int) -> Delta | None:
    """Replace the whole label map (e.g. a tool's accepted result) as one delta over the changed box."""
    changed = new_array != seg.array
    if not changed.any():
        return None
    idx = np.argwhere(changed)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sel = changed[box]
    region, prov_region = seg.array[box], seg.provenance[box]
    old, old_prov = region[sel].copy(), prov_region[sel].copy()
    new = new_array[box][sel].astype(seg.array.dtype)
    new_prov = np.where(new > 0, provenance, 0).astype(np.uint8)
    region[sel] = new
    prov_region[sel] = new_prov
    return Delta(seg.uid, box, sel, old, new, old_prov, new_prov)
