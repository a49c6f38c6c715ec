"""Per-label statistics of an image under a label map: volume, intensity in the image's units, PET SUV."""

from __future__ import annotations

import csv
import io

import numpy as np
from scipy import ndimage

from viewer.core.errors import LabelMapError
from viewer.core.volume import Volume

#: SUVpeak: mean SUV in a 1 cm^3 sphere (radius 6.2 mm) centred on the hottest voxel of the label.
SUV_PEAK_RADIUS_MM = 6.2


def _peak(image: Volume, mask: np.ndarray, values: np.ndarray) -> float:
    from viewer.core.editing import sphere_region

    flat = np.flatnonzero(mask)
    hottest = flat[int(np.argmax(values))]
    k, j, i = np.unravel_index(hottest, mask.shape)
    box, sphere = sphere_region(image, image.index_to_world((i, j, k)), SUV_PEAK_RADIUS_MM)
    return float(image.array[box][sphere].astype(np.float64).mean())


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
            row.update(suv_max=float(values.max()), suv_peak=_peak(image, mask, values),
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
