"""Choose a lesion detector's operating point on its validation cases and measure it on held-out phantoms.

``python -m ai.training.detector_evaluation --models DIR [DIR ...] [--config CONFIG] [--apply] [--further]
[--organs] [--out DIR]``: each model's detections (ai.detection_heatmap, as ``radview detect`` decodes them) are
predicted once per case on the config's validation cases and on HELD_OUT phantoms no detector config trains or
validates on (``--further``: and on the FURTHER ones, reported but never written into a card; ``--organs``: and on
the ORGANS ones, lesions inside solid organs, and CT_LABEL_PETS, written into the card with the held-out ones). The
threshold that best meets the issue-12 rule on validation (ai.training.detection_task.choose_threshold) is reported
with the held-out metrics at the card's threshold and at the chosen one. ``--apply`` writes the chosen threshold
into each card (``detection.threshold``) with the validation and held-out metrics at it, so ``radview detect``
reports what was measured. The table goes to stdout and, with ``--out``, to DIR/detector_evaluation.md + .json. (A
config with ``operating_point: validation`` has ``radview train`` choose the same threshold at the end of the run;
``--apply`` then adds the held-out metrics.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ai.training.config import TrainConfig
from ai.training.ensemble import EnsembleConfig, read_config
from viewer.core.errors import RadviewError

CONFIG = Path(__file__).resolve().parent / "configs" / "pet-lesion-detector.yaml"
#: phantoms no detector config trains or validates on: synthetic anatomy and the real CT's anatomy deformed
HELD_OUT = [{"kind": "pet_ct_phantom", "source": "synthetic", "seeds": [10005, 10045]},
            {"kind": "pet_ct_phantom", "source": "real", "seeds": [20010, 20040]}]
#: more phantoms no config trains or validates on (``--further``): the real CT's anatomy undeformed (closest to a
#: patient's own PET), synthetic anatomy, and both at 2 mm voxels
FURTHER = [{"kind": "pet_ct_phantom", "source": "real", "deform": False, "seeds": [23000, 23030]},
           {"kind": "pet_ct_phantom", "source": "synthetic", "seeds": [23200, 23230]},
           {"kind": "pet_ct_phantom", "source": "real", "voxel_mm": [2, 2, 2], "seeds": [23100, 23130]},
           {"kind": "pet_ct_phantom", "source": "synthetic", "voxel_mm": [2, 2, 2], "seeds": [23300, 23330]}]
#: phantoms with 40% of their lesions inside solid organs (spleen, kidney, stomach, other organs; ``--organs``), no
#: config trains or validates on: the real CT's anatomy deformed and undeformed, synthetic anatomy
ORGANS = [{"kind": "pet_ct_phantom", "source": "real", "organ_lesions": 0.4, "seeds": [26000, 26030]},
          {"kind": "pet_ct_phantom", "source": "real", "deform": False, "organ_lesions": 0.4, "seeds": [26200, 26220]},
          {"kind": "pet_ct_phantom", "source": "synthetic", "organ_lesions": 0.4, "seeds": [26100, 26130]}]
#: and PETs of the real labelled CT made by another generator (``--organs``; ai.training.pet_phantom
#: ct_label_pet_cases: a liver, a spleen and a kidney lesion each)
CT_LABEL_PETS = [{"kind": "ct_label_pet", "seeds": [0, 20]}]
#: extra data sets: name -> (entries, whether ``--apply`` writes their metrics into the card, the flag that asks
#: for them)
EXTRA = {"further held out": (FURTHER, False, "further"), "organ lesions held out": (ORGANS, True, "organs"),
         "labelled-CT PETs held out": (CT_LABEL_PETS, True, "organs")}
#: metric name -> table column
COLUMNS = {"sensitivity": "sensitivity", "sensitivity_10mm": "sens. >= 10 mm",
           "false_positives_per_study": "FPs / study", "studies_meeting_rule": "studies meeting rule",
           "froc_sensitivity_at_1_fp": "FROC @1", "froc_sensitivity_at_2_fp": "FROC @2"}


def evaluate(folder: Path, config: TrainConfig | EnsembleConfig, held_out: list[dict] = HELD_OUT, *,
             extra: dict[str, list[dict]] | None = None, device: str = "cpu") -> dict:
    """The record of one model folder: the card's threshold, the threshold chosen on ``config``'s validation cases
    and the metrics (ai.training.detection_task.detection_metrics) of those, of the ``held_out`` data entries and
    of each ``extra`` set (name -> data entries, e.g. those of EXTRA) at both."""
    from ai.detection_heatmap import DEFAULT_THRESHOLD
    from ai.registry import load_model
    from ai.training.datasets import load_dataset
    from ai.training.detection_task import choose_threshold, detection_metrics, predictions
    from ai.training.tasks import describe_cases, with_card_inputs

    model = load_model(str(folder))
    card_threshold = model.card.detection.get("threshold", DEFAULT_THRESHOLD)
    sets = {"validation": config.data.get("validation", []), "held out": held_out, **(extra or {})}
    cpu = time.process_time()
    runs = {}
    for name, entries in sets.items():
        cases = load_dataset(entries, config.labels, config.base)
        cases = [with_card_inputs(c, model.card) for c in cases]
        runs[name] = (predictions(model, cases, device), describe_cases(cases))
    chosen = choose_threshold(runs["validation"][0])
    results = {name: {str(t): detection_metrics(per_case, t, data) for t in (card_threshold, chosen)}
               for name, (per_case, data) in runs.items()}
    return {"model": f"{model.card.id} {model.card.version}", "folder": str(folder),
            "card_threshold": card_threshold, "chosen_threshold": chosen, "results": results,
            "cpu_s": round(time.process_time() - cpu, 1)}


def apply(record: dict) -> None:
    """Write the record's chosen threshold into its model folder's card, with the metrics at that threshold of
    validation, held out and the EXTRA sets marked for the card (those measured at another threshold are
    dropped). The validation metrics say that the threshold was chosen on them, in the words ``radview train``
    uses (operating_point_card)."""
    from ai.model import ModelCard
    from ai.training.model_folder import write_card
    from ai.training.tasks import chosen_on_validation

    folder = Path(record["folder"])
    card = ModelCard.from_file(folder / "model.json")
    threshold = str(record["chosen_threshold"])
    card.detection = {**card.detection, "threshold": record["chosen_threshold"]}
    for_card = [name for name in record["results"] if name == "held out" or EXTRA.get(name, ((), False, ""))[1]]
    held_out = [{**m, "data": f"{name}: {m['data']}"} for name in for_card for m in record["results"][name][threshold]]
    validation = record["results"]["validation"][threshold]
    card.metrics = chosen_on_validation(card, validation, "threshold", " by the acceptance rule") + held_out
    write_card(card, folder)


def markdown(records: list[dict]) -> str:
    """One table per data set: each model at its card's threshold and at the one chosen on validation."""
    head = ["model", "threshold", *COLUMNS.values()]
    text = [f"# Lesion detectors: operating point chosen on validation\n\n{time.strftime('%Y-%m-%d')}. "
            "A lesion is found when a detection lies within 10 mm of its centre; the rule: every lesion >= 10 mm "
            "found with <= 2 false positives per study.\n"]
    for name in records[0]["results"] if records else ():
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        data = ""
        for r in records:
            for label, t in (("card", r["card_threshold"]), ("chosen", r["chosen_threshold"])):
                metrics = {m["name"]: m["value"] for m in r["results"][name][str(t)]}
                data = r["results"][name][str(t)][0]["data"].split("; lesion found")[0]
                values = ["n/a" if metrics.get(k) is None else f"{metrics[k]:.3f}" for k in COLUMNS]
                rows.append("| " + " | ".join([r["model"], f"{t:g} ({label})", *values]) + " |")
        text.append(f"## {name}: {data}\n\n" + "\n".join(rows) + "\n")
    return "\n".join(text)


