"""nnU-Net v2's DefaultPreprocessor for inference: transpose -> crop to nonzero -> normalise -> resample.

Arrays are nnU-Net's: (C, *spatial) in the order SimpleITK stores the image ((z, y, x) for radview Volumes,
spacing likewise reversed); ``transpose_forward`` from plans.json is applied first. The returned
``CaseGeometry`` records what export must undo (nnunetv2.preprocessing.preprocessors.default_preprocessor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ai.formats.nnunet_resample import ResampleSpec, compute_new_shape, resample_image
from viewer.core.errors import ModelError

#: nnU-Net v2's normalisation schemes reproduced here (nnunetv2.preprocessing.normalization), named as in
#: plans.json; ai.normalize applies them for nnU-Net cards
SCHEMES = ("CTNormalization", "ZScoreNormalization", "NoNormalization", "RescaleTo01Normalization",
           "RGBTo01Normalization")


@dataclass
class CaseGeometry:
    """Where the preprocessed array came from: shapes and crop box in the transposed axis order."""

    shape_before_cropping: tuple[int, ...]
    bbox: list[list[int]]  # [[lo, hi), ...] per transposed axis
    shape_after_cropping: tuple[int, ...]
    spacing: tuple[float, ...]  # original spacing, transposed order


def nonzero_bbox(data: np.ndarray) -> list[list[int]]:
    """Bounding box [[lo, hi), ...] of the voxels nonzero in any channel (nnU-Net crop_to_nonzero).

    nnU-Net fills holes in the mask first; filling holes never grows a bounding box, so it is skipped here.
    """
    mask = np.any(data != 0, axis=0)
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append([int(hits[0]), int(hits[-1]) + 1] if len(hits) else [0, 0])
    return box


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """nnU-Net's nonzero mask: voxels nonzero in any channel, holes filled."""
    from scipy.ndimage import binary_fill_holes

    return binary_fill_holes(np.any(data != 0, axis=0))


def normalize_channel(image: np.ndarray, scheme: str, properties: dict, mask: np.ndarray | None) -> np.ndarray:
    """One channel normalised in place (float32) as nnU-Net's ``scheme`` does; ``mask`` only for use_mask_for_norm."""
    if scheme == "CTNormalization":
        np.clip(image, properties["percentile_00_5"], properties["percentile_99_5"], out=image)
        image -= properties["mean"]
        image /= max(properties["std"], 1e-8)
    elif scheme == "ZScoreNormalization":
        if mask is not None:
            mean, std = image[mask].mean(), image[mask].std()
            image[mask] = (image[mask] - mean) / max(std, 1e-8)
        else:
            mean, std = image.mean(), image.std()
            image -= mean
            image /= max(std, 1e-8)
    elif scheme == "RescaleTo01Normalization":
        image -= image.min()
        image /= np.clip(image.max(), a_min=1e-8, a_max=None)
    elif scheme == "RGBTo01Normalization":
        image /= 255.0
    elif scheme != "NoNormalization":
        raise ModelError(f"nnU-Net normalisation {scheme!r} is not supported (supported: {', '.join(SCHEMES)})")
    return image


def preprocess_case(data: np.ndarray, spacing, *, transpose_forward, target_spacing, schemes, use_mask_for_norm,
                    intensity_properties: dict, resample: ResampleSpec) -> tuple[np.ndarray, CaseGeometry]:
    """(C, *spatial) float32 ready for the sliding window, and the geometry to undo at export.

    ``data``: channels in stored order (any numeric type); ``spacing`` in the same axis order.
    """
    data = data.astype(np.float32, copy=False).transpose([0, *[a + 1 for a in transpose_forward]])
    spacing = tuple(float(spacing[a]) for a in transpose_forward)
    shape_before = tuple(data.shape[1:])
    bbox = nonzero_bbox(data)
    crop = tuple(slice(lo, hi) for lo, hi in bbox)
    data = np.array(data[(slice(None), *crop)], dtype=np.float32, order="C")  # one float32 copy, contiguous
    mask = None
    if any(use_mask_for_norm):
        mask = nonzero_mask(data)
    for c in range(data.shape[0]):
        normalize_channel(data[c], schemes[c], intensity_properties.get(str(c), {}),
                          mask if use_mask_for_norm[c] else None)
    target = list(target_spacing)
    if len(target) < data.ndim - 1:  # 2d configuration: slices keep their spacing
        target = [spacing[0], *target]
    new_shape = compute_new_shape(data.shape[1:], spacing, target)
    geometry = CaseGeometry(shape_before, bbox, tuple(data.shape[1:]), spacing)
    return resample_image(data, new_shape, spacing, target, resample), geometry
