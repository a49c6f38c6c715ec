"""Centre-point (CenterNet-style) detection: heat-map targets for training, peak decoding into findings in LPS mm.

A centre-point detector (ai.nets.detector) gives two channels on the model grid: a lesion-centre heat map
(sigmoid; 1 at a centre, a Gaussian of sigma ``target_sigma_mm(diameter)`` around it) and the lesion diameter
(sigmoid x MAX_DIAMETER_MM). Findings are the heat map's local maxima above the card's threshold, at least
``min_distance_mm`` apart, refined to sub-voxel centres; the same decoding serves the app and the training
evaluation (ai.training.detection_task).
"""

from __future__ import annotations

import numpy as np

from viewer.core.volume import Volume

#: The size channel's sigmoid spans lesion diameters 0..MAX_DIAMETER_MM.
MAX_DIAMETER_MM = 60.0
#: Card defaults when ``detection`` states no threshold / min distance.
DEFAULT_THRESHOLD = 0.3
DEFAULT_MIN_DISTANCE_MM = 12.0


def target_sigma_mm(diameter_mm: float) -> float:
    """Sigma (mm) of the Gaussian heat-map target of a lesion of ``diameter_mm``: a quarter of it, at least 4 mm."""
    return max(diameter_mm / 4.0, 4.0)


