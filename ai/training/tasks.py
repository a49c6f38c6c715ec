"""Training tasks: what a case becomes on the model grid, the loss, and the validation metrics, per card task.

The training loop (ai.training.loop) knows nothing task-specific; it asks the config's task, built once as
``task_for(config)``, for three things (the Task protocol):

- ``prepare(case, card) -> Sample``: the case's inputs on the model grid (``image`` (C, z, y, x) float32,
  normalised as the card says), its ``targets`` on the same grid (name -> (z, y, x) or (K, z, y, x) array) and
  the voxels patches may be centred on per class (``centres``, for balanced sampling);
- ``loss(outputs, targets) -> tensor``: the loss of a batch of network outputs against the batch of augmented
  target patches (torch tensors, (B, ...) with a channel axis);
- ``evaluate(model, cases, device=...) -> [{"name", "value", "data"}]``: metrics END TO END on the cases'
  original grids (segmentation: ai.engine.run_segmentation, Dice and HD95 per label, ``mean_dice``, ``mean_hd95``).

``target_modes`` says how spatial augmentation resamples each target ("nearest" for label maps, "bilinear"
for heat maps). A task is registered by one entry in TASKS, "module:Class" imported when a config names it
(detection lives in ai.training.detection_task); "TASK+adversarial" is the task a config with an ``adversarial``
section trains (ai.training.adversarial). A task may also run the network itself, ``forward(net, image)``
(segmentation with an edge head does).
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ai.model import LoadedModel, ModelCard
from ai.training.cases import Case
from viewer.core.errors import ConfigError

if TYPE_CHECKING:
    from ai.training.config import TrainConfig

#: card task -> "module:Class" of its Task
TASKS = {
    "segmentation": "ai.training.tasks:SegmentationTask",
    "detection": "ai.training.detection_task:DetectionTask",
    "segmentation+adversarial": "ai.training.gan_segmentation:GANSegmentationTask",
    "translation": "ai.training.translation_task:TranslationTask",
}
#: at most this many candidate patch centres are kept per class and case (a random subset)
MAX_CENTRES = 20000


@dataclass
class Sample:
    """One prepared case: ``image`` (C, z, y, x) float32 on the model grid, ``targets`` on the same grid,
    ``centres`` {class id: (N, 3) voxel indices (z, y, x)} patches may be centred on (class 0 never)."""

    name: str
    image: np.ndarray
    targets: dict[str, np.ndarray]
    centres: dict[int, np.ndarray] = field(default_factory=dict)


class Task(Protocol):
    """What the training loop asks of a task (see the module docstring)."""

    target_modes: dict[str, str]

    def prepare(self, case: Case, card: ModelCard) -> Sample: ...

    def loss(self, outputs, targets: dict): ...

    def evaluate(self, model: LoadedModel, cases: list[Case], *, device="cpu") -> list[dict]: ...


def task_for(config: TrainConfig) -> Task:
    """The Task named by ``config.task``, built with the config; ConfigError naming the config file if unknown."""
    known = [k for k in TASKS if "+" not in k]
    if config.task not in known:
        raise ConfigError(f"task {config.task!r} has no training task (known: {', '.join(known)})", config.path)
    key = f"{config.task}+adversarial"
    module, name = TASKS[key if config.adversarial is not None and key in TASKS else config.task].split(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"task {config.task!r} is not available ({err})", config.path) from err
    return cls(config)


def with_card_inputs(case: Case, card: ModelCard) -> Case:
    """``case`` with images read from files without a modality ("OT": NIfTI, NRRD, MHA) marked as the card's
    input channels say, in the units their normalisation needs (CT: HU; ``suv``: SUVbw): the config states
    what each training image is."""
    from ai.normalize import REQUIRED_UNITS

    images = []
    for vol, spec, norm in zip(case.images, card.inputs, card.normalization, strict=False):
        if vol.modality in ("", "OT") and spec.get("modality") not in (None, "any"):
            units = "HU" if spec["modality"] == "CT" else REQUIRED_UNITS.get(norm.get("kind"), vol.units)
            vol = vol.with_array(vol.array, modality=spec["modality"], units=units)
        images.append(vol)
    return dataclasses.replace(case, images=images + case.images[len(images):])


def class_centres(labels: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """{label id: (N, 3) voxel indices} of every label present in ``labels`` (at most MAX_CENTRES each)."""
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    ids, starts = np.unique(flat[order], return_index=True)
    out = {}
    for k, start, stop in zip(ids, starts, [*starts[1:], flat.size], strict=True):
        if k == 0:
            continue
        idx = order[start:stop]
        if len(idx) > MAX_CENTRES:
            idx = rng.choice(idx, MAX_CENTRES, replace=False)
        out[int(k)] = np.column_stack(np.unravel_index(idx, labels.shape)).astype(np.int32)
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    """Dice of two boolean masks, or None when both are empty (nothing to measure)."""
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else None


def hd95(a: np.ndarray, b: np.ndarray, spacing_zyx) -> float | None:
    """95th-percentile Hausdorff distance (mm) between two boolean masks on one grid of ``spacing_zyx`` (MONAI
    compute_hausdorff_distance), or None unless both hold voxels."""
    if not a.any() or not b.any():
        return None
    import torch
    from monai.metrics import compute_hausdorff_distance

    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(a | b))  # both, + 1 voxel
    masks = [torch.from_numpy(np.ascontiguousarray(m[box])[None, None]) for m in (a, b)]
    with warnings.catch_warnings():  # MONAI 1.5 passes its own deprecated argument to get_mask_edges
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        return float(compute_hausdorff_distance(*masks, percentile=95, spacing=list(spacing_zyx)).item())


def describe_cases(cases: list[Case]) -> str:
    """The ``data`` of a metric: how many cases and their names."""
    return f"{len(cases)} case(s): " + "; ".join(c.name for c in cases)


def chosen_on_validation(card: ModelCard, metrics: list[dict], what: str | None, how: str = "") -> list[dict]:
    """``metrics`` measured on the validation cases, each ``data`` naming the best epoch of ``card``'s run when it
    has one and, unless ``what`` is None, saying that ``what`` was chosen on them (``how``: e.g. " by the
    acceptance rule")."""
    epoch = card.training.get("best_epoch")
    prefix = f"validation (epoch {epoch})" if epoch else "validation"
    if what:
        prefix += f", {what} chosen on these cases{how}"
    return [{**m, "data": f"{prefix}: {m['data']}"} for m in metrics]


class SegmentationTask:
    """Label maps: target ``labels`` (z, y, x) uint8, loss from ai.training.losses, Dice and HD95 per label.
    With ``edge_weight`` > 0 the network's edge head (``forward_with_edges``, ai.nets.unet_variants) is trained
    too: loss + edge_weight x ai.nets.edges.edge_loss."""

    target_modes = {"labels": "nearest"}

    def __init__(self, config: TrainConfig):
        from ai.training.losses import segmentation_loss

        self.labels = dict(config.labels)
        self.loss_fn = segmentation_loss(config.loss, config.path)
        self.rng = np.random.default_rng(config.seed)
        self.edge_weight = config.edge_weight
        if self.edge_weight and not config.network.get("args", {}).get("edge_head"):
            raise ConfigError(f"edge_weight {self.edge_weight:g} needs a network with an edge head (class "
                              "AttentionBlocksUNet, args edge_head: true)", config.path)

    def forward(self, net, image):
        """The network's logits, or (logits, edge logits) when the edge head is trained."""
        return net.forward_with_edges(image) if self.edge_weight else net(image)

    def prepare(self, case: Case, card: ModelCard) -> Sample:
        """The case's images and labels on the model grid (labels by nearest neighbour)."""
        from ai.engine import onto_model_grid, preprocess

        if case.labels is None:
            raise ConfigError(f"case {case.name} has no label map: a segmentation model needs one", case.source)
        image, grid = preprocess(LoadedModel(card, None), case.images)
        labels = onto_model_grid(case.labels, grid, nearest=True).array.astype(np.uint8)
        return Sample(case.name, image, {"labels": labels}, class_centres(labels, self.rng))

    def loss(self, outputs, targets: dict):
        if isinstance(outputs, tuple):
            from ai.nets.edges import edge_loss

            logits, edges = outputs
            labels = targets["labels"]
            return self.loss_fn(logits, labels.long()) + self.edge_weight * edge_loss(edges, labels)
        return self.loss_fn(outputs, targets["labels"].long())

    def evaluate(self, model: LoadedModel, cases: list[Case], *, device="cpu") -> list[dict]:
        """Dice per label (mean over the cases where the label is in the reference or the prediction), HD95 per
        label in mm (mean over the cases where both hold it), ``mean_dice`` and ``mean_hd95`` (over labels), each
        segmentation made by ai.engine.run_segmentation on the case's grid."""
        from ai.engine import run_segmentation

        scores: dict[int, list[float]] = {k: [] for k in self.labels if k}
        distances: dict[int, list[float]] = {k: [] for k in scores}
        findings = []
        for case in cases:
            result = run_segmentation(model, case.images, device=device)
            predicted = result.labels.array
            truth = case.labels.array
            for k in scores:
                d = dice(predicted == k, truth == k)
                if d is not None:
                    scores[k].append(d)
                h = hd95(predicted == k, truth == k, case.labels.spacing[::-1])
                if h is not None:
                    distances[k].append(h)
            findings.append((result, case.lesions))
        data = describe_cases(cases)
        metrics = [{"name": f"dice_{self.labels[k]}", "value": round(float(np.mean(v)), 4), "data": data}
                   for k, v in scores.items() if v]
        if metrics:
            metrics.append({"name": "mean_dice", "value": round(float(np.mean([m["value"] for m in metrics])), 4),
                            "data": data})
        hd = [{"name": f"hd95_{self.labels[k]}_mm", "value": round(float(np.mean(v)), 2), "data": data}
              for k, v in distances.items() if v]
        if hd:
            hd.append({"name": "mean_hd95_mm", "value": round(float(np.mean([m["value"] for m in hd])), 2),
                       "data": data})
        metrics += hd
        if any(lesions for _, lesions in findings):
            metrics += lesion_metrics(findings, model, data)
        return metrics


def lesion_metrics(findings: list[tuple], model: LoadedModel, data: str) -> list[dict]:
    """``lesion_sensitivity`` and ``lesion_false_positives_per_study`` of segmentations [(SegmentationResult, the
    case's lesions [{center_mm, diameter_mm}])]: the app's findings (ai.detection: connected components of every
    label) matched to lesions by centre distance (ai.training.detection_task.match_lesions)."""
    from ai.detection import card_min_voxels, detections_from_labels
    from ai.training.detection_task import MATCH_MM, match_lesions

    found = total = false = 0
    for result, lesions in findings:
        errors, fp = match_lesions(detections_from_labels(result, card_min_voxels(model.card)), lesions)
        found += sum(e is not None for e in errors)
        total += len(errors)
        false += fp
    data = f"{data}; a lesion is found when a connected component's centre lies within {MATCH_MM:g} mm of its centre"
    return [{"name": "lesion_sensitivity", "value": round(found / total, 4) if total else None, "data": data},
            {"name": "lesion_false_positives_per_study", "value": round(false / len(findings), 4), "data": data}]
