"""Per-label statistics of an image under a label map: volume, intensity in the image's units, PET SUV."""

from __future__ import annotations

import csv
import io

import numpy as np
from scipy import ndimage

from viewer.core.errors import LabelMapError
from viewer.core.volume import Volume

#: SUVpeak: the highest mean SUV in a 1 cm^3 sphere (radius 6.2 mm) centred on a voxel of the label (PERCIST).
SUV_PEAK_RADIUS_MM = 6.2


def _peak(image: Volume, mask: np.ndarray) -> float:
    """SUVpeak as PERCIST defines it: the sphere goes where its mean is highest, with its centre in the label
    (the hottest voxel need not be its centre: a lone hot voxel at a lesion's edge would put half the sphere in
    the background). The sphere is the voxels within SUV_PEAK_RADIUS_MM of the centre, in mm of the image's own
    spacing; it is cut by the image's edge, never padded. Only centres whose sphere holds a voxel at least as
    hot as the mean of the sphere on the hottest voxel are tried: a sphere with a higher mean holds such a voxel."""
    sphere, reach = _sphere(image.spacing)
    box = _grown(np.nonzero(mask), reach, mask.shape)  # every sphere centred in the label, up to the image's edge
    values, inside = image.array[box].astype(np.float64), mask[box]
    hottest = np.unravel_index(int(np.argmax(np.where(inside, values, -np.inf))), values.shape)
    near = _grown([[v] for v in hottest], reach, values.shape)
    weights = sphere[tuple(slice(b.start - v + n, b.stop - v + n)
                           for b, v, n in zip(near, hottest, reach, strict=True))]  # the sphere's part in the image
    bound = float((values[near] * weights).sum() / weights.sum())
    hot = values >= bound
    region = _grown(np.nonzero(hot), tuple(2 * n for n in reach), values.shape)  # the candidates and their spheres
    candidates = inside[region] & ndimage.binary_dilation(hot[region], structure=sphere > 0)
    sums = ndimage.correlate(values[region], sphere, mode="constant", cval=0.0)
    counts = ndimage.correlate(np.ones_like(values[region]), sphere, mode="constant", cval=0.0)
    return float((sums / counts)[candidates].max())


def _sphere(spacing) -> tuple[np.ndarray, tuple[int, ...]]:
    """(0/1 weights (z, y, x), reach in voxels along z, y, x) of the SUVpeak sphere on a grid of ``spacing``."""
    reach = tuple(int(np.floor(SUV_PEAK_RADIUS_MM / s)) for s in spacing[::-1])
    dz, dy, dx = np.mgrid[tuple(slice(-n, n + 1) for n in reach)]
    sz, sy, sx = spacing[::-1]
    return ((dz * sz) ** 2 + (dy * sy) ** 2 + (dx * sx) ** 2 <= SUV_PEAK_RADIUS_MM ** 2).astype(np.float64), reach


def _grown(where, reach: tuple[int, ...], shape) -> tuple[slice, ...]:
    """The bounding box of the voxels ``where`` (z, y, x index arrays) grown by ``reach`` voxels per axis, cut to
    ``shape``."""
    return tuple(slice(max(int(np.min(a)) - n, 0), min(int(np.max(a)) + n + 1, size))
                 for a, n, size in zip(where, reach, shape, strict=True))


def label_statistics(image: Volume, labels: Volume | np.ndarray, names: dict[int, str] | None = None) -> list[dict]:
    """One dict per label present: label, name, voxels, volume_ml, mean, std, min, max, units,
    centroid_mm (world LPS), bbox_index ([x0, y0, z0], [x1, y1, z1]); PET (SUVbw) adds suv_max, suv_peak,
    mtv_ml (label volume) and tlg (mtv_ml * SUVmean). ``labels`` must be on the image grid."""
    image.require_scalar("label statistics")
    arr = labels.array if isinstance(labels, Volume) else np.asarray(labels)
    if arr.shape != image.array.shape:
        raise LabelMapError(f"label map {arr.shape} is not on the image grid {image.array.shape}")
    names = names or {}
    ids = [int(v) for v in np.unique(arr) if v != 0]
    if not ids:
        return []
    voxel_ml = float(np.prod(image.spacing)) / 1000.0
    img = image.array
    count = ndimage.sum_labels(np.ones_like(arr, dtype=np.uint8), arr, ids)
    total = ndimage.sum_labels(img, arr, ids)  # float64 accumulators, no float64 volume
    sq = ndimage.labeled_comprehension(img, arr, ids, lambda v: float(np.sum(v.astype(np.float64) ** 2)),
                                       np.float64, 0)
    lo = ndimage.minimum(img, arr, ids)
    hi = ndimage.maximum(img, arr, ids)
    centres = ndimage.center_of_mass(np.ones_like(arr, dtype=np.uint8), arr, ids)
    boxes = ndimage.find_objects(arr)
    out = []
    for n, label in enumerate(ids):
        mean = total[n] / count[n]
        std = float(np.sqrt(max(sq[n] / count[n] - mean**2, 0.0)))
        zyx = np.asarray(centres[n])
        box = boxes[label - 1]
        row = {
            "label": label, "name": names.get(label, f"label_{label}"), "voxels": int(count[n]),
            "volume_ml": round(float(count[n]) * voxel_ml, 6), "mean": float(mean), "std": std,
            "min": float(lo[n]), "max": float(hi[n]), "units": image.units,
            "centroid_mm": [float(v) for v in image.index_to_world(zyx[::-1])],
            "bbox_index": [[box[2].start, box[1].start, box[0].start], [box[2].stop - 1, box[1].stop - 1,
                                                                         box[0].stop - 1]],
        }
        if image.units == "SUVbw":
            mask = arr == label
            values = img[mask]
            row.update(suv_max=float(values.max()), suv_peak=_peak(image, mask),
                       mtv_ml=row["volume_ml"], tlg=row["volume_ml"] * float(mean))
        out.append(row)
    return out


def statistics_csv(rows: list[dict]) -> str:
    """The statistics table as CSV text (one row per label)."""
    if not rows:
        return ""
    buf = io.StringIO()
    keys = [k for k in rows[0] if k not in ("centroid_mm", "bbox_index")] + ["centroid_mm"]
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "centroid_mm": " ".join(f"{v:.2f}" for v in r["centroid_mm"])})
    return buf.getvalue()
