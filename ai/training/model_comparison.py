"""Compare trained models on the same data (Dice per label, inference time) and record it in a model card.

``python -m ai.training.model_comparison CONFIG --models ID_OR_DIR [ID_OR_DIR ...] [--into MODEL_DIR ...]``
evaluates every model end to end (ai.engine) on each data set: the config's validation entries, the shared real
labelled CT (named a training case when the config trains on it) and held-out generated seeds (organ models; other
tasks, e.g. translation: the config's validation entries only); adds the comparison to each ``--into`` card
(``comparisons``) and prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ai.training.config import TrainConfig
from viewer.core.errors import RadviewError

SHARED_CT = "../../../../shared/data/ct_abdomen_3mm.nii.gz"
SHARED_LABELS = "../../../../shared/data/ct_abdomen_3mm_labels.nii.gz"
SHARED_NAMES = "../../../../shared/data/totalsegmentator_total_labels.json"
#: generated seeds no organ config trains or validates on
HELD_OUT = [{"kind": "real_ct_synth", "seeds": [5000, 5010], "image": SHARED_CT, "labels": SHARED_LABELS,
             "names": SHARED_NAMES},
            {"kind": "abdomen_ct_phantom", "seeds": [5000, 5010]}]


def describe_entries(entries: list[dict]) -> str:
    """'kind seeds first-last, ...' of generated data entries (seeds [start, stop) as configs give them)."""
    return ", ".join(f"{e['kind']} seeds {e['seeds'][0]}-{e['seeds'][1] - 1}" for e in entries)


def data_sets(config: TrainConfig) -> dict[str, list[dict]]:
    """{description: data entries} the models are compared on (paths relative to the config's folder): for
    segmentation the organ data sets, for other tasks the config's validation entries."""
    if config.task != "segmentation":
        return {"config validation": config.data.get("validation", [])}
    shared = {"kind": "files", "images": [SHARED_CT], "labels": SHARED_LABELS, "names": SHARED_NAMES}
    trained_on = any(e.get("kind") == "files" and e.get("images") == [SHARED_CT] and "slices" not in e
                     for e in config.data["train"])
    return {
        "config validation (held-out generated seeds)": config.data.get("validation", []),
        "shared real CT ct_abdomen_3mm (TotalSegmentator labels; "
        + ("a TRAINING case of these models)" if trained_on else "not trained on)"): [shared],
        f"held-out generated: {describe_entries(HELD_OUT)}": HELD_OUT,
    }


def compare(config: TrainConfig, models: list[str], *, device: str = "cpu") -> dict:
    """The comparison record: per data set, each model's Dice per label (ai.training.tasks evaluation) and its
    wall / CPU seconds for the whole set."""
    from ai.registry import load_model
    from ai.training.datasets import load_dataset
    from ai.training.tasks import task_for, with_card_inputs

    task = task_for(config)
    loaded = [load_model(m) for m in models]
    results = []
    for description, entries in data_sets(config).items():
        cases = load_dataset(entries, config.labels, config.base)
        runs = []
        for name, model in zip(models, loaded, strict=True):
            inputs = [with_card_inputs(c, model.card) for c in cases]
            wall, cpu = time.perf_counter(), time.process_time()
            metrics = task.evaluate(model, inputs, device=device)
            runs.append({"label": f"{model.card.id} {model.card.version} ({name})",
                         "metrics": {m["name"]: m["value"] for m in metrics},
                         "wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)})
        results.append({"data": f"{description}: {len(cases)} case(s): " + "; ".join(c.name for c in cases),
                        "runs": runs})
    return {"name": "compared with " + ", ".join(models), "date": time.strftime("%Y-%m-%d"),
            "how": f"the {config.task} task's validation metrics, end to end on each case's own grid (segmentation: "
                   "ai.engine.run_segmentation, Dice per label averaged over cases; translation: "
                   "ai.translation.run_translation, MAE inside the head); time = the whole data set on CPU "
                   "(python -m ai.training.model_comparison)",
            "sets": results}


def main(argv=None) -> int:
    from ai.training.common import tool_args
    from ai.training.transfer_gain import add_comparison

    parser = argparse.ArgumentParser(prog="python -m ai.training.model_comparison",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="the training config whose labels and validation entries to use")
    parser.add_argument("--models", nargs="+", required=True, help="model ids or folders")
    parser.add_argument("--into", nargs="*", default=[], help="model folders whose card gets the comparison")
    args = tool_args(parser, argv)
    try:
        comparison = compare(TrainConfig.from_yaml(args.config), args.models)
        for folder in args.into:
            add_comparison(Path(folder), comparison)
    except RadviewError as err:
        print(f"model_comparison: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(comparison, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
