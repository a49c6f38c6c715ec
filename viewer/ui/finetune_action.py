"""The AI panel's "Improve this model with my corrected masks": the selected model fine-tuned on the shown
segmentation (labels mapped to the model's by name) in a background worker; the new version is written to the
user model folder and listed, the parent model is only read (ai.training.finetune)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSpinBox, QWidget

from viewer.core.labels import LABEL_SOURCE_META

TEXT = "Improve this model with my corrected masks"
DEFAULT_EPOCHS = 5


def shown_segmentation(state):
    """The Segmentation the views show (ViewerState.labels made by Segmentation.as_volume), or None."""
    return state.labels.meta.get(LABEL_SOURCE_META) if state.labels is not None else None


def shared_labels(card, segmentation) -> dict[int, str]:
    """{segmentation label id: name} of its labels whose names (case-insensitive) are labels of ``card`` (not
    background): what fine-tuning can learn from."""
    if card is None or segmentation is None:
        return {}
    model = {name.lower() for k, name in card.labels.items() if k}
    return {k: name for k, name in segmentation.table.names().items() if k and name.lower() in model}


def can_finetune(card, segmentation) -> bool:
    """Whether ``card`` is a radview built-in segmentation model and ``segmentation`` shares labels with it."""
    from ai.training.finetune import fine_tunable

    return fine_tunable(card) and bool(shared_labels(card, segmentation))


def new_version_folder(card, root: Path | None = None) -> Path:
    """A new folder for a fine-tuned version of ``card`` in the user model folder (ai.registry.user_models_dir)."""
    from ai.registry import user_models_dir

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return (root or user_models_dir()) / f"{card.id}-ft-{stamp}"


def finetune_job(parent: str, card, segmentation, out: Path, epochs: int):
    """Job for AiPanel.start_job: ai.training.finetune of ``parent`` (a model folder) on ``segmentation``'s
    reference image with a copy of its labels, ids mapped to ``card``'s by name; returns the new folder. A
    cancelled run leaves no folder behind."""
    image = segmentation.reference
    labels = image.with_array(segmentation.array.copy(), modality="SEG", units="label")
    names = shared_labels(card, segmentation)

    def job(progress, cancel):
        from ai.training.datasets import relabel
        from ai.training.finetune import finetune
        from viewer.core.errors import ModelError

        mapped = relabel(labels, names, card.labels)
        if not mapped.array.any():
            raise ModelError(f"the segmentation holds no voxels of {', '.join(names.values())}: nothing to learn from")
        try:
            return finetune(parent, [[image]], [mapped], out, epochs=epochs, names=[segmentation.name],
                            progress=progress, cancel=cancel)
        except BaseException:  # cancelled or failed: no half-written version in the user's models
            shutil.rmtree(out, ignore_errors=True)
            raise

    return job


def finetune_row(panel) -> QWidget:
    """The button and its epochs box for ``panel`` (an AiPanel): enabled for a built-in segmentation model and a
    shown segmentation with labels of the same names; when the run ends the panel lists and selects the new
    version (``panel.refresh`` then ``panel.select_folder``)."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    button = QPushButton(TEXT)
    epochs = QSpinBox()
    epochs.setRange(1, 200)
    epochs.setValue(DEFAULT_EPOCHS)
    epochs.setSuffix(" epochs")
    layout.addWidget(button, 1)
    layout.addWidget(epochs)
    row.button, row.epochs = button, epochs

    def update(*_) -> None:
        card, seg = panel.current_card, shown_segmentation(panel.state)
        busy = panel.cancel_button.isEnabled()  # a job of the panel runs (off once it has reported its end)
        button.setEnabled(not busy and can_finetune(card, seg))
        names = ", ".join(shared_labels(card, seg).values())
        button.setToolTip(f"fine-tune {card.id} on the shown segmentation's {names}; the new version is added to "
                          "your models, the model itself is not changed" if names else
                          "needs a built-in segmentation model and a shown segmentation with labels of its names")

    def done(folder) -> None:
        panel.refresh()
        panel.select_folder(folder)
        panel.status.setText(f"new version {panel.current_card.version} written to {folder} and listed")

    def run() -> None:
        card, seg = panel.current_card, shown_segmentation(panel.state)
        if can_finetune(card, seg):
            out = new_version_folder(card)
            panel.start_job(f"fine-tuning {card.id}", finetune_job(panel.current_model_path, card, seg, out,
                                                                   epochs.value()), done)
            update()

    button.clicked.connect(run)
    panel.models.currentRowChanged.connect(update)
    panel.state.labels_changed.connect(update)
    panel.state.volume_changed.connect(update)
    panel.job_done.connect(update)
    panel.failed.connect(update)
    update()
    return row
