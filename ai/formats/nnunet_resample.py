"""nnU-Net v2's resampling (``resample_data_or_seg_to_shape``) reproduced in float32, without its float64 copies.

nnU-Net resizes images with ``skimage.transform.resize(order=3, mode='edge', anti_aliasing=False)`` per channel
(= ``scipy.ndimage.zoom(grid_mode=True, mode='nearest')`` clipped to the input range) and, for anisotropic
spacing ("separate z"), slice by slice in-plane with nearest neighbour across slices. At export it resizes the
logits of every class back with order 1 in float64 and then takes the argmax. Here the same interpolation runs
on float32 and the export is done slab by slab straight into the label map, so the all-class logits are never
held at the output resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: spacing ratio beyond which nnU-Net treats an image as anisotropic (nnunetv2.configuration.ANISO_THRESHOLD)
ANISO_THRESHOLD = 3.0


def compute_new_shape(old_shape, old_spacing, new_spacing) -> tuple[int, ...]:
    """nnU-Net's target shape: round(old_spacing / new_spacing * old_shape) per axis."""
    return tuple(int(round(s / t * n)) for s, t, n in zip(old_spacing, new_spacing, old_shape, strict=True))


def _lowres_axis(spacing) -> int | None:
    spacing = np.asarray(spacing, float)
    axes = np.where(max(spacing) / spacing == 1)[0]
    return int(axes[0]) if len(axes) == 1 else None


def separate_z_axis(current_spacing, new_spacing, force_separate_z: bool | None = None,
                    threshold: float = ANISO_THRESHOLD) -> int | None:
    """The axis nnU-Net resamples apart (nearest neighbour) from the others, or None (determine_do_sep_z_and_axis)."""
    if force_separate_z is not None:
        return _lowres_axis(current_spacing) if force_separate_z else None
    for spacing in (current_spacing, new_spacing):
        if max(spacing) / min(spacing) > threshold:
            return _lowres_axis(spacing)
    return None


@dataclass(frozen=True)
class ResampleSpec:
    """How one configuration resamples: spline order in-plane, order across the separate axis, forced mode."""

    order: int = 3
    order_z: int = 0
    force_separate_z: bool | None = None

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> ResampleSpec:
        return cls(int(kwargs.get("order", 3)), int(kwargs.get("order_z", 0)), kwargs.get("force_separate_z"))