def main(argv=None) -> int:
    from ai.training.common import tool_args

    parser = argparse.ArgumentParser(prog="python -m ai.training.detector_evaluation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, metavar="DIR", help="detector model folders")
    parser.add_argument("--config", default=str(CONFIG), help="training config whose validation cases choose "
                                                              "the threshold (default: pet-lesion-detector.yaml)")
    parser.add_argument("--apply", action="store_true", help="write the chosen threshold and its metrics into "
                                                             "each card")
    parser.add_argument("--further", action="store_true", help="also measure the 120 FURTHER held-out phantoms "
                        "(undeformed real-CT anatomy, synthetic, both at 2 mm voxels; never written into a card)")
    parser.add_argument("--organs", action="store_true", help="also measure the 80 ORGANS held-out phantoms "
                        "(40%% of lesions inside solid organs) and the 20 CT_LABEL_PETS (liver, spleen and kidney "
                        "lesions); written into the card with --apply")
    parser.add_argument("--out", help="folder for detector_evaluation.md and .json")
    args = tool_args(parser, argv)
    try:
        config = read_config(args.config)
        extra = {name: entries for name, (entries, _, flag) in EXTRA.items() if getattr(args, flag)}
        records = [evaluate(Path(m), config, extra=extra) for m in args.models]
        if args.apply:
            for record in records:
                apply(record)
    except RadviewError as err:
        print(f"detector_evaluation: error: {err}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "detector_evaluation.json").write_text(json.dumps(records, indent=1))
        (out / "detector_evaluation.md").write_text(markdown(records))
    print(markdown(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
