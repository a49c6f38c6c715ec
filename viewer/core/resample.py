"""Resample a volume onto another volume's grid by world geometry (SimpleITK), e.g. labels onto a CT."""

from __future__ import annotations

import numpy as np

from viewer.core.errors import LabelMapError
from viewer.core.volume import Volume


def resample_to(vol: Volume, reference: Volume, *, nearest: bool = False, default: float = 0) -> Volume:
    """``vol`` sampled at the voxel centres of ``reference`` (identity transform in world space).

    ``nearest`` for label maps (values kept exactly), linear otherwise. Returns ``vol`` itself when
    the grids already agree. Raises LabelMapError if the two grids do not overlap at all.
    """
    if vol.same_grid(reference):
        return vol
    lo, hi = vol.world_bounds()
    rlo, rhi = reference.world_bounds()
    half = np.asarray(vol.spacing).max() / 2
    if np.any(hi + half < rlo) or np.any(rhi < lo - half):
        raise LabelMapError(
            f"grid does not overlap the reference image (extent {np.round(lo, 1)}..{np.round(hi, 1)} mm vs "
            f"{np.round(rlo, 1)}..{np.round(rhi, 1)} mm)",
            (vol.meta.get("files") or [None])[0],
        )
    import SimpleITK as sitk

    out = sitk.Resample(
        vol.to_sitk(),
        _grid_only(reference),
        sitk.Transform(),
        sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear,
        float(default),
    )
    arr = sitk.GetArrayFromImage(out)
    return reference.with_array(arr.astype(vol.array.dtype, copy=False), modality=vol.modality, units=vol.units,
                                description=vol.description)


def _grid_only(reference: Volume):
    """An empty SimpleITK image with the reference's geometry (the output grid of a resample)."""
    import SimpleITK as sitk

    img = sitk.Image(list(reference.size), sitk.sitkUInt8)
    img.SetSpacing(reference.spacing)
    img.SetOrigin(reference.origin)
    img.SetDirection(tuple(reference.direction.ravel()))
    return img
