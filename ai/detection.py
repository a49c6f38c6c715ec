"""Findings from a model's output: connected components of its labels as {label, score, centre, box} in LPS mm."""

from __future__ import annotations

import numpy as np

from ai.engine import SegmentationResult


def _box_corners(box: tuple[slice, slice, slice]) -> np.ndarray:
    """The 8 corners (x, y, z continuous index) of a (z, y, x) slice box, at the outer voxel edges."""
    lo = [s.start - 0.5 for s in box[::-1]]
    hi = [s.stop - 0.5 for s in box[::-1]]
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])], float)


def detections_from_labels(result: SegmentationResult, min_voxels: int = 5) -> list[dict]:
    """Connected components (26-connected) of each label as detections ``{label, name, score, center_mm, box_mm}``.

    ``score``: the component's highest probability of its label (1.0 without probabilities);
    ``center_mm``: its probability-weighted centroid, world LPS mm; ``box_mm``: [[x0, y0, z0], [x1, y1, z1]],
    the world axis-aligned box enclosing its voxels (their outer edges, half a voxel beyond the outermost
    centres). Components under ``min_voxels`` are dropped. Sorted by label, then score (highest first).
    """
    from scipy import ndimage

    vol = result.labels
    prob = result.probabilities.array if result.probabilities is not None else None
    out = []
    for label, name in result.names.items():
        comps, _ = ndimage.label(vol.array == label, structure=np.ones((3, 3, 3), bool))
        found = []
        for i, box in enumerate(ndimage.find_objects(comps), start=1):
            if box is None:
                continue
            mask = comps[box] == i
            if mask.sum() < min_voxels:
                continue
            zyx = np.argwhere(mask) + [s.start for s in box]
            weights = prob[box][mask].astype(np.float64) if prob is not None else np.ones(len(zyx))
            centre = vol.index_to_world((zyx[:, ::-1] * weights[:, None]).sum(axis=0) / weights.sum())
            corners = vol.index_to_world(_box_corners(box))
            score = float(weights.max()) if prob is not None else 1.0
            found.append({"label": int(label), "name": name, "score": round(score, 4),
                          "center_mm": [round(float(v), 3) for v in centre],
                          "box_mm": [[round(float(v), 3) for v in corners.min(axis=0)],
                                     [round(float(v), 3) for v in corners.max(axis=0)]]})
        out.extend(sorted(found, key=lambda d: -d["score"]))
    return out
