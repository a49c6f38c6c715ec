"""Compare two segmentations of one image (two models, or model vs hand): per-label Dice and agreement."""

from __future__ import annotations

import numpy as np

#: Agreement map codes.
NEITHER, BOTH, ONLY_A, ONLY_B = 0, 1, 2, 3


def dice_table(a: np.ndarray, b: np.ndarray, names: dict[int, str] | None = None) -> list[dict]:
    """Per label present in either map: Dice, voxels in A, in B, and in both."""
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    names = names or {}
    rows = []
    for label in sorted((set(np.unique(a)) | set(np.unique(b))) - {0}):
        ma, mb = a == label, b == label
        both = int((ma & mb).sum())
        na, nb = int(ma.sum()), int(mb.sum())
        rows.append({"label": int(label), "name": names.get(int(label), f"label_{label}"),
                     "dice": 2 * both / (na + nb) if na + nb else 1.0, "voxels_a": na, "voxels_b": nb,
                     "voxels_both": both})
    return rows


def agreement_map(a: np.ndarray, b: np.ndarray, label: int | None = None) -> np.ndarray:
    """uint8 map: BOTH where A and B agree on (the label / any foreground), ONLY_A, ONLY_B, else NEITHER."""
    ma, mb = (a > 0, b > 0) if label is None else (a == label, b == label)
    out = np.zeros(a.shape, np.uint8)
    out[ma & mb] = BOTH
    out[ma & ~mb] = ONLY_A
    out[~ma & mb] = ONLY_B
    return out
