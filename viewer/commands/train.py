"""`radview train CONFIG.yaml --out DIR`: train a model (or each member of an ensemble) from a YAML config and write
its model folder."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a model from a YAML config (ai/training/configs); writes a model folder loadable by segment/detect"


def add_arguments(parser) -> None:
    parser.add_argument("config", help="training config (YAML; see ai/training/config.py for its keys, "
                        "ai/training/ensemble.py for an ensemble of member configs)")
    parser.add_argument("--out", required=True, help="output model folder (model.pt, model.json, "
                        "training_log.csv, checkpoint.pt)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (an ensemble: "
                        "reuse its members already trained in OUT/members, continue the others)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: every core, at most 4)")
    parser.add_argument("--epochs", type=int, help="override the config's epochs (e.g. more on --resume; an "
                        "ensemble: each member's)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="mixed precision (autocast + gradient scaling; default: on CUDA only)")


def run(args) -> int:
    import dataclasses

    from ai.training.ensemble import EnsembleConfig, read_config, train_ensemble
    from ai.training.loop import train
    from viewer.commands.progress_bar import training_job
    from viewer.core.errors import ConfigError

    config = read_config(args.config)
    ensemble = isinstance(config, EnsembleConfig)
    if args.epochs is not None:
        if args.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
        config = (dataclasses.replace(config, members=[m.replace(epochs=args.epochs) for m in config.members])
                  if ensemble else config.replace(epochs=args.epochs))
    with training_job() as (bar, cancel):
        out = (train_ensemble if ensemble else train)(config, args.out, device=args.device, resume=args.resume,
                                                      threads=args.threads, progress=bar, cancel=cancel, amp=args.amp)
    print(summary(out))
    return 0


def summary(folder) -> str:
    """One line about a written model folder: id, version, epochs, best epoch and its validation metrics."""
    from ai.model import ModelCard

    card = ModelCard.from_file(folder / "model.json")
    run = card.training
    metrics = ", ".join(f"{m['name']} {m['value']}" for m in card.metrics) or "no validation metrics"
    if "members" in run:
        members = "; ".join(f"{m['id']}: {m['epochs_run']} epochs, best {m['best_epoch']}" for m in run["members"])
        return (f"wrote {folder} ({card.id} {card.version}): an ensemble of {len(run['members'])} ({members}); "
                f"validation: {metrics}; {run['seconds']} s on {run['device']}")
    return (f"wrote {folder} ({card.id} {card.version}): {run['epochs_run']} epochs ({run['stopped']}), best epoch "
            f"{run['best_epoch']}: {metrics}; {run['seconds']} s on {run['device']}")
