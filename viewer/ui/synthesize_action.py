"""The AI panel's "Synthesize CT from MR" button: the selected translation model runs on the shown MR in a
background worker; the synthetic volume (flagged, with a banner in every view) is handed on as a new image."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton

from viewer.core.errors import ModelError

DEFAULT_TEXT = "Synthesize CT from MR"


def can_synthesize(card, volume) -> bool:
    """Whether ``card`` is a translation model taking ``volume`` as its input (the input's modality fits, or its
    file records none)."""
    from ai.translation import check_modalities

    if card is None or volume is None or card.task != "translation" or len(card.inputs) != 1:
        return False
    try:
        check_modalities(card, [volume])
    except ModelError:
        return False
    return True


def button_text(card) -> str:
    """'Synthesize <output> from <input>' for a translation card, else DEFAULT_TEXT."""
    if card is None or card.task != "translation" or len(card.inputs) != 1:
        return DEFAULT_TEXT
    return f"Synthesize {card.output.get('modality', '?')} from {card.modalities[0]}"


def synthesize_job(model_id: str, volume):
    """Job for AiPanel.start_job: run_translation of ``model_id`` on ``volume`` (a TranslationResult)."""

    def job(progress, cancel):
        from ai.registry import load_model
        from ai.translation import run_translation

        return run_translation(load_model(model_id), [volume], device="auto", progress=progress, cancel=cancel)

    return job


def synthesize_button(panel) -> QPushButton:
    """The button for ``panel`` (an AiPanel): enabled for a translation model and an image of its input modality;
    a finished run emits ``panel.volume_ready(volume)`` and says what it warned in the status line."""
    button = QPushButton(DEFAULT_TEXT)
    button.setToolTip("make a synthetic image with the selected translation model; it opens as a new image, "
                      "marked SYNTHETIC in every view and in every file it is saved to")

    def selected():
        row = panel.models.currentRow()
        cards = getattr(panel, "_cards", [])
        return cards[row] if 0 <= row < len(cards) else None

    def update(*_) -> None:
        card = selected()
        button.setText(button_text(card))
        busy = panel.worker is not None and panel.worker.isRunning()
        button.setEnabled(not busy and can_synthesize(card, panel.state.volume))

    def done(result) -> None:
        panel.status.setText("; ".join([f"made {result.volume.synthetic}", *result.warnings]))
        panel.volume_ready.emit(result.volume)

    def run() -> None:
        card = selected()
        if can_synthesize(card, panel.state.volume):
            panel.start_job(button_text(card).lower(), synthesize_job(card.id, panel.state.volume), done)
            update()

    button.clicked.connect(run)
    panel.models.currentRowChanged.connect(update)
    panel.state.volume_changed.connect(update)
    panel.job_done.connect(update)
    panel.failed.connect(update)
    return button
