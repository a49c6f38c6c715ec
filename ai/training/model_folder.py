"""A finished training run written as a model folder: model.pt (fp16), model.json (card filled from the run),
training_log.csv (one row per epoch). ai.registry.load_model reads it like any built-in model."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ai.model import ModelCard

LOG_FILE = "training_log.csv"


def as_loaded(state: dict) -> dict:
    """A state dict with the values the shipped model runs with (fp16-rounded, back in its own dtype), so that
    what is measured before writing the folder (post-processing, a detector's threshold) is what users get."""
    return {k: v.half().to(v.dtype) if v.is_floating_point() else v for k, v in state.items()}


def save_weights(state: dict, path: Path) -> None:
    """Write a state dict as fp16 (floating tensors; others as they are), replacing ``path`` only when complete."""
    import torch

    tmp = path.with_name(path.name + ".partial")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, tmp)
    os.replace(tmp, path)


def write_card(card: ModelCard, folder: Path) -> Path:
    """Write ``folder``/model.json from ``card`` (replaced only when complete)."""
    path = folder / "model.json"
    tmp = path.with_name("model.json.partial")
    tmp.write_text(json.dumps(card.to_json(), indent=1, default=str))
    os.replace(tmp, path)
    return path


def write_log(history: list[dict], folder: Path) -> Path:
    """training_log.csv: epoch, train_loss, lr, seconds, then one column per validation metric."""
    metric_names = list(dict.fromkeys(m["name"] for row in history for m in row.get("metrics", [])))
    path = folder / LOG_FILE
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "train_loss", "lr", "seconds", *metric_names])
        for row in history:
            values = {m["name"]: m["value"] for m in row.get("metrics", [])}
            writer.writerow([row["epoch"], row["train_loss"], row["lr"], row["seconds"],
                             *(values.get(n, "") for n in metric_names)])
    return path


def write_model_folder(folder: Path, card: ModelCard, state: dict, history: list[dict]) -> Path:
    """Write the weights, the training log and the card (last: a folder with model.json is complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(state, folder / card.weights)
    write_log(history, folder)
    write_card(card, folder)
    return folder
