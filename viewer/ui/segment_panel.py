"""Segmentation panel: create a segmentation, brush label/size, paint/erase strokes, undo/redo, provenance."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from viewer.core.session import Session
from viewer.ui.state import ViewerState


class SegmentPanel(QWidget):
    """Thin widget over :class:`viewer.core.session.Session`: all editing logic lives in the Session.

    One mouse stroke (press, drags, release) on any MPR view is one undo step.
    """

    def __init__(self, state: ViewerState, session: Session, parent=None):
        super().__init__(parent)
        self.state = state
        self.session = session
        self.segmentation = None
        self.new_button = QPushButton("New segmentation")
        self.new_button.clicked.connect(self.new_segmentation)
        self.label_box = QSpinBox()
        self.label_box.setRange(1, 65535)
        self.radius_box = QDoubleSpinBox()
        self.radius_box.setRange(0.5, 100.0)
        self.radius_box.setValue(5.0)
        self.radius_box.setSuffix(" mm")
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)
        self.summary = QLabel("no segmentation")
        self.summary.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Label", self.label_box)
        form.addRow("3D brush radius", self.radius_box)
        layout = QVBoxLayout(self)
        layout.addWidget(self.new_button)
        layout.addLayout(form)
        layout.addWidget(self.undo_button)
        layout.addWidget(self.redo_button)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        state.stroke.connect(self._on_stroke)
        state.volume_changed.connect(self._on_volume)

    def _on_volume(self, vol) -> None:
        self.segmentation = None
        self._refresh()

    def new_segmentation(self, name: str | None = None):
        """Create an empty segmentation on the current volume and show it."""
        vol = self.state.volume
        if vol is None:
            return None
        name = name or f"Segmentation {len(self.session.segmentations) + 1}"
        self.segmentation = self.session.new_segmentation(vol, name)
        self.state.set_labels(self.segmentation.as_volume())
        self._refresh()
        return self.segmentation

    def adopt(self, seg) -> None:
        """Make ``seg`` (e.g. a model's output) the segmentation that strokes edit."""
        self.segmentation = seg
        self._refresh()

    def _on_stroke(self, phase: str, world) -> None:
        if self.state.volume is None:
            return
        if self.segmentation is None:
            self.new_segmentation()
        label = 0 if self.state.tool == "erase" else self.label_box.value()
        if phase == "begin":
            self.session.begin_group("erase stroke" if label == 0 else f"paint label {label}")
        if world is not None and phase in ("begin", "move"):
            dtype = self.segmentation.array.dtype
            if self.session.paint(self.segmentation, label, world, self.radius_box.value()):
                if self.segmentation.array.dtype != dtype:  # promoted to uint16: new array object
                    self.state.set_labels(self.segmentation.as_volume())
                self.state.labels_edited.emit()
        if phase == "end":
            self.session.end_group()
            self._refresh()

    def undo(self) -> None:
        if self.session.undo():
            self.state.labels_edited.emit()
        self._refresh()

    def redo(self) -> None:
        if self.session.redo():
            self.state.labels_edited.emit()
        self._refresh()

    def _refresh(self) -> None:
        self.undo_button.setEnabled(self.session.history.can_undo)
        self.redo_button.setEnabled(self.session.history.can_redo)
        seg = self.segmentation
        if seg is None:
            self.summary.setText("no segmentation")
            return
        lines = [f"<b>{seg.name}</b>"]
        for label, counts in seg.provenance_summary().items():
            name = seg.table.ensure(label).name
            lines.append(f"{name}: {counts['human_voxels']} by hand, {counts['ai_voxels']} by AI")
        self.summary.setText("<br>".join(lines))
