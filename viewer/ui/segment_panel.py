"""Segmentation panel: create a segmentation, brush label/size, paint/erase strokes, undo/redo, provenance."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.core.session import Session
from viewer.ui.state import ViewerState

TABLE_COLUMNS = ["Show", "Label", "Name", "Voxels", "mL", "Mean", "Units", "By hand", "By AI"]


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
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.itemChanged.connect(self._on_item_changed)
        self.csv_button = QPushButton("Export statistics (CSV)...")
        self.csv_button.clicked.connect(self._export_csv)
        self.rows: list[dict] = []
        form = QFormLayout()
        form.addRow("Label", self.label_box)
        form.addRow("3D brush radius", self.radius_box)
        layout = QVBoxLayout(self)
        layout.addWidget(self.new_button)
        layout.addLayout(form)
        layout.addWidget(self.undo_button)
        layout.addWidget(self.redo_button)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.csv_button)
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
            self.table.setRowCount(0)
            return
        self.summary.setText(f"<b>{seg.name}</b>")
        self._fill_table(seg)

    def _fill_table(self, seg) -> None:
        """Per-label statistics (viewer.core.stats) and provenance; the Show column hides a label."""
        from viewer.core.stats import label_statistics

        self.rows = label_statistics(self.state.volume, seg.array, seg.table.names())
        provenance = seg.provenance_summary()
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            prov = provenance.get(row["label"], {"human_voxels": 0, "ai_voxels": 0})
            show = QTableWidgetItem()
            show.setFlags(Qt.ItemIsUserCheckable | Qt.ItemIsEnabled)
            show.setCheckState(Qt.Checked if seg.table.ensure(row["label"]).visible else Qt.Unchecked)
            show.setData(Qt.UserRole, row["label"])
            self.table.setItem(r, 0, show)
            values = [row["label"], row["name"], row["voxels"], f"{row['volume_ml']:.2f}", f"{row['mean']:.1f}",
                      row["units"], prov["human_voxels"], prov["ai_voxels"]]
            for c, v in enumerate(values, start=1):
                self.table.setItem(r, c, QTableWidgetItem(str(v)))
        self.table.blockSignals(False)

    def _on_item_changed(self, item) -> None:
        if item.column() != 0 or self.segmentation is None:
            return
        label, visible = int(item.data(Qt.UserRole)), item.checkState() == Qt.Checked
        self.segmentation.table.ensure(label).visible = visible
        self.state.label_visibility_changed.emit(label, visible)

    def _export_csv(self, path: str | None = None) -> None:
        from viewer.core.stats import statistics_csv

        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export statistics", "statistics.csv", "CSV (*.csv)")
        if path:
            with open(path, "w", newline="") as f:
                f.write(statistics_csv(self.rows))
