"""Findings from a model's output: connected components of its labels (or a detector's heat-map peaks) in LPS mm."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ai.engine import NO_MIRRORING, SegmentationResult, run_segmentation
from ai.model import LoadedModel, ModelCard
from viewer.core.errors import ModelError
from viewer.core.progress import CancelToken, ProgressCallback
from viewer.core.volume import Volume, box_corners

#: Tasks whose output is a label map that findings can be taken from.
DETECTING_TASKS = ("detection", "segmentation")
#: Smallest finding (voxels of the label map) when the model card states none.
MIN_VOXELS = 5


def card_min_voxels(card: ModelCard) -> int:
    """The smallest finding ``card`` allows: its ``detection`` min_voxels, else MIN_VOXELS."""
    return card.detection.get("min_voxels", MIN_VOXELS)


def _box_corners(box: tuple[slice, slice, slice]) -> np.ndarray:
    """The 8 corners (x, y, z continuous index) of a (z, y, x) slice box, at the outer voxel edges."""
    return box_corners([s.start - 0.5 for s in box[::-1]], [s.stop - 0.5 for s in box[::-1]])


def detections_from_labels(result: SegmentationResult, min_voxels: int = MIN_VOXELS) -> list[dict]:
    """Connected components (26-connected) of each label as detections ``{label, name, score, center_mm, box_mm}``.

    ``score``: the component's highest probability of its label (1.0 without probabilities);
    ``center_mm``: its probability-weighted centroid, world LPS mm; ``box_mm``: [[x0, y0, z0], [x1, y1, z1]],
    the world axis-aligned box enclosing its voxels (their outer edges, half a voxel beyond the outermost
    centres). Components under ``min_voxels`` (a model's: card_min_voxels) are dropped. Sorted by
    label, then score (highest first).
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


@dataclass
class DetectionResult:
    """A model's findings on the first input's grid, with what the run could not do (``warnings``)."""

    detections: list[dict]
    model_id: str
    model_version: str
    task: str
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The ``radview detect`` document: {model, coordinates: "LPS mm", detections}."""
        return {"model": {"id": self.model_id, "version": self.model_version, "task": self.task},
                "coordinates": "LPS mm", "detections": self.detections}


def run_detection(model: LoadedModel, volumes: list[Volume], *, device="auto", tta: bool = False,
                  progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                  roi=None) -> DetectionResult:
    """Findings of ``model`` on ``volumes`` (registered; the first defines the grid), as detections_from_labels
    with the card's threshold (card_min_voxels); a card ``detection`` of kind "heatmap" (a centre-point
    detector): the peaks of its heat map (ai.detection_heatmap), in the same JSON shape.

    A detection model (card task "detection") gives its lesion-type labels; a segmentation model gives one
    finding per connected structure. Raises ModelError for other tasks or mismatched inputs, Cancelled when
    ``cancel`` fires.
    """
    if model.card.task not in DETECTING_TASKS:
        raise ModelError(f"model {model.card.id} is a {model.card.task} model; detection needs a "
                         f"{' or '.join(DETECTING_TASKS)} model")
    if model.card.detection.get("kind") == "heatmap":  # a centre-point detector: peaks of its heat map
        from ai.detection_heatmap import heatmap_detections

        found = heatmap_detections(model, volumes, device=device, tta=tta, progress=progress, cancel=cancel, roi=roi)
        skipped = [NO_MIRRORING] if tta and not model.mirror_axes else []
        return DetectionResult(found, model.card.id, model.card.version, model.card.task, skipped)
    result = run_segmentation(model, volumes, device=device, tta=tta, progress=progress, cancel=cancel,
                              return_probabilities=True, roi=roi)
    return DetectionResult(detections_from_labels(result, card_min_voxels(model.card)), model.card.id,
                           model.card.version, model.card.task, list(result.warnings))
