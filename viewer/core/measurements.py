"""Measurements in world mm: ruler, angle, and ellipse/rectangle ROIs on a slice with statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from viewer.core.slicing import ORIENTATIONS, view_axes
from viewer.core.volume import Volume

#: Measurement kind -> number of world points that define it.
POINTS_PER_KIND = {"ruler": 2, "angle": 3, "ellipse": 2, "rectangle": 2}
ROI_KINDS = ("ellipse", "rectangle")
#: Slack (in voxels) for a voxel centre lying exactly on an ROI border (rounding of world <-> index).
_EDGE_EPS = 1e-6


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
    """A ruler ('ruler', 2 points), angle ('angle', 3 points: arm end, vertex, arm end) or ROI
    ('ellipse' | 'rectangle', 2 corner points) drawn on one slice of the ``orientation`` view of the
    image identified by ``image`` (see :func:`image_key`); JSON-serialisable with ``asdict``."""

    kind: str
    points_mm: list[list[float]]
    label: str = ""
    values: dict = field(default_factory=dict)
    orientation: str = "axial"
    image: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def text(self) -> str:
        """What the views print beside the measurement, e.g. '42.3 mm', '87.5°', ROI statistics."""
        v = self.values
        if self.kind == "ruler":
            return f"{v['length_mm']:.1f} mm"
        if self.kind == "angle":
            return f"{v['angle_deg']:.1f}°"
        units = v.get("units", "")
        return (f"mean {v['mean']:.1f} ± {v['std']:.1f} {units}\nmin {v['min']:.6g}  max {v['max']:.6g}\n"
                f"area {v['area_mm2']:.1f} mm²")


def image_key(image: Volume) -> str:
    """A stable identifier of the image a measurement belongs to: its DICOM Series Instance UID, else
    the file it was read from."""
    meta = image.meta or {}
    files = meta.get("files") or [""]
    return str(meta.get("series_uid") or meta.get("source_path") or files[0])


def slice_of(image: Volume, orientation: str, world) -> int:
    """Index of the ``orientation`` view's slice through world point ``world`` (as the views show it)."""
    axes = view_axes(image, orientation)
    _, _, k = axes.index_to_plane(image.world_to_index(world), image.size)
    return int(np.rint(k))


def measure(kind: str, points_mm, image: Volume, orientation: str = "axial", label: str = "") -> Measurement:
    """A Measurement of ``kind`` from its world points, with its values computed on ``image``.

    Ruler: ``length_mm``; angle: ``angle_deg`` at the middle point; ROIs: :func:`roi_statistics` on the
    ``orientation`` slice through the first corner. Raises ValueError for a wrong kind or point count.
    """
    if kind not in POINTS_PER_KIND:
        raise ValueError(f"measurement kind must be one of {tuple(POINTS_PER_KIND)}, got {kind!r}")
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    points = [[float(c) for c in p] for p in points_mm]
    if len(points) != POINTS_PER_KIND[kind]:
        raise ValueError(f"a {kind} needs {POINTS_PER_KIND[kind]} points, got {len(points)}")
    if kind == "ruler":
        values = {"length_mm": distance_mm(*points)}
    elif kind == "angle":
        values = {"angle_deg": angle_deg(*points)}
    else:
        values = roi_statistics(image, points[0], points[1], kind, orientation)
    return Measurement(kind, points, label, values, orientation, image_key(image))


def roi_statistics(image: Volume, corner_a, corner_b, shape: str = "ellipse", orientation: str = "axial") -> dict:
    """Mean/std/min/max (image units) and area (mm2) of an ROI spanned by two world corners on a slice.

    The ROI lies on the ``orientation`` view's slice nearest to ``corner_a``, in that slice's pixel
    grid (anisotropic pixels are scaled by their spacing); 'ellipse' is inscribed in the rectangle.
    A voxel counts when its centre lies inside.
    """
    axes = view_axes(image, orientation)
    ca = axes.index_to_plane(image.world_to_index(corner_a), image.size)
    cb = axes.index_to_plane(image.world_to_index(corner_b), image.size)
    n_slices = image.size[axes.slice_axis]
    k = int(np.clip(np.rint(ca[2]), 0, n_slices - 1))
    plane = axes.extract(image.array, k)
    c0, c1 = sorted((ca[0], cb[0]))
    r0, r1 = sorted((ca[1], cb[1]))
    rows, cols = np.ogrid[0: plane.shape[0], 0: plane.shape[1]]
    if shape == "rectangle":
        inside_cols = (cols >= c0 - _EDGE_EPS) & (cols <= c1 + _EDGE_EPS)
        mask = inside_cols & (rows >= r0 - _EDGE_EPS) & (rows <= r1 + _EDGE_EPS)
    elif shape == "ellipse":
        cc, cr = (c0 + c1) / 2, (r0 + r1) / 2
        rc, rr = max((c1 - c0) / 2, 0.5), max((r1 - r0) / 2, 0.5)
        mask = ((cols - cc) / rc) ** 2 + ((rows - cr) / rr) ** 2 <= 1 + _EDGE_EPS
    else:
        raise ValueError(f"ROI shape must be ellipse or rectangle, got {shape!r}")
    values = plane[mask].astype(np.float64)
    if values.size == 0:
        raise ValueError("the ROI contains no voxel centre")
    pixel_mm2 = image.spacing[axes.right_axis] * image.spacing[axes.up_axis]
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max()), "voxels": int(values.size), "area_mm2": float(values.size * pixel_mm2),
            "units": image.units, "slice": k, "orientation": orientation}
