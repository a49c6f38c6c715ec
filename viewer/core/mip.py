"""Rotating maximum-intensity projections: a volume seen from N angles around the patient's long axis (PET MIP)."""

from __future__ import annotations

import numpy as np

from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.volume import Volume

#: Largest side (voxels) of the isotropic grid the projections are made on (keeps N frames cheap).
MAX_GRID_SIDE = 160


def rotating_mip(vol: Volume, n_angles: int = 36, *, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> tuple[list[np.ndarray], float]:
    """MIPs of ``vol`` seen from ``n_angles`` directions evenly spaced around the superior (LPS z) axis,
    starting from the front (anterior view: the patient's right on the left of the image).

    The volume is first resampled (linear) onto an isotropic, axis-aligned LPS grid covering its field of view,
    whatever its direction cosines, so every frame is in millimetres. Returns (frames, pixel mm): each frame
    is a float32 (rows, cols) image, row 0 superior, in ``vol``'s units. Frame ``n`` views the patient from
    ``360 * n / n_angles`` degrees, turning from anterior towards the patient's left.
    """
    from scipy import ndimage

    from viewer.core.resample import background_value, resample_to

    vol.require_scalar("a MIP")
    if n_angles < 1:
        raise ValueError(f"n_angles must be at least 1, got {n_angles}")
    progress = progress or no_progress
    cancel = cancel or CancelToken()
    lo, hi = vol.world_bounds()
    side = max(float(min(vol.spacing)), float(np.max(hi - lo)) / MAX_GRID_SIDE)
    size = np.maximum(np.ceil((hi - lo) / side).astype(int) + 1, 1)
    fill = background_value(vol)
    grid = Volume(np.zeros(size[::-1], np.uint8), (side,) * 3, tuple(lo))
    iso = resample_to(vol, grid, default=fill).array.astype(np.float32)  # (z, y, x): S, P, L increasing
    frames = []
    for n in range(n_angles):
        cancel.raise_if_cancelled()
        angle = 360.0 * n / n_angles
        turned = iso if n == 0 else ndimage.rotate(iso, angle, axes=(1, 2), reshape=False, order=1, cval=fill)
        frames.append(np.ascontiguousarray(turned.max(axis=1)[::-1]))  # along anterior-posterior; S at the top
        progress((n + 1) / n_angles, f"MIP {n + 1}/{n_angles}")
    return frames, side
