"""Fine-tuning: a new version of a built-in segmentation model from corrected masks (``radview finetune``, the GUI's
"Improve this model with my corrected masks").

The parent's card gives the network, grid, normalisation and labels; every weight is copied from the parent
(ai.training.transfer, part "all") and trained a few epochs on the given cases with mild augmentation and a low
learning rate. The new folder gets the parent's id, the version ``<parent version>-ft.<UTC date+time>``, a card
naming the parent (id, version, folder, SHA-256 of its weights) and Dice before (parent) and after (new model) on
the fine-tuning data itself and, when given, on validation cases. The parent folder is only read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ai.model import ModelCard
from ai.training.cases import Case
from viewer.core.errors import ModelError
from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.volume import Volume

#: training settings of a fine-tuning run (the rest of the config comes from the parent's card)
FINETUNE_SETTINGS = {
    "augmentation": {"rotate_deg": [5, 5, 5], "scale": [0.95, 1.05], "intensity_shift": 0.05,
                     "intensity_scale": 0.05, "noise_std": 0.01, "probability": 0.5},
    "optimizer": {"name": "adamw", "lr": 0.0005, "weight_decay": 0.00001, "schedule": "constant"},
    "iterations_per_epoch": 20,
    "batch_size": 2,
    "seed": 0,
    "loss": "dice_ce",
}


def fine_tunable(card: ModelCard | None) -> bool:
    """Whether ``card`` is a radview built-in segmentation model, the kind fine-tuning starts from."""
    return card is not None and card.format == "builtin" and card.task == "segmentation"


def fine_tuning_parent(parent: str | Path) -> tuple[Path, ModelCard]:
    """(folder, card) of the model ``parent`` (id or folder) to fine-tune; ModelError naming its folder unless it
    is a radview built-in segmentation model (checked before any image or label map is read)."""
    from ai.registry import find_model

    folder = find_model(str(parent)).resolve()
    card = ModelCard.from_file(folder / "model.json") if (folder / "model.json").is_file() else None
    if not fine_tunable(card):
        raise ModelError("fine-tuning needs a radview built-in segmentation model (model.json with format 'builtin')",
                         folder)
    return folder, card


def finetune(parent: str | Path, images: list[list[Volume]], labels: list[Volume], out: str | Path, *,
             epochs: int = 10, names: list[str] | None = None,
             validation: tuple[list[list[Volume]], list[Volume]] | None = None, iterations_per_epoch: int | None = None,
             device: str = "auto", threads: int | None = None, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> Path:
    """Fine-tune model ``parent`` (id or folder) on cases ``images[i]`` (its input channels, in card order) with
    ``labels[i]`` (a label map on ``images[i][0]``'s grid holding the PARENT's label ids); write the new model
    folder ``out`` and return it. ``names``: a name per case for the card (default "case 1", ...);
    ``validation``: (images, labels) of held-out cases measured before and after.

    ModelError when the parent is not a radview built-in segmentation model or ``out`` is inside its folder;
    Cancelled when ``cancel`` fires (nothing is written to ``out`` but a checkpoint)."""
    from ai.registry import load_model
    from ai.training.config import TrainConfig
    from ai.training.loop import CHECKPOINT, fit
    from ai.training.model_folder import write_card
    from ai.training.tasks import task_for, with_card_inputs
    from ai.training.transfer import sha256

    progress = progress or no_progress
    folder, parent_card = fine_tuning_parent(parent)
    out = Path(out).resolve()
    if out == folder or folder in out.parents:
        raise ModelError("the fine-tuned model must go to a new folder, not into its parent's", out)
    if len(images) != len(labels) or not labels:
        raise ModelError(f"give one label map per case: {len(images)} case(s) of images, {len(labels)} label map(s)")
    cases = make_cases(images, labels, names or [f"case {i + 1}" for i in range(len(labels))], "fine-tuning data")
    held_out = make_cases(*validation, [f"validation case {i + 1}" for i in range(len(validation[1]))],
                          "validation data") if validation else []
    config = TrainConfig.from_dict(finetune_config(parent_card, folder, epochs, iterations_per_epoch, cases,
                                                   held_out), folder)
    card = config.model_card()
    cases, held_out = [with_card_inputs(c, card) for c in cases], [with_card_inputs(c, card) for c in held_out]
    card.parent = {"id": parent_card.id, "version": parent_card.version, "folder": str(folder),
                   "weights_sha256": sha256(folder / parent_card.weights), "how": "finetune"}
    if parent_card.postprocessing:  # the parent's rule: before and after are measured through one pipeline
        card.postprocessing = {**parent_card.postprocessing,
                               "inherited_from": f"{parent_card.id} {parent_card.version} (not chosen again)"}
    task = task_for(config)
    parent_model = load_model(str(folder))
    progress(0.0, f"measuring {parent_card.id} {parent_card.version} before fine-tuning")
    before = measure(task, parent_model, cases, held_out, device)
    fit(config, cases, held_out, out, device=device, threads=threads, card=card, cancel=cancel,
        progress=lambda f, m: progress(0.05 + 0.85 * f, m))
    progress(0.92, "measuring the fine-tuned model")
    after = measure(task, load_model(str(out)), cases, held_out, device)
    new_card = ModelCard.from_file(out / "model.json")
    new_card.metrics = after
    new_card.comparisons = [{"name": "before/after fine-tuning", "data": "Dice end to end on each set named by "
                             "each metric's data (the fine-tuning cases are NOT held out)",
                             "runs": [{"label": f"parent {parent_card.id} {parent_card.version}", "metrics": before},
                                      {"label": f"fine-tuned {new_card.version}", "metrics": after}]}]
    new_card.changelog = {**parent_card.changelog,
                          new_card.version: f"fine-tuned from {parent_card.version} on {len(cases)} corrected case(s)"}
    write_card(new_card, out)
    (out / CHECKPOINT).unlink(missing_ok=True)
    progress(1.0, f"wrote {out}")
    return out


def make_cases(images: list[list[Volume]], labels: list[Volume], names: list[str], what: str) -> list[Case]:
    """Cases from in-memory volumes; ``source`` says what they are and where the first image came from."""
    cases = []
    for name, imgs, lab in zip(names, images, labels, strict=True):
        origin = (imgs[0].meta.get("files") or [imgs[0].meta.get("path") or imgs[0].description or "in memory"])[0]
        cases.append(Case(name, list(imgs), lab, source=f"{what}: {origin}"))
    return cases


def finetune_config(card: ModelCard, folder: Path, epochs: int, iterations: int | None, cases: list[Case],
                    held_out: list[Case]) -> dict:
    """The config mapping of a fine-tuning run of ``card`` (recorded in the new card as the run's config)."""
    version = f"{card.version}-ft.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    settings = json.loads(json.dumps(FINETUNE_SETTINGS))
    settings["augmentation"]["flip_axes"] = list(card.mirror_axes)  # flips only where the parent allowed mirroring
    if iterations:
        settings["iterations_per_epoch"] = iterations
    return {"id": card.id, "version": version, "name": card.name, "task": card.task, "inputs": card.inputs,
            "normalization": card.normalization, "labels": card.labels, "spacing": card.spacing,
            "patch_size": card.patch_size, "network": card.network, "mirror_axes": card.mirror_axes,
            "data": {"train": [{"kind": "corrected_masks", "cases": [c.name for c in cases]}],
                     "validation": [{"kind": "held_out", "cases": [c.name for c in held_out]}] if held_out else []},
            "epochs": epochs, "init": {"from": str(folder), "part": "all"},
            "card": {k: getattr(card, k) for k in ("intended_use", "limitations", "license", "authors")},
            **settings}


def measure(task, model, cases: list[Case], held_out: list[Case], device) -> list[dict]:
    """Dice of ``model`` on the fine-tuning cases and on the held-out ones, each metric naming its data."""
    metrics = [{**m, "data": f"fine-tuning data itself (not held out): {m['data']}"}
               for m in task.evaluate(model, cases, device=device)]
    if held_out:
        metrics += [{**m, "data": f"held-out validation: {m['data']}"}
                    for m in task.evaluate(model, held_out, device=device)]
    return metrics
