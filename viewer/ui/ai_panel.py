"""AI panel: installed models with their cards, run on the current volume (or a box ROI) off the GUI
thread with progress and Cancel; explanation maps (Grad-CAM, attention gates, uncertainty) as heat-map
toggles with a colour bar; detect.

A segmentation result becomes a new segmentation marked AI-written (provenance), ready for hand
correction; heat maps and detections go to the ViewerState, which every view draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

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

from viewer.core.errors import RadviewError
from viewer.core.progress import CancelToken
from viewer.core.session import ai_result_segmentation
from viewer.ui.colour_bar import ColourBar
from viewer.ui.finetune_action import finetune_row
from viewer.ui.job_widgets import job_widgets
from viewer.ui.state import ViewerState
from viewer.ui.synthesize_action import synthesize_button
from viewer.ui.workers import Worker

log = logging.getLogger(__name__)
#: Default half size (mm) of the box ROI set around the crosshair.
ROI_HALF_SIZE_MM = 60.0
#: The explanation maps the panel toggles (ai.explain.METHODS) and their button texts.
MAP_BUTTONS = {"gradcam": "Grad-CAM", "attention": "Attention", "uncertainty": "Uncertainty"}
#: What the Grad-CAM and uncertainty maps show (their buttons' tool tips)
MAP_TIPS = {"gradcam": "where the evidence for the label is (HiResCAM), 0..1",
            "uncertainty": "predictive entropy of two test-time runs, 0 (certain) .. 1"}
#: A job: (progress callback, cancel token) -> result; runs in the worker thread, touches no widget.
Job = Callable[[Callable[[float, str], None], CancelToken], object]


def model_inputs(card, volume, fused=None) -> list:
    """The inputs of a model run on the shown ``volume``: the volume, and for a two-input model (PET/CT fusion
    models: CT, PET) the fused volume ``fused`` = (moving volume, fixed -> moving Transform) placed on its grid
    through the fusion's transform. ModelError when the model needs a second input and none is fused."""
    from viewer.core.errors import ModelError
    from viewer.core.registration.placement import place_on_first

    if len(card.inputs) == 1:
        return [volume]
    if len(card.inputs) != 2 or fused is None:
        raise ModelError(f"model {card.id} needs {' and '.join(card.modalities)}: fuse the "
                         f"{' and '.join(card.modalities[1:])} over the shown image first (Fusion panel)")
    moving, transform = fused
    return place_on_first([volume, moving], [transform])


def segment_job(model_id: str, volume, *, tta: bool = False, roi=None, layer: bool = False, fused=None) -> Job:
    """Job: run_segmentation of ``model_id`` on ``volume`` (and the ``fused`` volume for a two-input model, see
    model_inputs; probabilities kept for scores and uncertainty); with ``layer``, (result, the AI-written
    Segmentation made from it here, off the GUI thread)."""

    def job(progress, cancel):
        from ai.engine import run_segmentation
        from ai.registry import load_model

        model = load_model(model_id)
        result = run_segmentation(model, model_inputs(model.card, volume, fused), device="auto", tta=tta,
                                  progress=progress, cancel=cancel, return_probabilities=True, roi=roi)
        if not layer:
            return result
        return result, ai_result_segmentation(volume, result)

    return job


def explain_job(model_id: str, volume, method: str, label: str | None = None) -> Job:
    """Job: the ai.explain map ``method`` (gradcam of the label named ``label``, attention, uncertainty) of
    ``model_id`` on ``volume``, a float Volume on its grid."""

    def job(progress, cancel):
        from ai.explain import explain
        from ai.registry import load_model

        return explain(load_model(model_id), [volume], method, label=label, progress=progress, cancel=cancel)

    return job


