"""Compare the three PET/CT fusion strategies (input, feature, decision level) on the same data, budget and seed.

``python -m ai.training.fusion_comparison --out DIR [--smoke] [--models DIR DIR DIR] [--into DIR ...]`` trains the
configs pet-ct-lesions-{input,feature,decision}.yaml one after another into DIR/<id> (or takes trained model
folders with ``--models``), evaluates each end to end (ai.engine) on the configs' shared validation cases and on
held-out real-CT-derived studies, and writes the side-by-side tables DIR/fusion_comparison.md + .json (lesion
Dice, lesion-wise sensitivity and false positives per study, parameters, training time, CPU time of the
evaluation); the comparison goes into
every compared card (``comparisons``) and the ``--into`` ones. ``--smoke``: two training steps on tiny data and
tiny networks (checks the pipeline, measures nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ai.training.config import TrainConfig
from viewer.core.errors import ConfigError, RadviewError

CONFIGS = Path(__file__).resolve().parent / "configs"
STRATEGIES = ("input", "feature", "decision")
#: smoke mode: one small training phantom (no validation while training), one small phantom to compare on, 2 steps
#: of 48x48x32 patches, 2-level networks
SMOKE_DATA = {"train": [{"kind": "pet_ct_lesions", "source": "synthetic", "seeds": [9, 10]}], "validation": []}
SMOKE_VALIDATION = [{"kind": "pet_ct_lesions", "source": "synthetic", "seeds": [3, 4]}]
SMOKE_CHANNELS = [4, 8]
#: real-CT-derived studies no config trains or validates on (the issue's acceptance data: a PET you never saw)
HELD_OUT = [{"kind": "pet_ct_lesions", "source": "real", "seeds": [30000, 30006]}]
#: the same studies (anatomy, lesions, PET) with the real scan's own CT intensities instead of a rendered CT: no
#: training or validation case has them, so they measure the step from rendered to acquired CT texture
HELD_OUT_SCAN = [{**HELD_OUT[0], "ct": "scan"}]
#: metric name in the card -> column of the table
COLUMNS = {"dice_lesion": "lesion Dice", "lesion_sensitivity": "lesion sensitivity",
           "lesion_false_positives_per_study": "FPs / study"}


def fusion_configs(smoke: bool = False) -> list[TrainConfig]:
    """The three fusion configs (smoke: on SMOKE_DATA with 2 steps and SMOKE_CHANNELS networks). ConfigError
    unless they share data, labels, grid, budget and seed."""
    configs = [TrainConfig.from_yaml(CONFIGS / f"pet-ct-lesions-{s}.yaml") for s in STRATEGIES]
    if smoke:
        configs = [c.replace(data=SMOKE_DATA, epochs=1, iterations_per_epoch=2, batch_size=1, patch_size=[48, 48, 32],
                             network=smoke_network(c.network)) for c in configs]
    shared = ("data", "labels", "spacing", "patch_size", "normalization", "epochs", "iterations_per_epoch",
              "batch_size", "seed", "sampling", "augmentation", "optimizer", "loss")
    for c in configs[1:]:
        differing = [k for k in shared if getattr(c, k) != getattr(configs[0], k)]
        if differing:
            raise ConfigError(f"{c.id} differs from {configs[0].id} in {', '.join(differing)}: not a fair comparison",
                              c.path)
    return configs


def smoke_network(network: dict) -> dict:
    """``network`` with SMOKE_CHANNELS (and the matching strides for a MONAI UNet)."""
    args = {**network["args"], "channels": SMOKE_CHANNELS}
    if "strides" in args:
        args["strides"] = [2] * (len(SMOKE_CHANNELS) - 1)
    return {**network, "args": args}


def train_all(configs: list[TrainConfig], out: Path, *, threads: int, device: str = "cpu") -> list[Path]:
    """Train every config into ``out``/<id>, one at a time; the model folders."""
    from ai.training.loop import train

    return [train(c, out / c.id, device=device, threads=threads) for c in configs]


def data_sets(configs: list[TrainConfig], smoke: bool = False) -> dict[str, list[dict]]:
    """{description: data entries} the models are compared on: the configs' validation cases (which chose each
    run's best epoch), HELD_OUT real-CT-derived studies no run ever saw, and the same with the real CT's own
    intensities (HELD_OUT_SCAN) (smoke: SMOKE_VALIDATION only)."""
    if smoke:
        return {"smoke": SMOKE_VALIDATION}
    return {"validation (held-out seeds; chose the best epoch)": configs[0].data.get("validation", []),
            "held out: real-CT-derived PET/CT seeds 30000-30005 (never used in training or model selection)":
                HELD_OUT,
            "held out, the same studies with the real CT's own intensities (lesions painted in; no training case "
            "has an acquired CT)": HELD_OUT_SCAN}


def compare(configs: list[TrainConfig], folders: list[Path], sets: dict[str, list[dict]], *,
            device: str = "cpu") -> dict:
    """The comparison record: per data set (``sets``, see data_sets), each model's metrics (ai.training.tasks
    evaluation) and CPU time of the run; per model its parameters, training wall time and threads (its card)."""
    from ai.registry import load_model
    from ai.training.datasets import load_dataset
    from ai.training.tasks import describe_cases, task_for, with_card_inputs

    config = configs[0]
    task = task_for(config)
    models = [load_model(str(folder)) for folder in folders]
    results = []
    for description, entries in sets.items():
        cases = load_dataset(entries, config.labels, config.base)
        if not cases:
            raise ConfigError(f"no cases to compare on in {description!r}", config.path)
        runs = []
        for folder, model in zip(folders, models, strict=True):
            inputs = [with_card_inputs(c, model.card) for c in cases]
            cpu = time.process_time()
            metrics = {m["name"]: m["value"] for m in task.evaluate(model, inputs, device=device)}
            training = model.card.training or {}
            runs.append({"model": f"{model.card.id} {model.card.version}", "folder": str(folder),
                         "network": model.card.network["class"], "metrics": metrics,
                         "parameters": sum(p.numel() for p in model.network.parameters()),
                         "train_wall_s": training.get("seconds"), "train_threads": training.get("threads"),
                         "train_iterations": (training.get("epochs_run") or 0) * config.iterations_per_epoch,
                         "cpu_s": round(time.process_time() - cpu, 1)})
        results.append({"data": f"{description}: {describe_cases(cases)}", "runs": runs})
    return {"name": "PET/CT fusion strategies compared (input / feature / decision level)",
            "date": time.strftime("%Y-%m-%d"),
            "budget": {"epochs": config.epochs, "iterations_per_epoch": config.iterations_per_epoch,
                       "batch_size": config.batch_size, "patch_size": config.patch_size, "seed": config.seed},
            "how": "ai.engine.run_segmentation on each case's CT grid; Dice of the lesion label averaged over cases; "
                   "a lesion is found when a connected component's centre lies within 10 mm of its centre; CPU "
                   "seconds of the whole set (python -m ai.training.fusion_comparison)",
            "sets": results}


def markdown(comparison: dict) -> str:
    """The comparison as Markdown: one table per data set, with the budget."""
    head = ["model", "network", *COLUMNS.values(), "parameters", "training (s, threads)", "CPU s"]
    budget = ", ".join(f"{k} {v}" for k, v in comparison["budget"].items())
    text = [f"# {comparison['name']}\n\n{comparison['date']}. Budget (each model): {budget}.\n"]
    for data_set in comparison["sets"]:
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in data_set["runs"]:
            values = ["n/a" if r["metrics"].get(k) is None else f"{r['metrics'][k]:.3f}" for k in COLUMNS]
            rows.append("| " + " | ".join([r["model"], r["network"], *values, f"{r['parameters']:,}",
                                           f"{r['train_wall_s']} ({r['train_threads']})", f"{r['cpu_s']}"]) + " |")
        text.append(f"## {data_set['data']}\n\n" + "\n".join(rows) + "\n")
    return "\n".join(text) + f"\n{comparison['how']}.\n"


def main(argv=None) -> int:
    from ai.training.common import tool_args
    from ai.training.transfer_gain import add_comparison

    parser = argparse.ArgumentParser(prog="python -m ai.training.fusion_comparison",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the trained models and the table")
    parser.add_argument("--smoke", action="store_true", help="two steps on tiny data and networks (pipeline check)")
    parser.add_argument("--models", nargs=3, metavar="DIR", help="trained input, feature, decision model folders "
                                                                 "to compare instead of training")
    parser.add_argument("--into", nargs="*", default=[], help="more model folders whose card gets the comparison")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = tool_args(parser, argv)
    import torch

    out = Path(args.out)
    try:
        configs = fusion_configs(args.smoke)
        folders = ([Path(m) for m in args.models] if args.models
                   else train_all(configs, out, threads=args.threads, device=args.device))
        torch.set_num_threads(args.threads)
        comparison = compare(configs, folders, data_sets(configs, args.smoke), device=args.device)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fusion_comparison.json").write_text(json.dumps(comparison, indent=1))
        (out / "fusion_comparison.md").write_text(markdown(comparison))
        for folder in [*folders, *map(Path, args.into)]:
            add_comparison(folder, comparison)
    except RadviewError as err:
        print(f"fusion_comparison: error: {err}", file=sys.stderr)
        return 2
    print(markdown(comparison))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
