"""Measurements in world mm: ruler, angle, and ellipse/rectangle ROIs on a slice with statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from viewer.core.volume import Volume


def distance_mm(a, b) -> float:
    """Length of the segment a-b (world mm)."""
    return float(np.linalg.norm(np.asarray(b, float) - np.asarray(a, float)))


def angle_deg(a, vertex, b) -> float:
    """Angle a-vertex-b in degrees."""
    u = np.asarray(a, float) - np.asarray(vertex, float)
    v = np.asarray(b, float) - np.asarray(vertex, float)
    cos = float(u @ v) / max(float(np.linalg.norm(u) * np.linalg.norm(v)), 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


@dataclass
class Measurement:
    """A ruler ('ruler', 2 points), angle ('angle', 3 points) or ROI ('ellipse' | 'rectangle', 2 corner
    points on one axial slice); JSON-serialisable with ``asdict``."""

    kind: str
    points_mm: list[list[float]]
    label: str = ""
    values: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def roi_statistics(image: Volume, corner_a, corner_b, shape: str = "ellipse") -> dict:
    """Mean/std/min/max (image units) and area (mm2) of an axial ROI spanned by two world corners.

    The ROI lies on the axial slice nearest to ``corner_a``; 'ellipse' is inscribed in the rectangle.
    """
    ia, ib = image.world_to_index(corner_a), image.world_to_index(corner_b)
    k = int(np.clip(np.rint(ia[2]), 0, image.array.shape[0] - 1))
    x0, x1 = sorted((ia[0], ib[0]))
    y0, y1 = sorted((ia[1], ib[1]))
    ys, xs = np.mgrid[0: image.array.shape[1], 0: image.array.shape[2]]
    if shape == "rectangle":
        mask = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    elif shape == "ellipse":
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
        mask = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
    else:
        raise ValueError(f"ROI shape must be ellipse or rectangle, got {shape!r}")
    values = image.array[k][mask].astype(np.float64)
    if values.size == 0:
        raise ValueError("the ROI contains no voxel centre")
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()), "voxels": int(values.size),
            "area_mm2": float(values.size * image.spacing[0] * image.spacing[1]), "units": image.units, "slice": k}