def detect_job(model_id: str, volume, *, tta: bool = False, roi=None) -> Job:
    """Job: ai.detection.run_detection of ``model_id`` on ``volume`` (a centre-point detector's heat-map peaks)."""

    def job(progress, cancel):
        from ai.detection import run_detection
        from ai.registry import load_model

        return run_detection(load_model(model_id), [volume], device="auto", tta=tta, progress=progress, cancel=cancel,
                             roi=roi)

    return job


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
    ``failed(str)`` (a job that fails or is cancelled); every job that succeeds also emits ``job_done(what)``.
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
        self._job_buttons = (self.run_button, self.detect_button)  # the map toggles stay live: off cancels
        self.worker: AiWorker | None = None
        self._on_result: Callable[[object], None] | None = None
        self._job_volume = None  # the image the running job works on
        self._results: dict[tuple, object] = {}  # (model id, roi, tta) -> latest SegmentationResult, this image
        self._maps: dict[tuple, object] = {}  # (method, model id, label) -> explanation map of this image
        self._map_job: str | None = None  # the map the running job computes
        self._shown_map: str | None = None  # the map shown as the heat map
        self._cards, self._folders = [], []  # installed models' cards and folders, in list order
        self.finetune = finetune_row(self)  # "Improve this model with my corrected masks" and its epochs
        layout.insertWidget(layout.indexOf(self.synthesize_button) + 1, self.finetune)
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
        self.label_box.setToolTip("the label Grad-CAM explains")
        self.label_box.currentIndexChanged.connect(lambda _i: self._maps_off("gradcam"))
        self.map_buttons: dict[str, QPushButton] = {}
        for method, text in MAP_BUTTONS.items():
            button = QPushButton(text)
            button.setCheckable(True)
            button.toggled.connect(lambda on, m=method: self._toggle_map(m, on))
            self.map_buttons[method] = button
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
        self.colour_bar = ColourBar(self.state)
        row = QHBoxLayout()
        for w in (self.heat_visible, self.heat_colormap):
            row.addWidget(w)
        grid.addWidget(QLabel("Label"), 0, 0)
        grid.addWidget(self.label_box, 0, 1, 1, 2)
        for column, button in enumerate(self.map_buttons.values()):
            grid.addWidget(button, 1, column)
        grid.addWidget(self.detect_button, 2, 2)
        grid.addLayout(row, 3, 0, 1, 2)
        grid.addWidget(self.heat_opacity, 3, 2)
        grid.addWidget(self.colour_bar, 4, 0, 1, 3)
        return box

    def refresh(self) -> None:
        """Re-read the installed models, built-in then the user's (no torch import: cards are JSON); a broken
        one is skipped with a log message."""
        from ai.registry import model_folders, read_card

        self._cards, self._folders = [], []
        for folder in model_folders():
            try:
                self._cards.append(read_card(folder))
            except RadviewError as err:
                log.warning("%s", err)
                continue
            self._folders.append(folder)
        self.models.clear()
        for c in self._cards:
            self.models.addItem(f"{c.name} ({c.id} {c.version})")
        if self._cards:
            self.models.setCurrentRow(self._preferred_row())

    def _preferred_row(self) -> int:
        """The row selected after a refresh: the first released model whose first input is the shown image's
        modality, else the first released one, else the first."""
        return (self._fitting_rows(self.state.volume) or self._released_rows() or [0])[0]

    def _released_rows(self) -> list[int]:
        """Rows of released models: version 1 or later, not a 0.x demo."""
        return [k for k, c in enumerate(self._cards) if not c.version.startswith("0.")]

    def _fitting_rows(self, vol) -> list[int]:
        """Rows of released models whose first input is ``vol``'s modality (none without an image)."""
        if vol is None:
            return []
        return [k for k in self._released_rows() if self._cards[k].modalities[:1] == [vol.modality]]

    def select_folder(self, folder) -> None:
        """Select the listed model in ``folder`` (e.g. a version fine-tuned here)."""
        self.models.setCurrentRow(self._folders.index(Path(folder)))

    def _show_card(self, row: int) -> None:
        from ai.explain import explainable

        self._maps_off()
        self.label_box.clear()
        card = self._card_at(row)
        maps = card is None or explainable(card)
        for method, tip in MAP_TIPS.items():
            self.map_buttons[method].setEnabled(card is not None and maps)
            self.map_buttons[method].setToolTip(tip if maps else "only for segmentation and detection models")
        attention = self.map_buttons["attention"]
        attention.setEnabled(card is not None and card.network.get("class") == "AttentionUnet")
        attention.setToolTip("the Attention U-Net's finest gate coefficients, 0 (closed) .. 1 (open)"
                             if attention.isEnabled() else "only for Attention U-Net models")
        if card is None:
            self.card.setHtml("")
            return
        from ai.postprocess import describe as describe_postprocessing

        c = card
        for label, name in sorted(c.labels.items()):
            if label:
                self.label_box.addItem(name, label)
        metrics = "".join(f"<li>{m['name']}: {m['value']} <i>({m['data']})</i></li>" for m in c.metrics)
        if c.task == "translation":  # an image, not labels: say what comes out and what it was trained on
            output = (f"output: synthetic {c.output.get('modality', '?')} ({c.output.get('units', '?')}), always "
                      f"flagged SYNTHETIC; trained on: {c.anatomy or 'unstated anatomy'}")
        else:
            output = "labels: " + ", ".join(v for k, v in sorted(c.labels.items()) if k)
            if c.postprocessing.get("labels"):
                output += f"<br>post-processing: {describe_postprocessing(c.postprocessing)}"
        self.card.setHtml(
            f"<b>{c.name}</b> {c.version}<br>task: {c.task}; inputs: {', '.join(c.modalities)}<br>{output}"
            f"<p><b>Intended use:</b> {c.intended_use}</p><p><b>Limitations:</b> {c.limitations}</p>"
            f"<p><b>Training data:</b> {c.training_data}</p><b>Metrics</b><ul>{metrics}</ul>"
            f"<p>Licence: {c.license}</p>")

    @property
    def current_card(self):
        """The selected model's card, or None."""
        return self._card_at(self.models.currentRow())

    def _card_at(self, row: int):
        """The card listed in ``row``, or None (no row selected: -1)."""
        return self._cards[row] if 0 <= row < len(self._cards) else None

    @property
    def current_model_id(self) -> str | None:
        return self.current_card.id if self.current_card is not None else None

    @property
    def current_model_path(self) -> str | None:
        """The selected model's folder: what jobs load (a fine-tuned version shares its parent's id)."""
        row = self.models.currentRow()
        return str(self._folders[row]) if 0 <= row < len(self._folders) else None

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
        from ai.registry import find_model

        try:  # one key per model folder, whether it was named by id (the compare panel) or by folder
            model_id = str(find_model(model_id))
        except RadviewError:
            pass  # the job says what is wrong
        fusion = getattr(self.session, "fusion", None)
        fused = ((fusion.moving, fusion.shown_transform) if fusion is not None and fusion.active
                 and fusion.fixed is self.state.volume else None)  # a two-input model's second input (model_inputs)
        key = (model_id, self.state.roi, self.tta.isChecked(), *(id(x) for x in fused or ()))
        if key in self._results:
            on_result(self._results[key])
            return None

        def keep(out) -> None:
            result, *made = out if layer else (out,)
            self._results = {key: result}  # only the latest: a result holds two image-sized float maps
            on_result(result, *made)

        job = segment_job(model_id, self.state.volume, tta=key[2], roi=key[1], layer=layer, fused=fused)
        return self.start_job(f"running {Path(model_id).name}", job, keep)  # an id, or a folder named after it

    def run_model(self) -> AiWorker | None:
        """Segment the current volume (or box ROI) with the selected model; the result is a new AI-written
        segmentation on the full image grid."""
        if not self._ready():
            return None
        return self.segmentation(self.current_model_path, self._adopt_segmentation, layer=True)

    def explain(self) -> AiWorker | None:
        """Turn the Grad-CAM map of the chosen label on (see show_map)."""
        return self.show_map("gradcam")

    def estimate_uncertainty(self) -> AiWorker | None:
        """Turn the uncertainty map (predictive entropy of two test-time runs) on (see show_map)."""
        return self.show_map("uncertainty")

    def show_map(self, method: str, on: bool = True) -> AiWorker | None:
        """Turn the ``method`` map (MAP_BUTTONS) of the selected model on: computed in the background the first
        time for this image, model and label (returns that worker), shown at once after; the other maps go
        off. ``on`` False hides it (and cancels its running job)."""
        self.map_buttons[method].setChecked(on)
        return self.worker if on and self._map_job == method else None

    def _toggle_map(self, method: str, on: bool) -> None:
        if not on:
            if self._map_job == method:
                self.cancel()
            if self._shown_map == method:
                self._shown_map = None
                self.state.set_heatmap(None)
            return
        for other, button in self.map_buttons.items():
            if other != method:
                button.setChecked(False)
        label = self.label_box.currentText() or None
        if not self._ready() or (method == "gradcam" and label is None):
            self._uncheck(method)
            return
        key = (method, self.current_model_path, label if method == "gradcam" else None)
        if key in self._maps:
            self._show_map(method, self._maps[key])
            return
        title = f"{MAP_BUTTONS[method]}{f' of {label}' if method == 'gradcam' else ''} ({self.current_model_id})"
        job = explain_job(self.current_model_path, self.state.volume, method, label if method == "gradcam" else None)
        if self.start_job(title, job, lambda heat: self._keep_map(key, method, heat)) is None:
            self._uncheck(method)  # busy with another job
        else:
            self._map_job = method

    def _uncheck(self, method: str) -> None:
        """The ``method`` toggle shown off without acting on it (nothing of it is shown or running)."""
        button = self.map_buttons[method]
        button.blockSignals(True)
        button.setChecked(False)
        button.blockSignals(False)

    def _maps_off(self, *methods: str) -> None:
        """Turn the named maps off (all when none are named): a new model, label or image has other maps."""
        for method in methods or tuple(self.map_buttons):
            self.map_buttons[method].setChecked(False)

    def _keep_map(self, key, method: str, heat) -> None:
        self._maps[key] = heat
        self._show_map(method, heat)

    def _show_map(self, method: str, heat) -> None:
        self._shown_map = method
        self._show_heatmap(heat)

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
    def _on_volume(self, vol) -> None:
        card = self.current_card
        fitting = self._fitting_rows(vol)
        if fitting and (card is None or card.modalities[:1] != [vol.modality]):  # e.g. a PET opened after a CT
            self.models.setCurrentRow(fitting[0])
        self._results.clear()
        self._maps.clear()
        for method in self.map_buttons:  # the new image starts without a heat map (ViewerState)
            self._uncheck(method)
        self._shown_map = None
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
        self._map_job = None
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
        if self._map_job is not None:  # its toggle goes off: nothing is shown
            self._uncheck(self._map_job)
            self._map_job = None
        self._on_result = None
        self.progress.setValue(0)
        self.status.setText(message)
        self.failed.emit(message)
