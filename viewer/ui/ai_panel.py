"""AI panel: installed models with their cards, run on the current volume (or a box ROI) off the GUI
thread with progress and Cancel; explain (Grad-CAM, uncertainty) as a heat map; detect.

A segmentation result becomes a new segmentation marked AI-written (provenance), ready for hand
correction; heat maps and detections go to the ViewerState, which every view draws.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSlider,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from viewer.core.progress import CancelToken
from viewer.core.session import ai_result_segmentation
from viewer.ui.job_widgets import job_widgets
from viewer.ui.state import ViewerState
from viewer.ui.synthesize_action import synthesize_button
from viewer.ui.workers import Worker

#: Default half size (mm) of the box ROI set around the crosshair.
ROI_HALF_SIZE_MM = 60.0
#: A job: (progress callback, cancel token) -> result; runs in the worker thread, touches no widget.
Job = Callable[[Callable[[float, str], None], CancelToken], object]


def segment_job(model_id: str, volume, *, tta: bool = False, roi=None, layer: bool = False) -> Job:
    """Job: run_segmentation of ``model_id`` on ``volume`` (probabilities kept for scores and uncertainty);
    with ``layer``, (result, the AI-written Segmentation made from it here, off the GUI thread)."""

    def job(progress, cancel):
        from ai.engine import run_segmentation
        from ai.registry import load_model

        result = run_segmentation(load_model(model_id), [volume], device="auto", tta=tta, progress=progress,
                                  cancel=cancel, return_probabilities=True, roi=roi)
        if not layer:
            return result
        return result, ai_result_segmentation(volume, result)

    return job


def grad_cam_job(model_id: str, volume, label: int) -> Job:
    """Job: Grad-CAM heat map (0..1, image grid) of ``label`` where the model predicts it."""

    def job(progress, cancel):
        from ai.explain import grad_cam
        from ai.registry import load_model

        return grad_cam(load_model(model_id), [volume], label, progress=progress, cancel=cancel)

    return job


def tta_uncertainty_job(model_id: str, volume) -> Job:
    """Job: spread of the model's mirrored (TTA) predictions per voxel, on the image grid."""

    def job(progress, cancel):
        from ai.explain import tta_uncertainty
        from ai.registry import load_model

        return tta_uncertainty(load_model(model_id), [volume], progress=progress, cancel=cancel)

    return job


def detect_job(model_id: str, volume, *, tta: bool = False, roi=None) -> Job:
    """Job: ai.detection.run_detection of ``model_id`` on ``volume`` (a centre-point detector's heat-map peaks)."""

    def job(progress, cancel):
        from ai.detection import run_detection
        from ai.registry import load_model

        return run_detection(load_model(model_id), [volume], device="auto", tta=tta, progress=progress, cancel=cancel,
                             roi=roi)

    return job


def top_probability_uncertainty(result):
    """1 - the top softmax probability per voxel of a SegmentationResult, as a described Volume."""
    return result.uncertainty.with_array(result.uncertainty.array,
                                         description=f"{result.model_id} uncertainty (1 - top probability)")


class AiWorker(Worker):
    """Runs one AI job in a thread and reports progress, the result or a one-line error; never touches widgets."""

    cancel_message = "{what} cancelled; nothing was created"

    def __init__(self, what: str, job: Job, parent=None):
        super().__init__(what, parent)
        self.job = job

    def work(self):
        """The job's result; dropped (Cancelled) when a cancel came while a job that cannot stop midway ran."""
        result = self.job(self.progress.emit, self.cancel_token)
        self.cancel_token.raise_if_cancelled()
        return result


