"""Training task of centre-point lesion detectors: heat-map targets, focal + Dice + size loss, sensitivity, FPs, FROC.

Targets on the model grid (ai.detection_heatmap.heatmap_targets): ``heat`` (Gaussian per lesion, 1 at its
centre voxel), ``size`` (diameter / MAX_DIAMETER_MM near centres) and ``size_mask``. Patches are centred on
lesions (class 1) or on hot voxels far from any lesion (class 2: physiological uptake, the usual false
positives) or anywhere (ai.training.sampling). Loss: CenterNet's penalty-reduced focal loss on the heat map + a
soft Dice of the heat map + SIZE_WEIGHT x L1 on the size where ``size_mask``. ``evaluate`` runs the app's
decoding (ai.detection_heatmap) on each validation case's own grid: a lesion is found when a detection centre
lies within MATCH_MM of its centre; detections matching no lesion are false positives.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import numpy as np

from ai.model import LoadedModel, ModelCard
from ai.training.cases import Case
from ai.training.tasks import MAX_CENTRES, Sample, chosen_on_validation, describe_cases
from viewer.core.errors import ConfigError

if TYPE_CHECKING:
    from ai.training.config import TrainConfig

#: a detection within this distance (mm) of a lesion centre finds it (the acceptance rule of issue 12)
MATCH_MM = 10.0
#: lesions at least this large (diameter mm) are the ones the acceptance rule counts
RULE_DIAMETER_MM = 10.0
#: false positives per study at which the FROC's sensitivities are reported
FROC_FP_RATES = (0.5, 1.0, 2.0, 4.0)
#: detections are decoded down to this score for the FROC (the card's threshold picks the operating point)
FROC_FLOOR = 0.05
#: hard-negative patch centres: voxels at least this hot (SUVbw) and farther than HARD_NEGATIVE_MM from lesions
HOT_SUV = 3.0
HARD_NEGATIVE_MM = 20.0
SIZE_WEIGHT = 5.0
#: a peak of the (augmented) target heat map at least this high is a lesion centre (focal-loss positive)
POSITIVE_PEAK = 0.5
#: the config ``loss`` of a detection task
LOSS = "heatmap_focal"


def heatmap_positives(target):
    """Boolean mask of the lesion centres in Gaussian heat-map ``target`` (B, 1, z, y, x): its 26-neighbourhood
    local maxima >= POSITIVE_PEAK. Found as peaks rather than as ``target == 1`` because the spatial
    augmentation interpolates the target: a centre between voxels then peaks below 1 (a 1-voxel Gaussian at
    4 mm falls to ~0.7 half a voxel off), and a fixed cut-off such as 0.9 silently dropped most positives."""
    import torch

    return (target >= POSITIVE_PEAK) & (target >= torch.nn.functional.max_pool3d(target, 3, stride=1, padding=1))


def focal_heatmap_loss(logits, target, alpha: float = 2.0, beta: float = 4.0):
    """CenterNet's penalty-reduced focal loss of heat-map ``logits`` against Gaussian ``target`` (B, 1, z, y, x):
    positives at the target's peaks (heatmap_positives), negatives down-weighted by (1 - target)^beta near
    centres; summed and divided by the number of positives (at least 1)."""
    import torch

    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heatmap_positives(target)
    pos_loss = -(torch.log(p) * (1 - p) ** alpha)[pos].sum()
    neg_loss = -(torch.log(1 - p) * p ** alpha * (1 - target) ** beta)[~pos].sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def match_lesions(detections: list[dict], lesions: list[dict], match_mm: float = MATCH_MM) -> tuple[list, int]:
    """(per lesion: the matched detection's centre error in mm or None, false positives): lesions in order of
    size take the nearest unused detection within ``match_mm``; detections left over are false positives."""
    used: set[int] = set()
    errors: list[float | None] = [None] * len(lesions)
    for li in sorted(range(len(lesions)), key=lambda i: -lesions[i]["diameter_mm"]):
        centre = np.asarray(lesions[li]["center_mm"], float)
        near = [(float(np.linalg.norm(np.asarray(d["center_mm"]) - centre)), i) for i, d in enumerate(detections)
                if i not in used]
        near = [(e, i) for e, i in near if e <= match_mm]
        if near:
            e, i = min(near)
            used.add(i)
            errors[li] = e
    return errors, len(detections) - len(used)


def froc(per_case: list[tuple[list[dict], list[dict]]], rates=FROC_FP_RATES, min_diameter_mm: float = 0.0
         ) -> dict[float, float | None]:
    """{FP rate: sensitivity} for lesions >= ``min_diameter_mm``: for each score threshold (every detection's
    score), the sensitivity and the mean false positives per study; per rate, the best sensitivity at no more
    than that many FPs per study. ``per_case``: [(detections, lesions)]; None when no lesion counts."""
    scores = sorted({d["score"] for dets, _ in per_case for d in dets}, reverse=True)
    total = sum(1 for _, les in per_case for le in les if le["diameter_mm"] >= min_diameter_mm)
    if not total:
        return dict.fromkeys(rates)
    points = [(0.0, 0.0)]
    for t in scores:
        found, false = 0, 0
        for dets, les in per_case:
            kept = [d for d in dets if d["score"] >= t]
            errors, fp = match_lesions(kept, les)
            found += sum(e is not None for e, le in zip(errors, les, strict=True)
                         if le["diameter_mm"] >= min_diameter_mm)
            false += fp
        points.append((false / len(per_case), found / total))
    return {r: round(max(s for f, s in points if f <= r), 4) for r in rates}


class DetectionTask:
    """Centre-point detection (card ``detection`` kind "heatmap"; see the module docstring)."""

    target_modes = {"heat": "bilinear", "size": "nearest", "size_mask": "nearest"}

    def __init__(self, config: TrainConfig):
        if config.detection.get("kind") != "heatmap":
            raise ConfigError("a detection config needs detection: {kind: heatmap, threshold: t, "
                              "min_distance_mm: d}", config.path)
        if config.loss != LOSS:
            raise ConfigError(f"a detection config's loss is {LOSS!r} (focal heat map + L1 size), got {config.loss!r}",
                              config.path)
        from monai.losses import DiceLoss

        self.dice = DiceLoss(sigmoid=True, batch=True)
        self.rng = np.random.default_rng(config.seed)

    def prepare(self, case: Case, card: ModelCard) -> Sample:
        """The case's image on the model grid, its heat-map targets, and patch centres: lesion centre voxels
        (class 1) and hot voxels far from lesions (class 2)."""
        from scipy import ndimage

        from ai.detection_heatmap import heatmap_targets
        from ai.engine import onto_model_grid, preprocess

        image, grid = preprocess(LoadedModel(card, None), case.images)
        heat, size, mask = heatmap_targets(grid, case.lesions)
        centres = {}
        peaks = np.argwhere(heat >= 0.5)
        if len(peaks):
            centres[1] = peaks.astype(np.int32)
        suv = onto_model_grid(case.images[0], grid).array
        far = ndimage.distance_transform_edt(heat < 0.01, sampling=grid.spacing[::-1]) > HARD_NEGATIVE_MM
        hot = np.argwhere((suv >= HOT_SUV) & far)
        if len(hot):
            centres[2] = hot[self.rng.choice(len(hot), min(len(hot), MAX_CENTRES), replace=False)].astype(np.int32)
        return Sample(case.name, image, {"heat": heat, "size": size, "size_mask": mask}, centres)

    def loss(self, outputs, targets: dict):
        """Focal heat-map loss + soft Dice of the heat map (MONAI, over the batch: dense, so it learns fast) +
        SIZE_WEIGHT x masked L1 of the sigmoid size channel."""
        import torch

        heat, size, mask = (targets[k] if targets[k].ndim == 5 else targets[k][:, None]
                            for k in ("heat", "size", "size_mask"))
        focal = focal_heatmap_loss(outputs[:, :1], heat)
        l1 = (torch.abs(torch.sigmoid(outputs[:, 1:2]) - size) * mask).sum() / mask.sum().clamp(min=1)
        return focal + self.dice(outputs[:, :1], heat) + SIZE_WEIGHT * l1

    def evaluate(self, model: LoadedModel, cases: list[Case], *, device="cpu") -> list[dict]:
        """End to end on the cases' own grids at the card's threshold (detection_metrics)."""
        from ai.detection_heatmap import DEFAULT_THRESHOLD

        threshold = model.card.detection.get("threshold", DEFAULT_THRESHOLD)
        return detection_metrics(predictions(model, cases, device), threshold, describe_cases(cases))


def detection_metrics(per_case: list[tuple[list[dict], list[dict]]], threshold: float, cases: str) -> list[dict]:
    """Card metrics of detections ``per_case`` [(detections, lesions)] kept at ``threshold``: sensitivity (all
    lesions and those >= RULE_DIAMETER_MM), false positives per study, the share of studies meeting the acceptance
    rule (every lesion >= 10 mm found, <= 2 FPs), centre error; the FROC (sensitivity at FROC_FP_RATES FPs per
    study, all lesions) and its mean ``froc_mean``. ``cases`` describes the data (each metric's ``data``)."""
    data = f"{cases}; lesion found = a detection within {MATCH_MM:g} mm of its centre; threshold {threshold:g}"
    errors, found_rule, total_rule, false, passed = rule_counts(per_case, threshold)
    hits = [x for x in errors if x is not None]
    curve = froc(per_case)
    metrics = [
        ("sensitivity", len(hits) / len(errors) if errors else None),
        ("sensitivity_10mm", found_rule / total_rule if total_rule else None),
        ("false_positives_per_study", false / len(per_case)),
        ("studies_meeting_rule", passed / len(per_case)),
        ("centre_error_mm_mean", float(np.mean(hits)) if hits else None),
        *((f"froc_sensitivity_at_{r:g}_fp", s) for r, s in curve.items()),
        ("froc_mean", float(np.mean([s for s in curve.values()])) if None not in curve.values() else None),
    ]
    return [{"name": n, "value": None if v is None else round(float(v), 4), "data": data} for n, v in metrics]


def rule_counts(per_case: list[tuple[list[dict], list[dict]]], threshold: float) -> tuple[list, int, int, int, int]:
    """(per lesion its centre error or None, lesions >= RULE_DIAMETER_MM found, their number, false positives,
    studies meeting the acceptance rule) of the detections ``per_case`` kept at ``threshold``."""
    errors, found_rule, total_rule, false, passed = [], 0, 0, 0, 0
    for dets, lesions in per_case:
        e, fp = match_lesions([d for d in dets if d["score"] >= threshold], lesions)
        errors += e
        rule = [x for x, le in zip(e, lesions, strict=True) if le["diameter_mm"] >= RULE_DIAMETER_MM]
        found_rule += sum(x is not None for x in rule)
        total_rule += len(rule)
        false += fp
        passed += all(x is not None for x in rule) and fp <= 2
    return errors, found_rule, total_rule, false, passed


def choose_threshold(per_case: list[tuple[list[dict], list[dict]]]) -> float:
    """The score threshold that best meets the acceptance rule on ``per_case`` [(detections, lesions)]: most
    studies meeting it (every lesion >= 10 mm found, <= 2 FPs), then the highest sensitivity for lesions >= 10 mm,
    then the fewest false positives. Candidates are the detections' own scores (at least FROC_FLOOR) rounded down
    to 4 decimals; the threshold returned lies midway (on that 4-decimal grid) between the best candidate and the
    next lower one (or FROC_FLOOR): it keeps exactly the same detections, with a margin on both sides for the
    small score changes of other hardware or of fp16 weights."""
    def key(threshold: float) -> tuple:
        _, found_rule, total_rule, false, passed = rule_counts(per_case, threshold)
        return passed, found_rule / max(total_rule, 1), -false, threshold

    scores = sorted({math.floor(d["score"] * 1e4) / 1e4 for dets, _ in per_case for d in dets
                     if d["score"] >= FROC_FLOOR})
    if not scores:
        return FROC_FLOOR
    best = max(scores, key=key)
    below = max((s for s in scores if s < best), default=FROC_FLOOR)
    middle = round((best + below) / 2, 4)
    return middle if below < middle <= best else best


def operating_point_card(card: ModelCard, net, validation: list[Case], *, device="cpu") -> ModelCard:
    """A copy of ``card`` (trained weights in ``net``) whose detection threshold is chosen on ``validation`` by the
    acceptance rule (choose_threshold), with the validation metrics measured at it (their ``data`` says so)."""
    per_case = predictions(LoadedModel(card, net), validation, device)
    threshold = choose_threshold(per_case)
    chosen = copy.deepcopy(card)
    chosen.detection = {**card.detection, "threshold": threshold}
    chosen.metrics = chosen_on_validation(card, detection_metrics(per_case, threshold, describe_cases(validation)),
                                          "threshold", " by the acceptance rule")
    return chosen


def predictions(model: LoadedModel, cases: list[Case], device="cpu") -> list[tuple[list[dict], list[dict]]]:
    """[(detections decoded down to FROC_FLOOR, truth lesions)] of ``model`` on each case."""
    return [(case_detections(model, c, device), c.lesions) for c in cases]


def case_detections(model: LoadedModel, case: Case, device="cpu") -> list[dict]:
    """The app's findings (ai.detection_heatmap) on ``case`` decoded down to FROC_FLOOR (those at or above the
    card's threshold are exactly what ``radview detect`` reports: decoding keeps peaks highest first)."""
    from ai.detection_heatmap import DEFAULT_MIN_DISTANCE_MM, decode_heatmap, predict_heatmap

    heat, size, grid = predict_heatmap(model, case.images, device=device)
    return decode_heatmap(heat, size, grid, threshold=FROC_FLOOR,
                          min_distance_mm=model.card.detection.get("min_distance_mm", DEFAULT_MIN_DISTANCE_MM))
