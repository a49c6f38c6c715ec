"""The Registration dock: register the fused (moving) volume to the shown (fixed) one in the background, inspect
the result in checkerboard blending, accept / reject / undo one step, save / load the transform, and place
landmark pairs in the fixed and moving views."""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from viewer.core.errors import RadviewError
from viewer.core.fusion import FusionState
from viewer.core.registration.intensity import INITS, METHODS
from viewer.core.registration.transform import TRANSFORM_SUFFIXES
from viewer.ui.workers import TaskWorker

log = logging.getLogger(__name__)
#: Landmark registration kind for each method choice (a B-spline cannot come from a few points).
LANDMARK_KIND = {"rigid": "rigid", "affine": "affine", "bspline": "affine"}


class RegistrationPanel(QWidget):
    """Registration of ``fusion.moving`` to ``fusion.fixed``.

    Signals: ``registered(RegistrationResult)`` when a run finished and its transform is proposed;
    ``failed(str)`` with a one-line error; ``placing_changed(bool)`` when landmark placing starts or stops
    (the main window unlinks the cursors meanwhile and sends clicks to :meth:`add_landmark`).
    """

    registered = Signal(object)
    failed = Signal(str)
    placing_changed = Signal(bool)

    def __init__(self, fusion: FusionState, parent=None):
        super().__init__(parent)
        self.fusion = fusion
        self.worker: TaskWorker | None = None
        self._blend_before_inspect = None
        form = QFormLayout(self)
        self.pair_label = QLabel()
        self.pair_label.setWordWrap(True)
        form.addRow(self.pair_label)
        self.method_box = QComboBox()
        self.method_box.addItems(METHODS)
        form.addRow("Method", self.method_box)
        self.init_box = QComboBox()
        self.init_box.addItems(INITS)
        self.init_box.setToolTip("geometry: the scanners share a world frame; moments: align the centres of mass "
                                 "first (different frames of reference)")
        form.addRow("Start from", self.init_box)
        self.run_button = QPushButton("Register")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        runs = QGridLayout()
        runs.addWidget(self.run_button, 0, 0)
        runs.addWidget(self.cancel_button, 0, 1)
        runs.addWidget(self.progress, 1, 0, 1, 2)
        form.addRow(runs)
        self.inspect_box = QCheckBox("Inspect with checkerboard")
        self.inspect_box.toggled.connect(self.set_inspecting)
        form.addRow(self.inspect_box)
        self.accept_button = QPushButton("Accept")
        self.accept_button.clicked.connect(self.accept)
        self.reject_button = QPushButton("Reject")
        self.reject_button.clicked.connect(self.reject)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("back to the transform before the last accepted one (one step)")
        self.undo_button.clicked.connect(self.undo)
        steps = QGridLayout()
        for n, button in enumerate((self.accept_button, self.reject_button, self.undo_button)):
            steps.addWidget(button, 0, n)
        form.addRow(steps)
        self.save_button = QPushButton("Save transform...")
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button = QPushButton("Load transform...")
        self.load_button.clicked.connect(self._load_dialog)
        files = QGridLayout()
        files.addWidget(self.save_button, 0, 0)
        files.addWidget(self.load_button, 0, 1)
        form.addRow(files)
        self.place_button = QPushButton("Place landmarks")
        self.place_button.setCheckable(True)
        self.place_button.setToolTip("click a point in a fixed view, then the same point in the moving view "
                                     "(side-by-side layout); the cursors are unlinked meanwhile")
        self.place_button.toggled.connect(self._on_placing)
        self.landmark_label = QLabel()
        self.undo_landmark_button = QPushButton("Remove last pair")
        self.undo_landmark_button.clicked.connect(self.remove_last_pair)
        self.landmark_button = QPushButton("Register landmarks")
        self.landmark_button.clicked.connect(self.register_landmarks)
        marks = QGridLayout()
        marks.addWidget(self.place_button, 0, 0)
        marks.addWidget(self.undo_landmark_button, 0, 1)
        marks.addWidget(self.landmark_label, 1, 0)
        marks.addWidget(self.landmark_button, 1, 1)
        form.addRow(marks)
        self.status = QLabel()
        self.status.setWordWrap(True)
        form.addRow(self.status)
        fusion.volumes_changed.connect(self._refresh)
        fusion.transform_changed.connect(self._refresh)
        fusion.landmarks_changed.connect(self._refresh)
        self._refresh()

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def run(self, method: str | None = None) -> TaskWorker | None:
        """Start registering moving to fixed in the background (``method``: the chosen one by default);
        the result is proposed and shown in checkerboard blending. Returns the worker."""
        from viewer.core.registration import register

        f = self.fusion
        if not f.active or self.running:
            return None
        method = method or self.method_box.currentText()
        self.method_box.setCurrentText(method)
        worker = TaskWorker(register, f.fixed, f.moving, method=method, init=self.init_box.currentText(),
                            initial=f.transform if f.transform.is_linear else None, with_progress=True, parent=self)
        worker.progress.connect(self._on_progress)
        worker.finished_ok.connect(lambda result, w=worker: self._on_result(w, result))
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(lambda: self._say("registration cancelled"))
        worker.finished.connect(self._refresh)
        self.worker = worker
        self.progress.setValue(0)
        self._say(f"registering ({method})...")
        worker.start()
        self._refresh()
        return worker

    def cancel(self) -> None:
        if self.running:
            self.worker.cancel()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self._say(message)

    def _on_result(self, worker: TaskWorker, result) -> None:
        f = self.fusion
        if worker.args[0] is not f.fixed or worker.args[1] is not f.moving:
            return  # the pair changed while registering: the result belongs to another pair
        f.propose(result.transform)
        self.set_inspecting(True)
        self._say(f"{result.transform.description}: mutual information {-result.metric:.3f}, {result.iterations} "
                  f"iterations, {result.seconds:.1f} s - inspect, then Accept or Reject")
        self.registered.emit(result)

    def _on_failed(self, message: str) -> None:
        self._say(message)
        self.failed.emit(message)

    # ------------------------------------------------------------------ inspect, accept, undo
    def set_inspecting(self, on: bool) -> None:
        """Checkerboard blending on (the blend before it is restored when turned off)."""
        f = self.fusion
        self.inspect_box.blockSignals(True)
        self.inspect_box.setChecked(on)
        self.inspect_box.blockSignals(False)
        if not f.active:
            return
        if on and f.display.blend != "checkerboard":
            self._blend_before_inspect = f.display.blend
            f.set_display(blend="checkerboard")
        elif not on and f.display.blend == "checkerboard":
            f.set_display(blend=self._blend_before_inspect or "alpha")

    def accept(self) -> None:
        self._step(self.fusion.accept, "accepted")

    def reject(self) -> None:
        self._step(self.fusion.reject, "rejected")

    def undo(self) -> None:
        self._step(self.fusion.undo, "back to the previous transform")

    def _step(self, action, done: str) -> None:
        try:
            action()
        except RadviewError as err:
            self._say(str(err))
            return
        self.set_inspecting(False)
        self._say(f"{done}: {self.fusion.shown_transform.description}")

    # ------------------------------------------------------------------ files
    def save_transform(self, path: str) -> bool:
        """Write the accepted transform (fixed -> moving, ITK .tfm/.h5: Slicer, elastix, ANTs read it)."""
        try:
            self.fusion.transform.save(path)
        except RadviewError as err:
            self._say(str(err))
            return False
        self._say(f"transform saved to {path}")
        return True

    def load_transform(self, path: str) -> bool:
        """Read an ITK transform file as the new transform (one undoable step)."""
        from viewer.core.registration import Transform

        try:
            self.fusion.set_transform(Transform.load(path))
        except RadviewError as err:
            self._say(str(err))
            return False
        self._say(f"transform loaded from {path}")
        return True

    def _file_filter(self) -> str:
        return f"ITK transforms ({' '.join('*' + s for s in TRANSFORM_SUFFIXES)});;All files (*)"

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save transform", "transform.tfm", self._file_filter())
        if path:
            self.save_transform(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load transform", "", self._file_filter())
        if path:
            self.load_transform(path)

    # ------------------------------------------------------------------ landmarks
    @property
    def placing(self) -> bool:
        return self.place_button.isChecked()

    def set_placing(self, on: bool) -> None:
        self.place_button.setChecked(on)

    def _on_placing(self, on: bool) -> None:
        self._say("click a point in a fixed view, then the same point in the moving view" if on else "")
        self.placing_changed.emit(on)

    def add_landmark(self, role: str, world_xyz) -> None:
        """A click while placing: a 'fixed' or 'moving' landmark at world LPS mm."""
        if self.placing and self.fusion.active:
            n = self.fusion.add_landmark(role, world_xyz)
            x, y, z = world_xyz
            self._say(f"{role} landmark {n} at ({x:.1f}, {y:.1f}, {z:.1f}) mm")

    def remove_last_pair(self) -> None:
        """Remove the last fixed and the last moving landmark (an unpaired one alone)."""
        f = self.fusion
        counts = {role: len(points) for role, points in f.landmarks.items()}
        for role in counts:
            if counts[role] == max(counts.values()):
                f.remove_last_landmark(role)

    def register_landmarks(self) -> None:
        """Propose the transform of the landmark pairs (rigid, or affine for the affine/B-spline methods)."""
        kind = LANDMARK_KIND[self.method_box.currentText()]
        try:
            result = self.fusion.register_landmarks(kind)
        except RadviewError as err:
            self._say(str(err))
            return
        self.set_inspecting(True)
        self._say(f"landmarks {kind}: FRE {result.fre_mm:.2f} mm over {len(result.errors_mm)} pairs - inspect, "
                  "then Accept or Reject")

    # ------------------------------------------------------------------ display
    def _say(self, text: str) -> None:
        self.status.setText(text)
        if text:
            log.info("registration: %s", text)

    def _refresh(self, *_) -> None:
        f = self.fusion
        if f.active:
            self.pair_label.setText(f"Fixed: {f.fixed.description or f.fixed.modality} (shown image)\n"
                                    f"Moving: {f.moving.description or f.moving.modality} (chosen in Fusion)\n"
                                    f"Transform: {f.shown_transform.description}"
                                    + (" (proposed)" if f.candidate is not None else ""))
        else:
            self.pair_label.setText("Open the fixed image, then choose the moving one in the Fusion dock.")
        running = self.running
        self.run_button.setEnabled(f.active and not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        self.accept_button.setEnabled(f.candidate is not None)
        self.reject_button.setEnabled(f.candidate is not None)
        self.undo_button.setEnabled(f.can_undo)
        for widget in (self.save_button, self.load_button, self.place_button, self.inspect_box):
            widget.setEnabled(f.active)
        counts = {role: len(points) for role, points in f.landmarks.items()}
        self.landmark_label.setText(f"fixed {counts['fixed']} / moving {counts['moving']}")
        self.landmark_button.setEnabled(f.active and f.landmark_pairs >= 3 and counts["fixed"] == counts["moving"])
        self.undo_landmark_button.setEnabled(any(counts.values()))
