"""Choose a segmentation model's post-processing (ai.postprocess) on its validation cases, as nnU-Net does.

Each validation case's class probabilities are predicted once (ai.engine). Then, label by label, every setting of
the search grid (the argmax or a probability threshold x smallest-component volume x smallest component median
probability x largest component only or not) is applied on the model grid, the label map is resampled onto the
case's grid and the label's Dice averaged over the cases where the reference or the prediction holds it (the rule
of ai.training.tasks' evaluation). A setting with a threshold, a smallest volume or a smallest median probability
is kept only when it beats the plain argmax by at least MIN_GAIN Dice; keeping only the largest component, which
has nothing to tune, when it beats it at all (nnU-Net's rule). ``radview train`` runs
this at the end of a run whose config has a ``postprocessing`` section (also when resuming a finished run whose
config has gained one).

``python -m ai.training.postprocessing --model DIR --config CONFIG [--keep] [--apply] [--threads N]`` chooses it
for a segmentation model folder that exists (the weights users get), on that config's validation cases, and prints
the Dice before and after; ``--keep`` keeps the card's post-processing (none: the plain argmax) and only measures
the validation metrics with it again (after a change in radview's pipeline); ``--apply`` writes the block and the
validation metrics measured with it into the folder's card.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ai.model import LoadedModel, ModelCard
from ai.postprocess import label_map
from ai.training.cases import Case
from ai.training.config import PostprocessingSearch
from ai.training.tasks import chosen_on_validation, describe_cases, dice
from viewer.core.errors import ModelError, RadviewError

#: the smallest mean Dice gain over the plain argmax for which a label's tuned post-processing is kept
MIN_GAIN = 0.005


def required_gain(rule: dict) -> float:
    """The mean Dice gain over the argmax ``rule`` must beat: MIN_GAIN for a tuned setting (a threshold, a smallest
    volume, a smallest median probability), 0 for keeping only the largest component, which nnU-Net keeps whenever
    it helps."""
    tuned = "threshold" in rule or rule.get("min_component_mm3", 0) > 0 or rule.get("min_component_confidence", 0) > 0
    return MIN_GAIN if tuned else 0.0


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
        best, best_rule = plain, None
        for threshold, volume, confidence, largest in itertools.product(
                [None, *search.thresholds], search.min_component_mm3, search.min_component_confidence,
                search.largest_component):
            rule = ({} if threshold is None else {"threshold": threshold}) | {"min_component_mm3": volume} | (
                {"min_component_confidence": confidence} if confidence else {}) | (
                {"largest_component": True} if largest else {})
            score = mean_dice(label, {**rules, label: rule})
            if score is not None and score > max(best, plain + required_gain(rule)):
                best, best_rule = score, rule
        before[name] = round(plain, 4)
        after[name] = round(best if best_rule else plain, 4)
        if best_rule:
            rules[label] = best_rule
    return {"labels": {model.card.labels[k]: r for k, r in rules.items()},
            "chosen_on": describe_cases(cases), "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "search": {"thresholds": list(search.thresholds), "min_component_mm3": list(search.min_component_mm3),
                       "min_component_confidence": list(search.min_component_confidence),
                       "largest_component": list(search.largest_component), "min_gain": MIN_GAIN,
                       "min_gain_largest_component_only": 0.0},
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


def main(argv=None) -> int:
    from ai.registry import load_model
    from ai.training.common import tool_args
    from ai.training.datasets import load_dataset
    from ai.training.ensemble import EnsembleConfig, read_config
    from ai.training.model_folder import write_card
    from ai.training.tasks import task_for, with_card_inputs

    parser = argparse.ArgumentParser(prog="python -m ai.training.postprocessing",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, metavar="DIR", help="segmentation model folder")
    parser.add_argument("--config", required=True, help="training config (of one model or of an ensemble): its "
                                                        "validation cases and its postprocessing search (defaults "
                                                        "when it has none)")
    parser.add_argument("--apply", action="store_true", help="write the chosen post-processing and the validation "
                                                             "metrics measured with it into the card")
    parser.add_argument("--keep", action="store_true", help="keep the card's post-processing; measure the "
                                                            "validation metrics with it again")
    args = tool_args(parser, argv)
    try:
        config = read_config(args.config)
        task = task_for(config.members[0] if isinstance(config, EnsembleConfig) else config)
        model = load_model(args.model)
        if model.card.task != "segmentation":
            raise ModelError(f"post-processing applies to segmentation models; {model.card.id} is a "
                             f"{model.card.task} model", model.card_path)
        card = copy.deepcopy(model.card)
        validation = [with_card_inputs(c, card)
                      for c in load_dataset(config.data.get("validation", []), config.labels, config.base)]
        if args.keep:
            chosen = card
            metrics = task.evaluate(LoadedModel(card, model.network), validation)
            chosen.metrics = chosen_on_validation(card, metrics, "post-processing" if card.postprocessing else None)
        else:
            card.postprocessing = {}  # chosen again from the plain argmax
            chosen = postprocessed_card(card, model.network, task, validation,
                                        config.postprocessing or PostprocessingSearch())
        if args.apply:
            write_card(chosen, Path(args.model))
    except RadviewError as err:
        print(f"postprocessing: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({**{k: v for k, v in chosen.postprocessing.items() if k != "search"},
                      "validation_metrics": {m["name"]: m["value"] for m in chosen.metrics}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