class AiPanel(QWidget):
    """Model list + card; Run / Explain / Uncertainty / Detect on the current volume or the box ROI, one
    background job at a time with progress and Cancel; heat-map display controls.

    Signals: ``segmentation_ready(Segmentation)``, ``heatmap_ready(Volume)``, ``detections_ready(list)``,
    ``volume_ready(Volume)`` (Synthesize CT from MR),
    ``failed(str)``; every finished job also emits ``job_done(what)``.
    """

    segmentation_ready = Signal(object)
    heatmap_ready = Signal(object)
    detections_ready = Signal(object)
    volume_ready = Signal(object)  # a new image made here (a synthetic CT from an MR: synthesize_action)
    job_done = Signal(str)
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
        self.cancel_button, self.progress, self.status = job_widgets(self.cancel)
        self.synthesize_button = synthesize_button(self)
        layout = QVBoxLayout(self)
        for w in (QLabel("Models"), self.models, self.card, self.tta, self._build_roi_box(), self.run_button,
                  self.synthesize_button,
                  self._build_explain_box(), self.cancel_button, self.progress, self.status):
            layout.addWidget(w)
        self._job_buttons = (self.run_button, self.explain_button, self.uncertainty_button, self.detect_button)
        self.worker: AiWorker | None = None
        self._on_result: Callable[[object], None] | None = None
        self._job_volume = None  # the image the running job works on
        self._results: dict[tuple, object] = {}  # (model id, roi, tta) -> latest SegmentationResult, this image
        self._cards = []
        state.volume_changed.connect(self._on_volume)
        state.roi_changed.connect(self._show_roi)
        self.refresh()

    # ------------------------------------------------------------------ construction
    def _build_roi_box(self) -> QGroupBox:
        box = QGroupBox("Region")
        grid = QGridLayout(box)
        self.roi_size = QDoubleSpinBox()
        self.roi_size.setRange(5.0, 500.0)
        self.roi_size.setValue(ROI_HALF_SIZE_MM)
        self.roi_size.setSuffix(" mm")
        self.roi_size.setToolTip("half size of the box set around the crosshair")
        self.roi_at_cursor_button = QPushButton("Box at crosshair \u00b1")
        self.roi_at_cursor_button.clicked.connect(self.set_roi_at_cursor)
        self.roi_clear_button = QPushButton("Whole image")
        self.roi_clear_button.clicked.connect(lambda: self.state.set_roi(None))
        self.roi_label = QLabel("whole image (or drag a box with the ROI tool)")
        self.roi_label.setWordWrap(True)
        grid.addWidget(self.roi_at_cursor_button, 0, 0)
        grid.addWidget(self.roi_size, 0, 1)
        grid.addWidget(self.roi_clear_button, 0, 2)
        grid.addWidget(self.roi_label, 1, 0, 1, 3)
        return box

    def _build_explain_box(self) -> QGroupBox:
        box = QGroupBox("Explain and detect")
        grid = QGridLayout(box)
        self.label_box = QComboBox()
        self.explain_button = QPushButton("Grad-CAM")
        self.explain_button.clicked.connect(self.explain)
        self.uncertainty_button = QPushButton("Uncertainty")
        self.uncertainty_button.clicked.connect(self.estimate_uncertainty)
        self.detect_button = QPushButton("Detect")
        self.detect_button.clicked.connect(self.detect)
        self.heat_visible = QCheckBox("Heat map")
        self.heat_visible.setChecked(True)
        self.heat_visible.toggled.connect(lambda on: self.state.set_heatmap_style(visible=on))
        self.heat_opacity = QSlider(Qt.Horizontal)
        self.heat_opacity.setRange(0, 100)
        self.heat_opacity.setValue(round(100 * self.state.heatmap_opacity))
        self.heat_opacity.valueChanged.connect(lambda v: self.state.set_heatmap_style(opacity=v / 100))
        self.heat_colormap = QComboBox()
        self.heat_colormap.addItems(["jet", "hot"])
        self.heat_colormap.currentTextChanged.connect(lambda name: self.state.set_heatmap_style(colormap=name))
        row = QHBoxLayout()
        for w in (self.heat_visible, self.heat_colormap):
            row.addWidget(w)
        grid.addWidget(QLabel("Label"), 0, 0)
        grid.addWidget(self.label_box, 0, 1, 1, 2)
        grid.addWidget(self.explain_button, 1, 0)
        grid.addWidget(self.uncertainty_button, 1, 1)
        grid.addWidget(self.detect_button, 1, 2)
        grid.addLayout(row, 2, 0, 1, 2)
        grid.addWidget(self.heat_opacity, 2, 2)
        return box

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
        self.label_box.clear()
        if not 0 <= row < len(self._cards):
            self.card.setHtml("")
            return
        c = self._cards[row]
        for label, name in sorted(c.labels.items()):
            if label:
                self.label_box.addItem(name, label)
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

    @property
    def model_ids(self) -> list[str]:
        """Ids of the installed models, in list order."""
        return [c.id for c in self._cards]

    # ------------------------------------------------------------------ region of interest
    def set_roi_at_cursor(self) -> None:
        """Box ROI centred on the crosshair, the spin box's half size each way."""
        from viewer.core.roi_box import box_around

        if self.state.volume is not None:
            self.state.set_roi(box_around(self.state.cursor, self.roi_size.value()))

    def _show_roi(self, box) -> None:
        if box is None:
            self.roi_label.setText("whole image (or drag a box with the ROI tool)")
            return
        (x0, y0, z0), (x1, y1, z1) = box
        self.roi_label.setText(f"box {x1 - x0:.0f} x {y1 - y0:.0f} x {z1 - z0:.0f} mm at "
                               f"({(x0 + x1) / 2:.0f}, {(y0 + y1) / 2:.0f}, {(z0 + z1) / 2:.0f})")

    # ------------------------------------------------------------------ jobs
    def _ready(self) -> bool:
        if self.state.volume is None or self.current_model_id is None:
            self.status.setText("open an image and choose a model first")
            return False
        return True

    def start_job(self, what: str, job: Job, on_result: Callable[[object], None]) -> AiWorker | None:
        """Run ``job`` in the background; ``on_result(result)`` runs on the GUI thread when it succeeds."""
        if self.worker is not None and self.worker.isRunning():
            self.status.setText(f"busy: {self.worker.what} (Cancel it first)")
            return None
        self.worker = AiWorker(what, job, self)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished_ok.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self._on_result, self._job_volume = on_result, self.state.volume
        for b in self._job_buttons:
            b.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText(f"{what}...")
        self.worker.start()
        return self.worker

    def segmentation(self, model_id: str, on_result: Callable[..., None], *, layer: bool = False
                     ) -> AiWorker | None:
        """The SegmentationResult of ``model_id`` on the current volume and ROI: from this volume's earlier
        run (``on_result`` called at once, returns None) or from a new background run (returns the worker).
        With ``layer``, a new run also makes the AI-written Segmentation in the background: ``on_result(result,
        segmentation)`` (a reused result gets ``on_result(result)``)."""
        key = (model_id, self.state.roi, self.tta.isChecked())
        if key in self._results:
            on_result(self._results[key])
            return None

        def keep(out) -> None:
            result, *made = out if layer else (out,)
            self._results = {key: result}  # only the latest: a result holds two image-sized float maps
            on_result(result, *made)

        job = segment_job(model_id, self.state.volume, tta=key[2], roi=key[1], layer=layer)
        return self.start_job(f"running {model_id}", job, keep)

    def run_model(self) -> AiWorker | None:
        """Segment the current volume (or box ROI) with the selected model; the result is a new AI-written
        segmentation on the full image grid."""
        if not self._ready():
            return None
        return self.segmentation(self.current_model_id, self._adopt_segmentation, layer=True)

    def explain(self) -> AiWorker | None:
        """Grad-CAM heat map of the chosen label (where the selected model predicts it)."""
        if not self._ready() or self.label_box.currentData() is None:
            return None
        label = int(self.label_box.currentData())
        return self.start_job(f"Grad-CAM of {self.label_box.currentText()}",
                              grad_cam_job(self.current_model_id, self.state.volume, label), self._show_heatmap)

    def estimate_uncertainty(self) -> AiWorker | None:
        """Uncertainty heat map of the selected model: the spread of its mirrored (TTA) predictions when its
        card allows mirroring; otherwise (mirrored inputs would be invalid for it) 1 - its top probability."""
        if not self._ready():
            return None
        model_id = self.current_model_id
        if self._cards[self.models.currentRow()].mirror_axes:
            return self.start_job(f"TTA uncertainty of {model_id}", tta_uncertainty_job(model_id, self.state.volume),
                                  self._show_heatmap)
        return self.segmentation(model_id, lambda result: self._show_heatmap(top_probability_uncertainty(result)))

    def detect(self) -> AiWorker | None:
        """Connected components of the selected model's result (on the current volume / ROI) as detections,
        with the thresholds of its card; a centre-point detector (card detection kind "heatmap"): its peaks."""
        if not self._ready():
            return None
        card = self._cards[self.models.currentRow()]
        if card.detection.get("kind") == "heatmap":
            job = detect_job(card.id, self.state.volume, tta=self.tta.isChecked(), roi=self.state.roi)
            return self.start_job(f"running {card.id}", job, lambda result: self._publish(result, result.detections))
        return self.segmentation(card.id, lambda result: self._show_detections(result, card))

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel_token.cancel()

    # ------------------------------------------------------------------ results (GUI thread)
    def _on_volume(self, _vol) -> None:
        self._results.clear()
        self._show_roi(None)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(message)

    def _finish(self) -> None:
        for b in self._job_buttons:
            b.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_done(self, result) -> None:
        self._finish()
        self.progress.setValue(1000)
        what = self.worker.what
        on_result, self._on_result = self._on_result, None
        if self.state.volume is not self._job_volume:  # another image was opened meanwhile
            self.status.setText(f"{what}: the image changed while it ran; result discarded")
        elif on_result is not None:
            on_result(result)
        self.job_done.emit(what)

    def _adopt_segmentation(self, result, seg=None) -> None:
        """Keep ``seg`` (made in the background from ``result``; made here if None) as the shown segmentation."""
        seg = self.session.adopt_ai_result(self.state.volume, result, seg)
        self.state.set_labels(seg.as_volume())
        where = "in the box ROI" if self.state.roi is not None else "on the whole image"
        self._report(result, f"{result.model_id}: {len(result.names)} labels {where}, marked AI-written")
        self.segmentation_ready.emit(seg)

    def _report(self, result, text: str) -> None:
        """Status line for a segmentation result, with what the run could not do (e.g. no mirroring)."""
        self.status.setText("; ".join([text, *result.warnings]))

    def _show_heatmap(self, heat) -> None:
        self.state.set_heatmap(heat)
        self.status.setText(f"{heat.description}: max {float(heat.array.max()):.3g}")
        self.heatmap_ready.emit(heat)

    def _show_detections(self, result, card) -> None:
        from ai.detection import card_min_voxels, detections_from_labels

        self._publish(result, detections_from_labels(result, card_min_voxels(card)))

    def _publish(self, result, detections: list[dict]) -> None:
        """Show ``detections`` (of ``result``: a SegmentationResult or DetectionResult) in every view and the list."""
        self.state.set_detections(detections)
        self._report(result, f"{result.model_id}: {len(detections)} detections")
        self.detections_ready.emit(detections)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self._on_result = None
        self.progress.setValue(0)
        self.status.setText(message)
        self.failed.emit(message)
