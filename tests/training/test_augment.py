"""Augmentation keeps targets aligned with the image; patches are centred balanced over labels."""

from __future__ import annotations

import math

import numpy as np

from ai.training.augment import augment, build_augmentation, margin_factor
from ai.training.config import Augmentation, Sampling
from ai.training.sampling import choose_centre, cut
from ai.training.tasks import Sample

PATCH = (16, 24, 24)


def textured_case():
    """An image of smooth blobs and its label map = the image thresholded (the relation augmentation must keep)."""
    z, y, x = np.mgrid[:40, :56, :56].astype(np.float32)
    image = (np.sin(x / 4) + np.cos(y / 5) + np.sin(z / 3 + x / 9))[None]
    return image, (image[0] > 1.0).astype(np.uint8)


def augmented_pairs(aug: Augmentation, n: int, seed: int = 0):
    transform = build_augmentation(aug, PATCH, {"labels": "nearest"})
    transform.set_random_state(seed)
    crop = tuple(math.ceil(s * margin_factor(aug)) for s in PATCH)
    image, labels = textured_case()
    centre = np.array([20, 28, 28])
    for _ in range(n):
        out = augment(transform, {"image": cut(image, centre, crop), "labels": cut(labels, centre, crop)})
        yield out["image"][0], out["labels"][0], cut(image, centre, PATCH)[0]


def test_spatial_augmentation_moves_labels_with_the_image():
    aug = Augmentation(rotate_deg=[15, 15, 15], scale=[0.85, 1.2], elastic=True, flip_axes=[2], probability=1.0)
    for image, labels, original in augmented_pairs(aug, 4):
        assert image.shape == labels.shape == PATCH
        assert set(np.unique(labels)) <= {0.0, 1.0}
        assert np.abs(image - original).mean() > 0.2  # the image did move
        agreement = ((image > 1.0) == (labels > 0.5)).mean()
        assert agreement > 0.95, agreement
        assert ((original > 1.0) == (labels > 0.5)).mean() < agreement - 0.05  # the labels moved with it


def test_intensity_augmentation_changes_the_image_only():
    aug = Augmentation(intensity_shift=0.1, intensity_scale=0.1, gamma=[0.7, 1.5], noise_std=0.05,
                       blur_sigma=[0.5, 1.0], probability=1.0)
    assert margin_factor(aug) == 1.0
    _, labels_in = textured_case()
    for image, labels, original in augmented_pairs(aug, 3):
        assert not np.allclose(image, original)
        assert np.array_equal(labels, cut(labels_in, np.array([20, 28, 28]), PATCH))


def test_patch_centres_are_balanced_over_labels():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[:10] = 1  # 4000 voxels
    labels[15, 15, 15] = 2  # 1 voxel
    centres = {1: np.argwhere(labels == 1), 2: np.argwhere(labels == 2)}
    sample = Sample("s", np.zeros((1, 20, 20, 20), np.float32), {"labels": labels}, centres)
    rng = np.random.default_rng(0)
    drawn = [labels[tuple(choose_centre(sample, Sampling(foreground_fraction=1.0), rng))] for _ in range(400)]
    assert 0.4 < np.mean(np.array(drawn) == 2) < 0.6
    unbalanced = Sampling(foreground_fraction=1.0, balance_labels=False)
    drawn = [labels[tuple(choose_centre(sample, unbalanced, rng))] for _ in range(400)]
    assert np.mean(np.array(drawn) == 2) < 0.02


def test_patches_at_the_edge_repeat_edge_voxels():
    array = np.arange(27, dtype=np.float32).reshape(1, 3, 3, 3)
    patch = cut(array, np.array([0, 0, 0]), (3, 3, 3))
    assert patch.shape == (1, 3, 3, 3) and patch[0, 0, 0, 0] == array[0, 0, 0, 0] and patch[0, 2, 2, 2] == 13
