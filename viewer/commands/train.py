"""`radview train CONFIG.yaml --out DIR`: train a model from a YAML config and write its model folder."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a model from a YAML config (ai/training/configs); writes a model folder loadable by segment/detect"


def add_arguments(parser) -> None:
    parser.add_argument("config", help="training config (YAML; see ai/training/config.py for its keys)")
    parser.add_argument("--out", required=True, help="output model folder (model.pt, model.json, "
                        "training_log.csv, checkpoint.pt)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: every core, at most 4)")
    parser.add_argument("--epochs", type=int, help="override the config's epochs (e.g. more on --resume)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="mixed precision (autocast + gradient scaling; default: on CUDA only)")


def run(args) -> int:
    from ai.training.config import TrainConfig
    from ai.training.loop import train
    from viewer.commands.progress_bar import terminal_job
    from viewer.core.errors import ConfigError

    config = TrainConfig.from_yaml(args.config)
    if args.epochs is not None:
        if args.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
        config = config.replace(epochs=args.epochs)
    with terminal_job() as (bar, cancel):
        out = train(config, args.out, device=args.device, resume=args.resume, threads=args.threads, progress=bar,
                    cancel=cancel, amp=args.amp)
    print(summary(out))
    return 0


def summary(folder) -> str:
    """One line about a written model folder: id, version, epochs, best epoch and its validation metrics."""
    from ai.model import ModelCard

    card = ModelCard.from_file(folder / "model.json")
    run = card.training
    metrics = ", ".join(f"{m['name']} {m['value']}" for m in card.metrics) or "no validation metrics"
    return (f"wrote {folder} ({card.id} {card.version}): {run['epochs_run']} epochs ({run['stopped']}), best epoch "
            f"{run['best_epoch']}: {metrics}; {run['seconds']} s on {run['device']}")
