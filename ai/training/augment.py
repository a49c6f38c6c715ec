"""Patch augmentation from a config's ``augmentation`` section, as MONAI dictionary transforms.

Works on one patch dict {"image": (C, z, y, x), target name: (z, y, x) or (K, z, y, x)}. The spatial transform
(rotation + scaling, with elastic deformation if asked: MONAI Rand3DElasticd, else RandAffined) reads a patch
cut with a margin (``margin_factor``) and writes the patch size from its centre, so rotated corners hold real
voxels, not padding; every target follows the image through the same random transform (label maps by nearest
neighbour). Intensity transforms (scale, shift, gamma, noise, blur) touch the image only. Flips only along the
axes the config allows (left/right organs forbid x).
"""

from __future__ import annotations

import math

import numpy as np

from ai.training.config import Augmentation

#: elastic deformation: smoothing sigma and magnitude of MONAI's random displacement field (voxels)
ELASTIC_SIGMA = (5.0, 8.0)
ELASTIC_MAGNITUDE = (100.0, 250.0)  # mean ~0.6, max ~3 voxels of displacement


def margin_factor(aug: Augmentation) -> float:
    """How much larger than the patch the crop fed to the spatial transform must be (1.0 without one)."""
    if not spatial(aug):
        return 1.0
    angle = math.radians(max(abs(a) for a in aug.rotate_deg))
    return max(1.0, max(aug.scale)) * (math.cos(angle) + math.sin(angle)) * (1.15 if aug.elastic else 1.0)


def spatial(aug: Augmentation) -> bool:
    """Does the config ask for a spatial transform (rotation, scaling or elastic deformation)?"""
    return any(aug.rotate_deg) or aug.scale[0] != 1.0 or aug.scale[1] != 1.0 or aug.elastic


def build_augmentation(aug: Augmentation, patch_zyx: tuple[int, int, int], target_modes: dict[str, str]):
    """A MONAI Compose mapping a patch dict cut at ``patch_zyx`` x margin_factor to an augmented dict at
    ``patch_zyx``; ``target_modes`` {target name: "nearest" | "bilinear"}. Seed it with ``set_random_state``."""
    from monai.transforms import (
        Compose,
        Rand3DElasticd,
        RandAdjustContrastd,
        RandAffined,
        RandFlipd,
        RandGaussianNoised,
        RandGaussianSmoothd,
        RandScaleIntensityd,
        RandShiftIntensityd,
        ResizeWithPadOrCropd,
    )

    keys = ["image", *target_modes]
    modes = ["bilinear", *target_modes.values()]
    p = aug.probability
    transforms = []
    if spatial(aug):
        geometry = {"rotate_range": [math.radians(a) for a in aug.rotate_deg[::-1]],  # array order z, y, x
                    "scale_range": [(aug.scale[0] - 1.0, aug.scale[1] - 1.0)] * 3,
                    "spatial_size": patch_zyx, "mode": modes, "padding_mode": "border", "prob": p}
        if aug.elastic:
            transforms.append(Rand3DElasticd(keys, sigma_range=ELASTIC_SIGMA, magnitude_range=ELASTIC_MAGNITUDE,
                                             **geometry))
        else:
            transforms.append(RandAffined(keys, cache_grid=True, **geometry))
    transforms.append(ResizeWithPadOrCropd(keys, patch_zyx))  # the patch itself when nothing spatial ran
    for axis in aug.flip_axes:  # model-grid axis x=0, y=1, z=2 -> array spatial axis 2, 1, 0
        transforms.append(RandFlipd(keys, prob=0.5, spatial_axis=2 - axis))
    if aug.intensity_scale:
        transforms.append(RandScaleIntensityd("image", factors=aug.intensity_scale, prob=p))
    if aug.intensity_shift:
        transforms.append(RandShiftIntensityd("image", offsets=aug.intensity_shift, prob=p))
    if aug.gamma[0] != 1.0 or aug.gamma[1] != 1.0:
        transforms.append(RandAdjustContrastd("image", gamma=tuple(aug.gamma), prob=p))
    if aug.noise_std:
        transforms.append(RandGaussianNoised("image", std=aug.noise_std, prob=p))
    if aug.blur_sigma[1] > 0:
        sigma = tuple(aug.blur_sigma)
        transforms.append(RandGaussianSmoothd("image", sigma_x=sigma, sigma_y=sigma, sigma_z=sigma, prob=p))
    return Compose(transforms)


def augment(transform, patch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``patch`` through ``transform`` as float32 arrays with a channel axis (targets given without one get
    one added; callers drop it if they need)."""
    data = {k: v if v.ndim == 4 else v[None] for k, v in patch.items()}
    out = transform(data)
    return {k: np.asarray(out[k], dtype=np.float32) for k in data}