def resample_image(data: np.ndarray, new_shape, current_spacing, new_spacing, spec: ResampleSpec) -> np.ndarray:
    """Resize (C, X, Y, Z) float32 channels to ``new_shape`` the way nnU-Net resizes images (float32 out)."""
    from scipy import ndimage

    new_shape = tuple(int(v) for v in new_shape)
    if tuple(data.shape[1:]) == new_shape:
        return data
    axis = separate_z_axis(current_spacing, new_spacing, spec.force_separate_z)
    out = np.empty((data.shape[0], *new_shape), np.float32)
    for c, channel in enumerate(data):
        if axis is None:
            zoomed = ndimage.zoom(channel, np.divide(new_shape, channel.shape), order=spec.order, mode="nearest",
                                  grid_mode=True, output=np.float32)
            out[c] = np.clip(zoomed, channel.min(), channel.max(), out=zoomed)
            continue
        inplane = [n for a, n in enumerate(new_shape) if a != axis]
        slices = []
        for s in np.moveaxis(channel, axis, 0):
            zoomed = ndimage.zoom(s, np.divide(inplane, s.shape), order=spec.order, mode="nearest", grid_mode=True,
                                  output=np.float32)
            slices.append(np.clip(zoomed, s.min(), s.max(), out=zoomed))
        stacked = np.stack(slices, axis=axis)
        if stacked.shape[axis] != new_shape[axis]:
            if spec.order_z != 0:
                stacked = ndimage.zoom(stacked, np.divide(new_shape, stacked.shape), order=spec.order_z,
                                       mode="nearest", grid_mode=True, output=np.float32)
            else:
                stacked = np.take(stacked, nearest_indices(stacked.shape[axis], new_shape[axis]), axis=axis)
        out[c] = stacked
    return out


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output sample for a nearest-neighbour resize with pixel-centre alignment."""
    coords = n_in / n_out * (np.arange(n_out) + 0.5) - 0.5
    return np.clip(np.floor(coords + 0.5), 0, n_in - 1).astype(np.int64)


def _linear_weights(n_in: int, n_out: int):
    """(lower index, upper index, upper weight) of a linear resize with pixel-centre alignment, edge-clamped."""
    coords = np.clip(n_in / n_out * (np.arange(n_out) + 0.5) - 0.5, 0, n_in - 1)
    lo = np.floor(coords).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (coords - lo).astype(np.float32)


def _resize_axis(x, axis: int, n_out: int, linear: bool, rows=None):
    """Resize torch tensor ``x`` along ``axis`` (linear or nearest); ``rows`` restricts to those output rows."""
    import torch

    n_in = x.shape[axis]
    if n_in == n_out and rows is None:
        return x
    if not linear:
        idx = nearest_indices(n_in, n_out)
        idx = idx if rows is None else idx[rows]
        return x.index_select(axis, torch.from_numpy(idx))
    lo, hi, w = _linear_weights(n_in, n_out)
    if rows is not None:
        lo, hi, w = lo[rows], hi[rows], w[rows]
    shape = [1] * x.ndim
    shape[axis] = len(w)
    w = torch.from_numpy(w).reshape(shape)
    first = int(lo.min())
    x = x.narrow(axis, first, int(hi.max()) - first + 1).float()  # only the input rows these outputs read
    # x[hi] - x[lo] taken from the neighbour differences of the input (hi is lo + 1, or lo at the clamped end,
    # where the difference is 0): the same values, subtracted at the input's size instead of the output's
    n = x.shape[axis]
    diff = torch.empty_like(x)
    diff.narrow(axis, n - 1, 1).zero_()
    torch.sub(x.narrow(axis, 1, n - 1), x.narrow(axis, 0, n - 1), out=diff.narrow(axis, 0, n - 1))
    index = torch.from_numpy(lo - first)
    return x.index_select(axis, index).add_(diff.index_select(axis, index).mul_(w))


def resample_logits_to_labels(logits, new_shape, current_spacing, new_spacing, spec: ResampleSpec,
                              label_dtype=np.uint8, with_max_probability: bool = False, slab: int = 16):
    """Argmax labels (X, Y, Z) of the logits (K, X', Y', Z') torch tensor resized to ``new_shape`` as nnU-Net's
    export does (order 1, or nearest across a separate z axis, rounded to float16 like nnU-Net's output array),
    computed ``slab`` output rows at a time.

    With ``with_max_probability`` also returns the softmax probability of the chosen label (float32).
    """
    import torch

    new_shape = tuple(int(v) for v in new_shape)
    axis = separate_z_axis(current_spacing, new_spacing, spec.force_separate_z)
    linear = [spec.order >= 1 if a != axis else spec.order_z >= 1 for a in range(3)]
    labels = np.empty(new_shape, label_dtype)
    top = np.empty(new_shape, np.float32) if with_max_probability else None
    n_in0 = logits.shape[1]
    for start in range(0, new_shape[0], slab):
        rows = np.arange(start, min(start + slab, new_shape[0]))
        part = logits[:, rows] if n_in0 == new_shape[0] else _resize_axis(logits, 1, new_shape[0], linear[0], rows)
        part = part.float()
        for a in (1, 2):
            part = _resize_axis(part, a + 1, new_shape[a], linear[a])
        # nnU-Net: argmax of float16 values; max(0).indices is the same first maximal index, several times faster
        labels[rows] = part.half().max(0).indices.numpy().astype(label_dtype, copy=False)
        if top is not None:
            top[rows] = torch.softmax(part, 0).amax(0).numpy()
    return labels, top
