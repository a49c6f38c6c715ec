"""AI panel: installed models with their cards, run on the current volume off the GUI thread, Cancel.

The result becomes a new segmentation marked AI-written (provenance), ready for hand correction.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from viewer.core.errors import Cancelled, RadviewError
from viewer.core.progress import CancelToken
from viewer.ui.state import ViewerState

log = logging.getLogger(__name__)


class InferenceWorker(QThread):
    """Runs ai.engine.run_segmentation in a thread; never touches widgets."""

    progress = Signal(float, str)
    finished_ok = Signal(object)  # SegmentationResult
    failed = Signal(str)

    def __init__(self, model_id: str, volume, tta: bool, parent=None):
        super().__init__(parent)
        self.model_id, self.volume, self.tta = model_id, volume, tta
        self.cancel_token = CancelToken()

    def run(self) -> None:  # noqa: D401 - QThread entry point
        from ai.engine import run_segmentation
        from ai.registry import load_model

        try:
            model = load_model(self.model_id)
            result = run_segmentation(model, [self.volume], device="auto", tta=self.tta, progress=self.progress.emit,
                                      cancel=self.cancel_token, return_probabilities=True)
            self.finished_ok.emit(result)
        except Cancelled:
            self.failed.emit("inference cancelled; no segmentation was created")
        except RadviewError as err:
            self.failed.emit(str(err))
        except Exception as err:  # keep the app up; the traceback goes to the log
            log.exception("inference failed")
            self.failed.emit(f"inference failed: {err}")


class AiPanel(QWidget):
    """Model list + card, Run / Cancel with progress; emits ``segmentation_ready(Segmentation)``."""

    segmentation_ready = Signal(object)
    failed = Signal(str)

    def __init__(self, state: ViewerState, session, parent=None):
        super().__init__(parent)
        self.state, self.session = state, session
        self.models = QListWidget()
        self.models.currentRowChanged.connect(self._show_card)
        self.card = QTextBrowser()
        self.tta = QCheckBox("Mirroring test-time augmentation")
        self.run_button = QPushButton("Run on current volume")
        self.run_button.clicked.connect(self.run_model)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        for w in (QLabel("Models"), self.models, self.card, self.tta, self.run_button, self.cancel_button,
                  self.progress, self.status):
            layout.addWidget(w)
        self.worker: InferenceWorker | None = None
        self._cards = []
        self.refresh()

    def refresh(self) -> None:
        """Re-read the installed models (no torch import: cards are JSON)."""
        from ai.registry import list_models

        self._cards = list_models()
        self.models.clear()
        for c in self._cards:
            self.models.addItem(f"{c.name} ({c.id} {c.version})")
        if self._cards:
            self.models.setCurrentRow(0)

    def _show_card(self, row: int) -> None:
        if not 0 <= row < len(self._cards):
            self.card.setHtml("")
            return
        c = self._cards[row]
        metrics = "".join(f"<li>{m['name']}: {m['value']} <i>({m['data']})</i></li>" for m in c.metrics)
        labels = ", ".join(v for k, v in sorted(c.labels.items()) if k)
        self.card.setHtml(
            f"<b>{c.name}</b> {c.version}<br>task: {c.task}; inputs: {', '.join(c.modalities)}<br>labels: {labels}"
            f"<p><b>Intended use:</b> {c.intended_use}</p><p><b>Limitations:</b> {c.limitations}</p>"
            f"<p><b>Training data:</b> {c.training_data}</p><b>Metrics</b><ul>{metrics}</ul>"
            f"<p>Licence: {c.license}</p>")

    @property
    def current_model_id(self) -> str | None:
        row = self.models.currentRow()
        return self._cards[row].id if 0 <= row < len(self._cards) else None

    def run_model(self) -> InferenceWorker | None:
        """Start inference of the selected model on the current volume."""
        if self.state.volume is None or self.current_model_id is None:
            self.status.setText("open an image and choose a model first")
            return None
        self.worker = InferenceWorker(self.current_model_id, self.state.volume, self.tta.isChecked(), self)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished_ok.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"running {self.current_model_id}...")
        self.worker.start()
        return self.worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel_token.cancel()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(message)

    def _finish(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_done(self, result) -> None:
        self._finish()
        vol = self.state.volume
        seg = self.session.add_ai_segmentation(vol, result.labels.array, result.names, result.model_id,
                                               result.model_version)
        self.state.set_labels(seg.as_volume())
        self.status.setText(f"{result.model_id}: {len(result.names)} labels, marked AI-written")
        self.segmentation_ready.emit(seg)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self.progress.setValue(0)
        self.status.setText(message)
        self.failed.emit(message)
