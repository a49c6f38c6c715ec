"""Choose a segmentation model's post-processing (ai.postprocess) on its validation cases, as nnU-Net does.

Each validation case's class probabilities are predicted once (ai.engine). Then, label by label, every
probability threshold x smallest-component volume of the search grid is applied on the model grid, the label map
is resampled onto the case's grid and the label's Dice averaged over the cases where the reference or the
prediction holds it (the rule of ai.training.tasks' evaluation). A setting is kept only when it beats the plain
argmax by at least MIN_GAIN Dice. ``radview train`` runs this at the end of a run whose config has a
``postprocessing`` section (also when resuming a finished run whose config has gained one).
"""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime

import numpy as np

from ai.model import LoadedModel, ModelCard
from ai.postprocess import label_map
from ai.training.cases import Case
from ai.training.config import PostprocessingSearch
from ai.training.tasks import chosen_on_validation, describe_cases, dice

#: the smallest mean Dice gain over the plain argmax for which a label's post-processing is kept
MIN_GAIN = 0.005


def choose(model: LoadedModel, cases: list[Case], search: PostprocessingSearch, *, device="cpu") -> dict:
    """The ``postprocessing`` block (ai.postprocess) that maximises each label's mean validation Dice on
    ``cases`` (labelled), with a record of the search and of the Dice before and after."""
    from ai.engine import predict, preprocess
    from viewer.core.resample import resample_to

    runs = []
    for case in cases:
        x, grid = preprocess(model, case.images)
        runs.append((predict(model, x, device=device), grid, case))

    def mean_dice(label: int, rules: dict[int, dict]) -> float | None:
        scores = []
        for probs, grid, case in runs:
            labels = grid.with_array(label_map(probs, grid.spacing, rules), units="label", modality="SEG")
            predicted = resample_to(labels, case.labels, nearest=True).array == label
            d = dice(predicted, case.labels.array == label)
            if d is not None:
                scores.append(d)
        return float(np.mean(scores)) if scores else None

    rules: dict[int, dict] = {}
    before, after = {}, {}
    for label, name in model.card.labels.items():
        if not label:
            continue
        plain = mean_dice(label, rules)
        if plain is None:
            continue  # the label is in no reference and no prediction: nothing to choose on
        best, best_rule = plain + MIN_GAIN, None
        for threshold, volume in itertools.product(search.thresholds, search.min_component_mm3):
            rule = {"threshold": threshold, "min_component_mm3": volume}
            score = mean_dice(label, {**rules, label: rule})
            if score is not None and score > best:
                best, best_rule = score, rule
        before[name] = round(plain, 4)
        after[name] = round(best if best_rule else plain, 4)
        if best_rule:
            rules[label] = best_rule
    return {"labels": {model.card.labels[k]: r for k, r in rules.items()},
            "chosen_on": describe_cases(cases), "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "search": {"thresholds": list(search.thresholds), "min_component_mm3": list(search.min_component_mm3),
                       "min_gain": MIN_GAIN},
            "validation_dice": {"argmax": before, "postprocessed": after}}


def postprocessed_card(card: ModelCard, net, task, validation: list[Case], search: PostprocessingSearch, *,
                       device="cpu") -> ModelCard:
    """A copy of ``card`` (trained weights in ``net``) with post-processing chosen on ``validation`` and its
    validation metrics measured again with it (their ``data`` says the post-processing was chosen on them)."""
    chosen = copy.deepcopy(card)
    chosen.postprocessing = choose(LoadedModel(card, net), validation, search, device=device)
    metrics = task.evaluate(LoadedModel(chosen, net), validation, device=device)
    chosen.metrics = chosen_on_validation(card, metrics, "post-processing")
    return chosen
