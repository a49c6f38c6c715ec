"""Detections panel: the AI detections (label, score, centre, size) in a table; a click jumps every view there."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.ui.state import ViewerState

COLUMNS = ("Label", "Score", "Centre (mm)", "Size (mm)")


def detection_size_mm(detection: dict) -> np.ndarray:
    """Extent (x, y, z) mm of a detection's box (ai.detection boxes span their voxels' outer edges)."""
    lo, hi = (np.asarray(c, float) for c in detection["box_mm"])
    return np.abs(hi - lo)


class DetectionsPanel(QWidget):
    """Follows ``state.detections``; selecting a row moves the linked cursor to that detection's centre."""

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.cellClicked.connect(lambda row, _col: self.jump_to(row))
        self.table.currentCellChanged.connect(lambda row, *_: self.jump_to(row))
        self.summary = QLabel("no detections: use Detect in the AI panel")
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        state.detections_changed.connect(self.show_detections)
        state.volume_changed.connect(lambda _vol: self.show_detections([]))

    def show_detections(self, detections: list[dict]) -> None:
        """Fill the table with ``detections`` (ai.detection dicts)."""
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for row, d in enumerate(detections):
            size = detection_size_mm(d)
            cells = (f"{d['name']} ({d['label']})", f"{d['score']:.2f}",
                     "{:.1f}, {:.1f}, {:.1f}".format(*d["center_mm"]), "{:.0f} x {:.0f} x {:.0f}".format(*size))
            self.table.insertRow(row)
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.blockSignals(False)
        self.summary.setText(f"{len(detections)} detections" if detections else
                             "no detections: use Detect in the AI panel")

    def jump_to(self, row: int) -> None:
        """Move the linked cursor (all views) to the centre of detection ``row``."""
        if 0 <= row < len(self.state.detections):
            self.state.set_cursor(self.state.detections[row]["center_mm"])
