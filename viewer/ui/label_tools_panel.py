"""Label tools panel: threshold, region grow, islands, holes, grow/shrink, smoothing, fill between slices, logic.

A thin widget over viewer.core.label_tools: the result is previewed live on the overlay (nothing is
committed), Apply writes it through Session.apply as one undo step (provenance 'human', journalled).
The target label, editable area and overwrite rule are the segmentation panel's.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from viewer.core.editing import area_mask
from viewer.core.label_tools import TOOLS, set_label, tool_mask
from viewer.core.session import Session
from viewer.core.slicing import ORIENTATIONS
from viewer.ui.segment_panel import SegmentPanel
from viewer.ui.state import ViewerState

log = logging.getLogger(__name__)

#: Milliseconds without parameter changes before the live preview is recomputed.
PREVIEW_DELAY_MS = 150
#: Parameter rows each tool uses (keys of LabelToolsPanel.rows).
TOOL_PARAMETERS = {
    "threshold": ("range",),
    "region_grow": ("range", "seed"),
    "keep_largest": (),
    "remove_islands": ("min_volume",),
    "fill_holes": (),
    "grow": ("mm",),
    "shrink": ("mm",),
    "smooth": ("mm", "method"),
    "interpolate": ("orientation",),
    "logical": ("op", "other"),
}


def _spin(low: float, high: float, value: float, suffix: str = "", decimals: int = 1) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


class LabelToolsPanel(QWidget):
    """Choose a tool and its parameters, see the result on the overlay, Apply (one undo step) or Cancel."""

    def __init__(self, state: ViewerState, session: Session, segments: SegmentPanel, parent=None):
        super().__init__(parent)
        self.state = state
        self.session = session
        self.segments = segments
        self.tool_box = QComboBox()
        self.tool_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.tool_box.setMinimumContentsLength(16)  # long tool names are elided, not widening the dock
        for name, text in TOOLS.items():
            self.tool_box.addItem(text.split(":")[0], name)
            self.tool_box.setItemData(self.tool_box.count() - 1, text, Qt.ToolTipRole)
        self.low_box = _spin(-1e6, 1e6, -100.0)
        self.high_box = _spin(-1e6, 1e6, 200.0)
        self.seed_label = QLabel("the crosshair")
        self.min_volume_box = _spin(0.0, 1e7, 100.0, " mm3")
        self.mm_box = _spin(0.1, 100.0, 2.0, " mm")
        self.method_box = QComboBox()
        self.method_box.addItems(["median", "opening", "closing"])
        self.orientation_box = QComboBox()
        self.orientation_box.addItems(ORIENTATIONS)
        self.op_box = QComboBox()
        self.op_box.addItems(["union", "intersect", "subtract"])
        self.other_box = QSpinBox()
        self.other_box.setRange(1, 65535)
        self.other_box.setValue(2)
        self.preview_check = QCheckBox("Live preview on the overlay")
        self.preview_check.setChecked(True)
        self.apply_button = QPushButton("Apply")
        self.cancel_button = QPushButton("Cancel")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        value_range = QHBoxLayout()
        value_range.addWidget(self.low_box)
        value_range.addWidget(QLabel("to"))
        value_range.addWidget(self.high_box)
        self.form = QFormLayout()
        self.form.addRow("Tool", self.tool_box)
        #: parameter name -> the field widget of its form row (hidden when the tool does not use it)
        self.rows = {"range": value_range, "seed": self.seed_label, "min_volume": self.min_volume_box,
                     "mm": self.mm_box, "method": self.method_box, "orientation": self.orientation_box,
                     "op": self.op_box, "other": self.other_box}
        for key, text in (("range", "Values"), ("seed", "Seed"), ("min_volume", "Smaller than"), ("mm", "By"),
                          ("method", "Method"), ("orientation", "Slices drawn in"), ("op", "Operation"),
                          ("other", "With label")):
            self.form.addRow(text, self.rows[key])
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        note = QLabel("Acts on the segmentation panel's label, editable area and overwrite rule.")
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addLayout(self.form)
        layout.addWidget(self.preview_check)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._preview: np.ndarray | None = None  # the label array shown on the overlay while previewing
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.update_preview)
        for box in (self.low_box, self.high_box, self.min_volume_box, self.mm_box, self.other_box):
            box.valueChanged.connect(self._parameters_changed)
        for box in (self.tool_box, self.method_box, self.orientation_box, self.op_box):
            box.currentIndexChanged.connect(self._parameters_changed)
        self.preview_check.toggled.connect(self._parameters_changed)
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button.clicked.connect(self.cancel_preview)
        state.volume_changed.connect(self._on_volume)
        state.stroke.connect(self._on_stroke)
        session.edited.connect(self._on_edited)
        self._show_rows()

    # ------------------------------------------------------------------ parameters
    @property
    def tool(self) -> str:
        return self.tool_box.currentData()

    def set_tool(self, tool: str) -> None:
        """Select ``tool`` (a key of viewer.core.label_tools.TOOLS)."""
        index = self.tool_box.findData(tool)
        if index < 0:
            raise ValueError(f"label tool must be one of {tuple(TOOLS)}, got {tool!r}")
        self.tool_box.setCurrentIndex(index)

    def parameters(self) -> dict:
        """The current tool's keyword arguments for viewer.core.label_tools.tool_mask."""
        return {"low": self.low_box.value(), "high": self.high_box.value(), "seed_mm": self.state.cursor.copy(),
                "min_volume_mm3": self.min_volume_box.value(), "mm": self.mm_box.value(),
                "method": self.method_box.currentText(), "orientation": self.orientation_box.currentText(),
                "other": self.other_box.value(), "op": self.op_box.currentText()}

    def _show_rows(self) -> None:
        used = TOOL_PARAMETERS[self.tool]
        for key, field in self.rows.items():
            self.form.setRowVisible(field, key in used)

    def _parameters_changed(self, *_) -> None:
        self._show_rows()
        if self.preview_check.isChecked() and self.state.volume is not None:
            self._timer.start()
        else:
            self.cancel_preview()

    def _on_volume(self, vol) -> None:
        """A new image: no preview; the value range starts at its window (without starting a preview)."""
        self._timer.stop()
        self._preview = None
        for box, value in ((self.low_box, self.state.level - self.state.window / 2),
                           (self.high_box, self.state.level + self.state.window / 2)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    def _on_stroke(self, phase: str, world, orientation: str) -> None:
        if phase == "begin":
            self.cancel_preview()  # the brush edits the segmentation itself: show it
            self.orientation_box.blockSignals(True)  # fill between the slices of the view drawn in
            self.orientation_box.setCurrentText(orientation)
            self.orientation_box.blockSignals(False)

    def _on_edited(self, seg, box) -> None:
        if self._preview is not None:  # e.g. an undo while previewing: recompute from the new labels
            self._timer.start()

    # ------------------------------------------------------------------ compute, preview, apply
    def result(self) -> np.ndarray:
        """The label array the current tool would produce on the segmentation panel's segmentation (an empty
        one if there is none yet); nothing is changed."""
        seg = self.segments.segmentation
        labels = seg.array if seg is not None else np.zeros(self.state.volume.array.shape, np.uint8)
        locked = [i for i, info in seg.table.labels.items() if info.locked] if seg is not None else []
        label = self.segments.label_box.value()
        mask = tool_mask(self.tool, self.state.volume, labels, label, **self.parameters())
        rules = self.segments.rule_options()
        return set_label(labels, mask, label, overwrite=rules["overwrite"],
                         editable=area_mask(labels, rules["editable"]), locked=locked)

    def update_preview(self) -> None:
        """Show the current tool's result on the overlay of every view (nothing is committed)."""
        vol = self.state.volume
        if vol is None:
            return
        try:
            result = self.result()
        except ValueError as err:
            self.status.setText(str(err))
            return
        shown = self.state.labels.array if self.state.labels is not None else None
        if shown is None or shown is not self._preview or shown.dtype != result.dtype:  # (re)start previewing
            self._preview = result
            self.state.set_labels(vol.with_array(self._preview, modality="SEG", units="label",
                                                 description="label tool preview"))
        else:
            np.copyto(self._preview, result)
            self.state.labels_edited.emit()
        seg = self.segments.segmentation
        changed = int((result != seg.array).sum()) if seg is not None else int((result > 0).sum())
        self.status.setText(f"preview: {changed} voxels would change")

    def cancel_preview(self) -> None:
        """Stop previewing: the overlay shows the segmentation again."""
        self._timer.stop()
        if self._preview is None:
            return
        self._preview = None
        seg = self.segments.segmentation
        self.state.set_labels(seg.as_volume() if seg is not None else None)
        self.status.setText("")

    def apply(self) -> int:
        """Commit the current tool's result as one undo step; returns the number of voxels changed."""
        if self.state.volume is None:
            return 0
        self._timer.stop()
        seg = self.segments.segmentation or self.segments.new_segmentation()
        try:
            result = self.result()
        except ValueError as err:
            self.status.setText(str(err))
            return 0
        label = self.segments.label_box.value()
        self._preview = None
        changed = self.session.apply(seg, result, f"{self.tool} label {label}")
        log.info("label tool %s on label %d changed %d voxels", self.tool, label, changed)
        self.state.set_labels(seg.as_volume())
        self.segments.refresh()
        self.status.setText(f"{self.tool_box.currentText()}: {changed} voxels changed")
        return changed
