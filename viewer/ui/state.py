"""ViewerState: the GUI's shared display state (volume, labels, cursor, W/L) with Qt change signals.

Views never reach into each other: they change the state and redraw when it signals.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from viewer.core.presets import auto_window_level, default_colormap
from viewer.core.volume import Volume


class ViewerState(QObject):
    """What every view shows: one volume, an optional label overlay, the linked cursor, W/L, colour map."""

    volume_changed = Signal(object)  # Volume
    slices_loaded = Signal(object)  # list of z indices that received voxels
    labels_changed = Signal(object)  # Volume | None
    cursor_changed = Signal(object)  # np.ndarray world LPS mm
    window_level_changed = Signal(float, float)
    colormap_changed = Signal(str)
    labels_edited = Signal()  # the label overlay's voxels changed in place
    label_visibility_changed = Signal(int, bool)
    tool_changed = Signal(str)
    #: a paint/erase stroke on a view: (phase 'begin' | 'move' | 'end', world point or None)
    stroke = Signal(str, object)

    TOOLS = ("crosshair", "window_level", "paint", "erase")

    def __init__(self) -> None:
        super().__init__()
        self.volume: Volume | None = None
        self.labels: Volume | None = None
        self.cursor = np.zeros(3)
        self.window, self.level = 400.0, 40.0
        self.colormap = "gray"
        self.tool = "crosshair"

    def set_volume(self, vol: Volume) -> None:
        """Show ``vol``: W/L and colour map reset to its defaults, cursor at its centre."""
        self.volume = vol
        self.labels = None
        self.window, self.level = auto_window_level(vol)
        self.colormap = default_colormap(vol)
        self.cursor = vol.index_to_world((np.asarray(vol.size) - 1) / 2.0)
        self.volume_changed.emit(vol)

    def set_labels(self, labels: Volume | None) -> None:
        self.labels = labels
        self.labels_changed.emit(labels)

    def set_cursor(self, world_xyz) -> None:
        self.cursor = np.asarray(world_xyz, float).copy()
        self.cursor_changed.emit(self.cursor.copy())

    def set_window_level(self, window: float, level: float) -> None:
        window = max(float(window), 1e-6)
        if (window, float(level)) != (self.window, self.level):
            self.window, self.level = window, float(level)
            self.window_level_changed.emit(self.window, self.level)

    def set_tool(self, tool: str) -> None:
        """What a left-drag does in the MPR views: 'crosshair', 'window_level', 'paint' or 'erase'."""
        if tool not in self.TOOLS:
            raise ValueError(f"tool must be one of {self.TOOLS}")
        self.tool = tool
        self.tool_changed.emit(tool)

    def set_colormap(self, name: str) -> None:
        self.colormap = name
        self.colormap_changed.emit(name)
