"""Segmentation panel: create a segmentation, brush shape/size/rules, paint/erase strokes, undo/redo, label table."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.core.editing import stroke_points
from viewer.core.session import Session
from viewer.ui.state import ViewerState

TABLE_COLUMNS = ["Show", "Label", "Name", "Voxels", "mL", "Mean", "Units", "By hand", "By AI", "Lock", "Opacity"]
NAME_COLUMN = TABLE_COLUMNS.index("Name")
LOCK_COLUMN = TABLE_COLUMNS.index("Lock")
OPACITY_COLUMN = TABLE_COLUMNS.index("Opacity")
#: label table field of each check box column
CHECK_FIELDS = {TABLE_COLUMNS.index("Show"): "visible", LOCK_COLUMN: "locked"}
#: (combo text, value) of the brush shapes, editable areas and overwrite rules (viewer.core.editing)
BRUSH_SHAPES = [("Sphere (3D)", "sphere"), ("Disc (2D, in the view's plane)", "disc")]
EDITABLE_AREAS = [("Everywhere", "everywhere"), ("Inside label", "inside"), ("Outside label", "outside")]
OVERWRITE_RULES = [("Other labels unless locked", "unlocked"), ("All labels (even locked)", "all"),
                   ("Background only", "background")]
#: brush dabs along a stroke are at most this fraction of the radius apart
STROKE_STEP = 0.5


def _combo(items: list[tuple[str, str]]) -> QComboBox:
    box = QComboBox()
    for text, value in items:
        box.addItem(text, value)
    return box


def _value_box(low: float = -1e6, high: float = 1e6) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(1)
    return box


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
        self.radius_box.valueChanged.connect(lambda r: setattr(self.state, "brush_radius_mm", r))
        self.shape_box = _combo(BRUSH_SHAPES)
        self.threshold_check = QCheckBox("Threshold paint")
        self.low_box, self.high_box = _value_box(), _value_box()
        self.area_box = _combo(EDITABLE_AREAS)
        self.area_label_box = QSpinBox()
        self.area_label_box.setRange(1, 65535)
        self.overwrite_box = _combo(OVERWRITE_RULES)
        self._last_point = None  # previous brush dab of the current stroke
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
        layout = QVBoxLayout(self)
        layout.addWidget(self.new_button)
        layout.addLayout(form)
        layout.addWidget(self._brush_group())
        layout.addWidget(self.undo_button)
        layout.addWidget(self.redo_button)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.csv_button)
        state.stroke.connect(self._on_stroke)
        state.volume_changed.connect(self._on_volume)

    def _brush_group(self) -> QGroupBox:
        """Brush shape and size, threshold-paint range, editable area and overwrite rule."""
        group = QGroupBox("Brush")
        form = QFormLayout(group)
        form.addRow("Shape", self.shape_box)
        form.addRow("Radius", self.radius_box)
        value_range = QHBoxLayout()
        value_range.addWidget(self.low_box)
        value_range.addWidget(QLabel("to"))
        value_range.addWidget(self.high_box)
        form.addRow(self.threshold_check, value_range)
        area = QHBoxLayout()
        area.addWidget(self.area_box, 1)
        area.addWidget(self.area_label_box)
        form.addRow("Editable area", area)
        form.addRow("Overwrite", self.overwrite_box)
        self.threshold_check.toggled.connect(self._enable_rule_boxes)
        self.area_box.currentIndexChanged.connect(self._enable_rule_boxes)
        self._enable_rule_boxes()
        return group

    def _enable_rule_boxes(self, *_) -> None:
        for box in (self.low_box, self.high_box):
            box.setEnabled(self.threshold_check.isChecked())
        self.area_label_box.setEnabled(self.area_box.currentData() != "everywhere")

    def rule_options(self) -> dict:
        """Editable area and overwrite rule chosen in the panel, as Session.paint options."""
        area = self.area_box.currentData()
        return {"editable": None if area == "everywhere" else (area, self.area_label_box.value()),
                "overwrite": self.overwrite_box.currentData()}

    def brush_options(self, orientation: str) -> dict:
        """Every option of a brush dab drawn in the ``orientation`` view (see Session.paint)."""
        options = {"shape": self.shape_box.currentData(), "orientation": orientation, **self.rule_options(),
                   "active_label": self.label_box.value()}
        if self.threshold_check.isChecked():
            options["intensity_range"] = (self.low_box.value(), self.high_box.value())
        return options

    def _on_volume(self, vol) -> None:
        self.segmentation = None
        self.low_box.setValue(self.state.level - self.state.window / 2)
        self.high_box.setValue(self.state.level + self.state.window / 2)
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

    def _on_stroke(self, phase: str, world, orientation: str) -> None:
        if self.state.volume is None:
            return
        if self.segmentation is None:
            self.new_segmentation()
        label = 0 if self.state.tool == "erase" else self.label_box.value()
        if phase == "begin":
            self.session.begin_group("erase stroke" if label == 0 else f"paint label {label}")
            self._last_point = None
        if world is not None and phase in ("begin", "move"):
            self._dab_to(label, np.asarray(world, float), orientation)
        if phase == "end":
            self.session.end_group()
            self._last_point = None
            self._refresh()

    def _dab_to(self, label: int, world: np.ndarray, orientation: str) -> None:
        """Brush dabs from the stroke's previous point to ``world``, close enough to leave no gaps."""
        radius = self.radius_box.value()
        points = [world] if self._last_point is None else stroke_points(self._last_point, world, radius * STROKE_STEP)
        self._last_point = world
        seg, options = self.segmentation, self.brush_options(orientation)
        dtype = seg.array.dtype
        changed = sum(self.session.paint(seg, label, p, radius, **options) for p in points)
        if changed:
            if seg.array.dtype != dtype:  # promoted to uint16: new array object
                self.state.set_labels(seg.as_volume())
            self.state.labels_edited.emit()

    def undo(self) -> None:
        if self.session.undo():
            self.state.labels_edited.emit()
        self._refresh()

    def redo(self) -> None:
        if self.session.redo():
            self.state.labels_edited.emit()
        self._refresh()

    def refresh(self) -> None:
        """Update undo/redo buttons and the label table after an edit made elsewhere (e.g. a label tool)."""
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
        """Per-label statistics (viewer.core.stats) and provenance; Show, Name, Lock and Opacity are editable."""
        from viewer.core.stats import label_statistics

        self.rows = label_statistics(self.state.volume, seg.array, seg.table.names())
        provenance = seg.provenance_summary()
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            info = seg.table.ensure(row["label"])
            prov = provenance.get(row["label"], {"human_voxels": 0, "ai_voxels": 0})
            values = [row["label"], row["name"], row["voxels"], f"{row['volume_ml']:.2f}", f"{row['mean']:.1f}",
                      row["units"], prov["human_voxels"], prov["ai_voxels"]]
            for c, v in enumerate(values, start=1):
                item = QTableWidgetItem(str(v))
                if c != NAME_COLUMN:
                    item.setFlags(Qt.ItemIsSelectable | Qt.ItemIsEnabled)  # statistics are read-only
                self._place(r, c, item, row["label"])
            for c, field in CHECK_FIELDS.items():
                check = QTableWidgetItem()
                check.setFlags(Qt.ItemIsUserCheckable | Qt.ItemIsEnabled)
                check.setCheckState(Qt.Checked if getattr(info, field) else Qt.Unchecked)
                self._place(r, c, check, row["label"])
            self._place(r, OPACITY_COLUMN, QTableWidgetItem(f"{info.opacity:.2f}"), row["label"])  # editable, 0-1
        self.table.blockSignals(False)

    def _place(self, row: int, column: int, item: QTableWidgetItem, label: int) -> None:
        """Put ``item`` in the table, tagged with the label id of its row."""
        item.setData(Qt.UserRole, label)
        self.table.setItem(row, column, item)

    def _on_item_changed(self, item) -> None:
        """A cell edited by the user: every change goes through Session.edit_label (audited, journalled)."""
        if self.segmentation is None:
            return
        label, column = int(item.data(Qt.UserRole)), item.column()
        if column in CHECK_FIELDS:
            self._set_check(label, CHECK_FIELDS[column], item.checkState() == Qt.Checked)
        elif column == OPACITY_COLUMN:
            self._set_opacity(label, item)
        elif column == NAME_COLUMN:
            self._rename(label, item)

    def _set_check(self, label: int, field: str, checked: bool) -> None:
        """Show/hide a label, or lock it (a locked label is protected from brushes and tools)."""
        self.session.edit_label(self.segmentation, label, **{field: checked})
        if field == "visible":
            self.state.label_visibility_changed.emit(label, checked)

    def _set_opacity(self, label: int, item) -> None:
        """A label's fill opacity typed in the table (0-1; anything else restores the current value)."""
        try:
            opacity = float(min(max(float(item.text()), 0.0), 1.0))
        except ValueError:
            opacity = None
        if opacity is not None:
            self.session.edit_label(self.segmentation, label, opacity=opacity)
        self._show_text(item, f"{self.segmentation.table.ensure(label).opacity:.2f}")
        self.state.set_labels(self.segmentation.as_volume())

    def _rename(self, label: int, item) -> None:
        """A label's name typed in the table (a blank name restores the current one)."""
        name = item.text().strip()
        if name:
            self.session.edit_label(self.segmentation, label, name=name)
        name = self.segmentation.table.ensure(label).name
        self._show_text(item, name)
        for row in self.rows:  # the statistics export names the label as the table does
            if row["label"] == label:
                row["name"] = name

    def _show_text(self, item, text: str) -> None:
        """Set a cell's text without reporting it as a user edit."""
        self.table.blockSignals(True)
        item.setText(text)
        self.table.blockSignals(False)

    def _export_csv(self, path: str | None = None) -> None:
        from viewer.core.stats import statistics_csv

        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export statistics", "statistics.csv", "CSV (*.csv)")
        if path:
            with open(path, "w", newline="") as f:
                f.write(statistics_csv(self.rows))
