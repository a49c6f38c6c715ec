"""Training patches: where to centre them (balanced over labels) and how to cut them out of a prepared sample."""

from __future__ import annotations

import numpy as np

from ai.training.config import Sampling
from ai.training.tasks import Sample

#: the cards of models trained on these patches: inference pads a slab thinner than the patch the same way (cut)
WINDOW_PADDING = "replicate"


def choose_centre(sample: Sample, sampling: Sampling, rng: np.random.Generator) -> np.ndarray:
    """A (z, y, x) voxel: with probability ``foreground_fraction`` on a labelled voxel (the class drawn uniformly
    among those present when ``balance_labels``, else in proportion to their candidate counts), else anywhere."""
    classes = [k for k, c in sample.centres.items() if len(c)]
    shape = sample.image.shape[1:]
    if classes and rng.random() < sampling.foreground_fraction:
        if sampling.balance_labels:
            k = classes[rng.integers(len(classes))]
        else:
            counts = np.array([len(sample.centres[c]) for c in classes], float)
            k = classes[rng.choice(len(classes), p=counts / counts.sum())]
        candidates = sample.centres[k]
        return candidates[rng.integers(len(candidates))]
    return np.array([rng.integers(s) for s in shape])


def cut(array: np.ndarray, centre: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """The ``size`` (z, y, x) box of ``array`` (spatial axes last) centred on ``centre``; parts outside the array
    repeat its edge voxels (as the spatial augmentation pads), so a patch never shows an artificial border."""
    spatial = array.shape[-3:]
    lo = [int(c) - s // 2 for c, s in zip(centre, size, strict=True)]
    inside = tuple(slice(max(a, 0), min(a + s, n)) for a, s, n in zip(lo, size, spatial, strict=True))
    part = array[(..., *inside)]
    pad = [(max(-a, 0), max(a + s - n, 0)) for a, s, n in zip(lo, size, spatial, strict=True)]
    if any(p != (0, 0) for p in pad):
        part = np.pad(part, [(0, 0)] * (array.ndim - 3) + pad, mode="edge")
    return part


def draw_patch(sample: Sample, size: tuple[int, int, int], sampling: Sampling,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """{"image": (C, *size), target name: (..., *size)} cut around choose_centre's voxel."""
    centre = choose_centre(sample, sampling, rng)
    return {"image": cut(sample.image, centre, size),
            **{name: cut(target, centre, size) for name, target in sample.targets.items()}}
