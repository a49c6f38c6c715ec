"""Resample a volume onto another volume's grid by world geometry (SimpleITK), e.g. labels onto a CT,
or a moving image onto a fixed image through a registration transform."""

from __future__ import annotations

import numpy as np

from viewer.core.errors import LabelMapError, RegistrationError
from viewer.core.volume import Volume

#: Interpolator names accepted by :func:`resample_to` -> SimpleITK interpolator attribute.
INTERPOLATORS = {"nearest": "sitkNearestNeighbor", "linear": "sitkLinear", "bspline": "sitkBSpline"}


def background_value(vol: Volume) -> float:
    """The value of 'nothing' outside ``vol``'s field of view: air (-1024) for HU, 0 otherwise."""
    return -1024.0 if vol.units == "HU" else 0.0


def resample_to(vol: Volume, reference: Volume, *, nearest: bool = False, default: float = 0,
                transform=None, interpolator: str | None = None, border: bool = False) -> Volume:
    """``vol`` sampled at the voxel centres of ``reference``.

    Args:
        vol: the image to sample (its voxels are not changed).
        reference: the output grid.
        nearest: nearest-neighbour (label maps, values kept exactly); linear otherwise.
        default: value where a reference voxel maps outside ``vol``.
        transform: a SimpleITK transform mapping reference (fixed) world points to ``vol`` (moving) world
            points, ITK's convention; None for the identity (same world frame).
        interpolator: 'nearest', 'linear' or 'bspline'; overrides ``nearest`` when given.
        border: a reference voxel that overlaps ``vol``'s field of view (its outer voxel edges) but whose
            centre lies beyond ``vol``'s outermost voxel centres takes the nearest edge value, as MONAI's
            "border" padding does, instead of ``default``: a coarse model grid's last voxel straddles the
            image's edge and is mostly image, not air. Only without ``transform``.

    Returns a Volume on ``reference``'s grid with ``vol``'s dtype, modality, units and synthetic flag; integer
    voxels are interpolated in float, rounded and clipped to the type's range (no overflow). Returns ``vol`` itself when
    the grids agree and there is no transform. Raises LabelMapError (RegistrationError with a transform) if
    the reference grid maps entirely outside ``vol``.
    """
    name = interpolator or ("nearest" if nearest else "linear")
    if name not in INTERPOLATORS:
        raise ValueError(f"interpolator must be one of {sorted(INTERPOLATORS)}, got {name!r}")
    if transform is None and vol.same_grid(reference):
        return vol
    import SimpleITK as sitk

    if border and transform is not None:
        raise ValueError("border padding is defined for the identity transform only")
    _check_overlap(vol, reference, transform)
    exact = name == "nearest" or not np.issubdtype(vol.array.dtype, np.integer)
    out = sitk.Resample(
        vol.to_sitk(),
        _grid_only(reference),
        transform if transform is not None else sitk.Transform(),
        getattr(sitk, INTERPOLATORS[name]),
        float(default),
        sitk.sitkUnknown if exact else sitk.sitkFloat32,
        border,
    )
    arr = sitk.GetArrayFromImage(out)
    if border:
        outside = _outside_field_of_view(vol, reference)
        if outside is not None:
            arr[outside] = default
    if not exact:
        info = np.iinfo(vol.array.dtype)
        arr = np.clip(np.rint(arr, out=arr), info.min, info.max, out=arr)
    return reference.with_array(arr.astype(vol.array.dtype, copy=False), modality=vol.modality, units=vol.units,
                                description=vol.description, synthetic=vol.synthetic)


def _check_overlap(vol: Volume, reference: Volume, transform) -> None:
    """Raise unless some of ``reference``'s box, mapped through ``transform``, falls inside ``vol``'s box."""
    lo, hi = vol.world_bounds()
    rlo, rhi = reference.world_bounds()
    if transform is not None:  # the reference box's corners, centre and face centres in vol's world frame
        pts = np.array([[a, b, c] for a in (0, 0.5, 1) for b in (0, 0.5, 1) for c in (0, 0.5, 1)])
        mapped = np.array([transform.TransformPoint(tuple(map(float, rlo + p * (rhi - rlo)))) for p in pts])
        rlo, rhi = mapped.min(axis=0), mapped.max(axis=0)
    half = np.asarray(vol.spacing).max() / 2
    if np.any(hi + half < rlo) or np.any(rhi < lo - half):
        error = LabelMapError if transform is None else RegistrationError
        raise error(
            f"grid does not overlap the reference image (extent {np.round(lo, 1)}..{np.round(hi, 1)} mm vs "
            f"{np.round(rlo, 1)}..{np.round(rhi, 1)} mm)",
            (vol.meta.get("files") or [None])[0],
        )


def _outside_field_of_view(vol: Volume, reference: Volume) -> np.ndarray | None:
    """Boolean (z, y, x) mask of ``reference``'s voxels that do not overlap ``vol``'s field of view (centre
    farther than half a reference voxel beyond ``vol``'s outer voxel edges, along each of ``vol``'s axes);
    None when there is none (e.g. every model grid radview builds over an image)."""
    to_vol = np.linalg.inv(vol.index_to_world_matrix) @ reference.index_to_world_matrix  # ref index -> vol index
    half = np.abs(to_vol[:3, :3]).sum(axis=1) / 2  # half a reference voxel, in vol voxels, along each vol axis
    lo, hi = -0.5 - half, np.asarray(vol.size) - 0.5 + half
    reached = reference.corner_indices() @ to_vol[:3, :3].T + to_vol[:3, 3]
    if np.all(reached >= lo - 1e-6) and np.all(reached <= hi + 1e-6):
        return None  # the box of voxel centres is convex: its corners bound it
    return ~reference.centres_within(to_vol, lo, hi)


def _grid_only(reference: Volume):
    """An empty SimpleITK image with the reference's geometry (the output grid of a resample)."""
    import SimpleITK as sitk

    img = sitk.Image(list(reference.size), sitk.sitkUInt8)
    img.SetSpacing(reference.spacing)
    img.SetOrigin(reference.origin)
    img.SetDirection(tuple(reference.direction.ravel()))
    return img
