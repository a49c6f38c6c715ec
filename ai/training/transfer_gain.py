"""Measure what transfer learning gains: train a config with its ``init`` and from scratch, same data, budget and
seed, and write both runs' validation metrics and the gain into the model card (``comparisons``).

``python -m ai.training.transfer_gain CONFIG --out DIR [--epochs N] [--iterations N] [--into MODEL_DIR]``
trains DIR/transfer and DIR/scratch, adds the comparison to DIR/transfer's card (and to MODEL_DIR's, e.g. the
full-budget model the config made) and prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ai.model import ModelCard
from ai.training.config import TrainConfig
from viewer.core.errors import ConfigError, RadviewError


def compare_with_scratch(config: TrainConfig, out: str | Path, *, device: str = "auto",
                         threads: int | None = None) -> dict:
    """Train ``config`` (which must have ``init``) into ``out``/transfer and without ``init`` into ``out``/scratch;
    the comparison record (both runs' metrics on the same validation data, gain = transfer - scratch)."""
    from ai.training.loop import train

    if config.init is None:
        raise ConfigError("the config has no init: nothing to compare with training from scratch", config.path)
    out = Path(out)
    runs = []
    for label, run_config, folder in ((f"init {config.init.part} from {config.init.source}", config, "transfer"),
                                      ("from scratch", config.replace(init=None), "scratch")):
        written = train(run_config, out / folder, device=device, threads=threads)
        card = ModelCard.from_file(written / "model.json")
        validation = card.training["data"]["validation"]["described"]
        runs.append({"label": label, "folder": str(written), "metrics": card.metrics,
                     "best_epoch": card.training["best_epoch"], "seconds": card.training["seconds"]})
    transfer, scratch = ({m["name"]: m["value"] for m in r["metrics"]} for r in runs)
    return {"name": "transfer learning vs training from scratch",
            "data": f"validation: {validation}",
            "budget": {"epochs": config.epochs, "iterations_per_epoch": config.iterations_per_epoch,
                       "batch_size": config.batch_size, "seed": config.seed},
            "runs": runs,
            "gain": {k: round(transfer[k] - scratch[k], 4) for k in transfer if k in scratch}}


def add_comparison(folder: Path, comparison: dict) -> None:
    """Append ``comparison`` to the card in ``folder`` (replacing an earlier one of the same name)."""
    from ai.training.model_folder import write_card

    card = ModelCard.from_file(folder / "model.json")
    card.comparisons = [c for c in card.comparisons if c.get("name") != comparison["name"]] + [comparison]
    write_card(card, folder)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ai.training.transfer_gain", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="training config with an init: section")
    parser.add_argument("--out", required=True, help="folder for the two runs (transfer/, scratch/)")
    parser.add_argument("--epochs", type=int, help="budget of both runs (default: the config's)")
    parser.add_argument("--iterations", type=int, help="iterations per epoch of both runs (default: the config's)")
    parser.add_argument("--into", help="also add the comparison to this model folder's card")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = TrainConfig.from_yaml(args.config)
        if args.epochs:
            config = config.replace(epochs=args.epochs)
        if args.iterations:
            config = config.replace(iterations_per_epoch=args.iterations)
        comparison = compare_with_scratch(config, args.out, device=args.device, threads=args.threads)
        add_comparison(Path(args.out) / "transfer", comparison)
        if args.into:
            add_comparison(Path(args.into), comparison)
    except RadviewError as err:
        print(f"transfer_gain: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in comparison.items() if k != "runs"} | {
        "runs": [{k: v for k, v in r.items() if k != "metrics"} | {"metrics": {m["name"]: m["value"]
                                                                              for m in r["metrics"]}}
                 for r in comparison["runs"]]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
