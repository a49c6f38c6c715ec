"""The Registration dock: register the fused (moving) volume to the shown (fixed) one in the background, inspect
the result in checkerboard blending, accept / reject / undo one step, save / load the transform, and place
landmark pairs in the fixed and moving views."""

from __future__ import annotations

import logging

import numpy as np
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


def _button(text: str, slot=None, tip: str = "") -> QPushButton:
    button = QPushButton(text)
    if slot is not None:
        button.clicked.connect(lambda _=False: slot())
    button.setToolTip(tip)
    return button


def _grid(*rows) -> QGridLayout:
    """A grid of widgets, one tuple per row."""
    grid = QGridLayout()
    for r, row in enumerate(rows):
        for c, widget in enumerate(row):
            grid.addWidget(widget, r, c)
    return grid


class RegistrationPanel(QWidget):
    """Registration of ``fusion.moving`` to ``fusion.fixed``.

    Signals: ``registered(RegistrationResult)`` when a run finished and its transform is proposed;
    ``failed(str)`` with a one-line error; ``placing_changed(bool)`` when landmark placing starts or stops
    (the main window unlinks the cursors meanwhile and sends clicks to :meth:`add_landmark`);
    ``swap_requested()`` when the user asks to exchange fixed and moving.
    """

    registered = Signal(object)
    failed = Signal(str)
    placing_changed = Signal(bool)
    swap_requested = Signal()

    def __init__(self, fusion: FusionState, parent=None):
        super().__init__(parent)
        self.fusion = fusion
        self.worker: TaskWorker | None = None
        self._blend_before_inspect = None
        form = QFormLayout(self)
        self.pair_label = QLabel()
        self.pair_label.setWordWrap(True)
        form.addRow(self.pair_label)
        self.swap_button = _button("Swap fixed and moving", self.swap_requested.emit,
                                   "show the moving image as the fixed one, the fixed one fused over it")
        form.addRow(self.swap_button)
        self.method_box = QComboBox()
        self.method_box.addItems(METHODS)
        form.addRow("Method", self.method_box)
        self.init_box = QComboBox()
        self.init_box.addItems(INITS)
        self.init_box.setToolTip("geometry: the scanners share a world frame; moments: align the centres of mass "
                                 "first (different frames of reference)")
        form.addRow("Start from", self.init_box)
        self.run_button = _button("Register", self.run)
        self.cancel_button = _button("Cancel", self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        form.addRow(_grid((self.run_button, self.cancel_button)))
        form.addRow(self.progress)
        self.inspect_box = QCheckBox("Inspect with checkerboard")
        self.inspect_box.toggled.connect(self.set_inspecting)
        form.addRow(self.inspect_box)
        self.accept_button = _button("Accept", self.accept)
        self.reject_button = _button("Reject", self.reject)
        self.undo_button = _button("Undo", self.undo, "back to the transform before the last accepted one (one step)")
        form.addRow(_grid((self.accept_button, self.reject_button, self.undo_button)))
        self.save_button = _button("Save transform...", self._save_dialog)
        self.load_button = _button("Load transform...", self._load_dialog)
        form.addRow(_grid((self.save_button, self.load_button)))
        self.place_button = _button("Place landmarks", None, "click a point in a fixed view, then the same point "
                                    "in the moving view (side-by-side layout); the cursors are unlinked meanwhile")
        self.place_button.setCheckable(True)
        self.place_button.toggled.connect(self._on_placing)
        self.landmark_label = QLabel()
        self.undo_landmark_button = _button("Remove last pair", self.remove_last_pair)
        self.landmark_button = _button("Register landmarks", self.register_landmarks)
        form.addRow(_grid((self.place_button, self.undo_landmark_button), (self.landmark_label, self.landmark_button)))
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
        """Start registering moving to fixed in the background (``method``: the chosen one by default), from the
        accepted transform when there is one; the result is proposed and shown in checkerboard blending.
        Returns the worker."""
        from viewer.core.registration import register

        f = self.fusion
        if not f.active or self.running:
            return None
        method = method or self.method_box.currentText()
        self.method_box.setCurrentText(method)
        init = self.init_box.currentText()
        worker = TaskWorker(register, f.fixed, f.moving, method=method, init=init,
                            initial=self._starting_transform(init), with_progress=True, parent=self)
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

    def _starting_transform(self, init: str):
        """Refine the accepted transform (e.g. from landmarks or a loaded file) when it is linear and not the
        identity; otherwise start as ``init`` says (about the fixed image's centre, or by moments)."""
        matrix = self.fusion.transform.matrix
        if init != "geometry" or matrix is None or np.allclose(matrix, np.eye(4)):
            return None
        return self.fusion.transform

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
        for widget in (self.save_button, self.load_button, self.place_button, self.inspect_box, self.swap_button):
            widget.setEnabled(f.active)
        counts = {role: len(points) for role, points in f.landmarks.items()}
        self.landmark_label.setText(f"fixed {counts['fixed']} / moving {counts['moving']}")
        self.landmark_button.setEnabled(f.active and f.landmark_pairs >= 3 and counts["fixed"] == counts["moving"])
        self.undo_landmark_button.setEnabled(any(counts.values()))