def heatmap_targets(grid: Volume, lesions: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heat, size, size_mask), each (z, y, x) float32 on ``grid``, for ``lesions`` [{"center_mm", "diameter_mm"}].

    heat: per lesion a Gaussian (target_sigma_mm) around its centre scaled so the nearest voxel is exactly 1
    (CenterNet's positives), the maximum where lesions overlap; size: diameter / MAX_DIAMETER_MM where that
    lesion's heat is >= 0.5; size_mask: 1 there (where the size loss applies), else 0.
    """
    shape = tuple(grid.size[::-1])
    heat = np.zeros(shape, np.float32)
    size = np.zeros(shape, np.float32)
    mask = np.zeros(shape, np.float32)
    spacing = np.asarray(grid.spacing)
    for lesion in lesions:
        centre = np.asarray(lesion["center_mm"], float)
        sigma = target_sigma_mm(float(lesion["diameter_mm"]))
        c = grid.world_to_index(centre)  # (x, y, z) continuous index
        r = np.ceil(3 * sigma / spacing).astype(int)
        lo = np.maximum(np.floor(c).astype(int) - r, 0)
        hi = np.minimum(np.ceil(c).astype(int) + r + 1, grid.size)
        if np.any(hi <= lo):
            continue  # outside the grid
        ix = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij"), -1)
        world = grid.index_to_world(ix.reshape(-1, 3)).reshape(ix.shape)
        g = np.exp(-((world - centre) ** 2).sum(-1) / (2 * sigma ** 2))  # (x, y, z)
        g = np.minimum(g / g.max(), 1.0).transpose(2, 1, 0).astype(np.float32)
        box = tuple(slice(a, b) for a, b in zip(lo[::-1], hi[::-1], strict=True))
        near = g >= 0.5
        size[box][near & (g >= heat[box])] = float(lesion["diameter_mm"]) / MAX_DIAMETER_MM
        mask[box][near] = 1.0
        np.maximum(heat[box], g, out=heat[box])
    return heat, size, mask


def _subvoxel_offset(lower: float, centre: float, upper: float) -> float:
    """Offset (voxels, within +-0.5) of the peak of the parabola through log values: exact for a Gaussian."""
    a, b, c = (np.log(max(v, 1e-12)) for v in (lower, centre, upper))
    curvature = a - 2 * b + c
    return 0.0 if curvature >= 0 else float(np.clip((a - c) / (2 * curvature), -0.5, 0.5))


def _peaks(heat: np.ndarray, threshold: float) -> np.ndarray:
    """(z, y, x) indices of the 26-neighbourhood local maxima of ``heat`` >= ``threshold``, highest first."""
    from scipy import ndimage

    local = ndimage.maximum_filter(heat, size=3, mode="constant", cval=0.0)
    zyx = np.argwhere((heat >= threshold) & (heat >= local))
    return zyx[np.argsort(-heat[tuple(zyx.T)], kind="stable")]


def decode_heatmap(heat: np.ndarray, size: np.ndarray, grid: Volume, *, threshold: float = DEFAULT_THRESHOLD,
                   min_distance_mm: float = DEFAULT_MIN_DISTANCE_MM, label: int = 1, name: str = "lesion"
                   ) -> list[dict]:
    """Findings ``{label, name, score, center_mm, box_mm}`` from a heat map and a size map (diameter mm), both
    (z, y, x) on ``grid``.

    Local maxima >= ``threshold``, highest first, each kept unless a kept one lies within ``min_distance_mm``;
    ``score``: the heat at the peak; ``center_mm``: the peak refined per axis by a parabola through the log
    heat of its two neighbours (exact for a Gaussian), world LPS mm; ``box_mm``: the world box of the
    predicted diameter about the centre, [[x0, y0, z0], [x1, y1, z1]]. Same JSON shape as ai.detection's.
    """
    kept: list[np.ndarray] = []
    out = []
    for zyx in _peaks(heat, threshold):
        offset = np.zeros(3)
        for axis in range(3):  # axis of (z, y, x)
            if 0 < zyx[axis] < heat.shape[axis] - 1:
                lo, hi = zyx.copy(), zyx.copy()
                lo[axis] -= 1
                hi[axis] += 1
                offset[axis] = _subvoxel_offset(heat[tuple(lo)], heat[tuple(zyx)], heat[tuple(hi)])
        centre = grid.index_to_world((zyx + offset)[::-1])
        if any(np.linalg.norm(centre - k) < min_distance_mm for k in kept):
            continue
        kept.append(centre)
        radius = float(size[tuple(zyx)]) / 2
        out.append({"label": int(label), "name": name, "score": round(float(heat[tuple(zyx)]), 4),
                    "center_mm": [round(float(v), 3) for v in centre],
                    "box_mm": [[round(float(v - radius), 3) for v in centre],
                               [round(float(v + radius), 3) for v in centre]]})
    return out


def predict_heatmap(model, volumes: list[Volume], *, device="auto", tta: bool = False, progress=None,
                    cancel=None, roi=None) -> tuple[np.ndarray, np.ndarray, Volume]:
    """(heat 0..1, diameter mm, the model grid) of a centre-point detector on ``volumes``: ai.engine's
    preprocess and Gaussian-weighted sliding windows (its logits averaged, then the sigmoid). ``roi``: the
    network sees at least one patch of context around it (ai.engine.context_roi)."""
    from ai.engine import context_roi, predict, preprocess

    x, grid = preprocess(model, volumes, context_roi(model, volumes[0], roi) if roi is not None else None)
    logits = predict(model, x, device=device, tta=tta, progress=progress, cancel=cancel, softmax=False)
    out = 1.0 / (1.0 + np.exp(-logits))
    return out[0], out[1] * MAX_DIAMETER_MM, grid


def inside_box(detections: list[dict], roi) -> list[dict]:
    """The ``detections`` whose centre lies in the world box ``roi`` ((x0, y0, z0), (x1, y1, z1))."""
    box = np.asarray(roi, float)
    lo, hi = box.min(axis=0), box.max(axis=0)
    return [d for d in detections if np.all((np.asarray(d["center_mm"]) >= lo) & (np.asarray(d["center_mm"]) <= hi))]


def heatmap_detections(model, volumes: list[Volume], *, device="auto", tta: bool = False, progress=None,
                       cancel=None, roi=None) -> list[dict]:
    """Findings of centre-point detector ``model`` on ``volumes`` with its card's threshold and min distance
    (predict_heatmap then decode_heatmap); within ``roi`` when given."""
    heat, size, grid = predict_heatmap(model, volumes, device=device, tta=tta, progress=progress, cancel=cancel,
                                       roi=roi)
    spec = model.card.detection
    label, name = next((k, v) for k, v in sorted(model.card.labels.items()) if k)
    found = decode_heatmap(heat, size, grid, threshold=spec.get("threshold", DEFAULT_THRESHOLD),
                           min_distance_mm=spec.get("min_distance_mm", DEFAULT_MIN_DISTANCE_MM), label=label, name=name)
    return inside_box(found, roi) if roi is not None else found
