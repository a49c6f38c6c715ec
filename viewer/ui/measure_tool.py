"""Measurement tools in the MPR views (ruler, angle, ellipse/rectangle ROI) and the table that lists them.

The MPR views report measurement-tool mouse events through ``ViewerState.measure``; :class:`MeasureTool`
turns them into :class:`viewer.core.measurements.Measurement` objects kept in ``Session.measurements``
(so they are saved with the session) and draws them with one MeasureOverlay per view.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QAbstractItemView, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from viewer.core.measurements import POINTS_PER_KIND, Measurement, distance_mm, image_key, measure, slice_of
from viewer.core.session import Session
from viewer.render.measure_overlay import MeasureOverlay
from viewer.ui.state import ViewerState

log = logging.getLogger(__name__)
TABLE_COLUMNS = ["Name", "View", "Slice", "Value"]
#: A view's drawn-overlay key (see ``MeasureTool.redraw``) when it shows no measurement and none is pending.
NOTHING_DRAWN = ((), None)


class MeasureTool(QObject):
    """Ruler: press-drag-release; ellipse/rectangle: drag from corner to corner; angle: three clicks
    (arm end, vertex, arm end). A click without a drag makes no ruler or ROI. ``changed`` fires when
    the list of measurements changes."""

    changed = Signal()
    failed = Signal(str)

    def __init__(self, state: ViewerState, session: Session, views: dict, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.session = session
        self.views = views
        self.overlays = {o: MeasureOverlay(v.slice_view) for o, v in views.items()}
        self.selected: Measurement | None = None
        self._pending: tuple[str, str, list] | None = None  # (kind, orientation, world points)
        self._drawn: dict[str, tuple] = dict.fromkeys(views, NOTHING_DRAWN)  # what each view shows (redraw)
        state.measure.connect(self._on_mouse)
        state.cursor_changed.connect(self.redraw)
        state.volume_changed.connect(self._on_volume)
        state.tool_changed.connect(self._on_tool)

    @property
    def measurements(self) -> list[Measurement]:
        return self.session.measurements

    # ------------------------------------------------------------------ mouse
    def _on_mouse(self, phase: str, world, orientation: str) -> None:
        kind, vol = self.state.tool, self.state.volume
        if vol is None or kind not in POINTS_PER_KIND:
            return
        pending = self._pending
        if pending is not None and pending[:2] != (kind, orientation):
            pending = None  # another tool or another view: start over
        if phase == "press":
            if kind == "angle":
                pending = (kind, orientation, [*pending[2], world] if pending else [world])
            else:
                pending = (kind, orientation, [world, world])
        elif pending is not None and world is not None:
            pending[2][-1] = world
        self._pending = pending
        if phase == "release" and pending is not None and len(pending[2]) == POINTS_PER_KIND[kind]:
            self._pending = None
            self._finish(kind, orientation, pending[2])
        self.redraw()

    def _finish(self, kind: str, orientation: str, points: list) -> None:
        vol = self.state.volume
        smallest = min(vol.spacing) / 2
        if any(distance_mm(a, b) < smallest for a, b in zip(points, points[1:], strict=False)):
            return  # a click without a drag (or a degenerate angle arm)
        label = f"{kind} {sum(m.kind == kind for m in self.measurements) + 1}"
        try:
            m = measure(kind, points, vol, orientation, label)
        except ValueError as err:
            log.info("measurement not added: %s", err)
            self.failed.emit(str(err))
            return
        self.measurements.append(m)
        self.changed.emit()

    def _on_tool(self, tool: str) -> None:
        if self._pending is not None:
            self._pending = None
            self.redraw()

    def _on_volume(self, vol) -> None:
        self._pending = None
        self.selected = None
        # what is drawn is placed on the new image's planes again; a view that showed nothing needs no render
        self._drawn = {o: key for o, key in self._drawn.items() if key == NOTHING_DRAWN}
        self.redraw()

    # ------------------------------------------------------------------ list
    def delete(self, m: Measurement) -> None:
        """Remove a measurement from the session and the views."""
        self.measurements.remove(m)
        if self.selected is m:
            self.selected = None
        self.changed.emit()
        self.redraw()

    def select(self, m: Measurement | None) -> None:
        """Highlight ``m`` and move the linked cursor to it, so its view shows its slice."""
        self.selected = m
        if m is not None:
            self.state.set_cursor(np.mean(np.asarray(m.points_mm, float), axis=0))
        self.redraw()

    def refresh(self) -> None:
        """Redraw after the session's measurements were replaced (e.g. a session was opened)."""
        self._drawn.clear()
        self.changed.emit()
        self.redraw()

    def redraw(self, *_args) -> None:
        """Update each view's overlay; a view re-renders only when what it shows changed."""
        for orientation, overlay in self.overlays.items():
            visible = [m for m in self.measurements if overlay.is_visible(m)]
            pending = self._pending[::2] if self._pending and self._pending[1] == orientation else None
            key = (tuple((id(m), m.text, m is self.selected) for m in visible),
                   None if pending is None else (pending[0], np.asarray(pending[1]).tobytes()))
            if self._drawn.get(orientation) == key:
                continue
            overlay.show(visible, pending, self.selected)
            self._drawn[orientation] = key
            self.views[orientation].vtk.render()


class MeasurementPanel(QWidget):
    """The measurements of the session in a table: click a row to go to it, Delete to remove it."""

    def __init__(self, tool: MeasureTool, parent=None):
        super().__init__(parent)
        self.tool = tool
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellClicked.connect(lambda row, _col: self.tool.select(self.tool.measurements[row]))
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.delete_button)
        tool.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        vol = self.tool.state.volume
        rows = self.tool.measurements
        self.table.setRowCount(len(rows))
        for r, m in enumerate(rows):
            shown = vol is not None and (not m.image or m.image == image_key(vol))
            k = slice_of(vol, m.orientation, m.points_mm[0]) + 1 if shown else "other image"
            for c, value in enumerate((m.label or m.kind, m.orientation, k, m.text.replace("\n", "; "))):
                self.table.setItem(r, c, QTableWidgetItem(str(value)))
        self.delete_button.setEnabled(bool(rows))

    def delete_selected(self) -> None:
        """Delete the measurement of the selected row."""
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.tool.delete(self.tool.measurements[rows[0].row()])
