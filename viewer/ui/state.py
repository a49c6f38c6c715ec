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
    #: a paint/erase stroke on a view: (phase 'begin' | 'move' | 'end', world point or None, view orientation)
    stroke = Signal(str, object, str)
    #: a measurement-tool mouse event on a view: (phase 'press' | 'drag' | 'release', world point, orientation)
    measure = Signal(str, object, str)
    heatmap_changed = Signal(object)  # float Volume (Grad-CAM, uncertainty) | None
    heatmap_style_changed = Signal()  # heatmap_colormap / heatmap_opacity / heatmap_visible changed
    detections_changed = Signal(object)  # list of ai.detection dicts
    agreement_changed = Signal(object)  # ai.compare agreement map Volume | None
    roi_changed = Signal(object)  # box ROI ((x0, y0, z0), (x1, y1, z1)) world mm | None

    MEASURE_TOOLS = ("ruler", "angle", "ellipse", "rectangle")
    TOOLS = ("crosshair", "window_level", "paint", "erase", *MEASURE_TOOLS, "roi")

    def __init__(self) -> None:
        super().__init__()
        self.volume: Volume | None = None
        #: True while the voxels of ``volume`` are still arriving (progressive load); False once complete
        self.loading = False
        self.labels: Volume | None = None
        self.cursor = np.zeros(3)
        self.window, self.level = 400.0, 40.0
        self.colormap = "gray"
        self.tool = "crosshair"
        #: radius of the paint/erase brush, drawn as an outline under the mouse in the MPR views
        self.brush_radius_mm = 5.0
        self.heatmap_colormap, self.heatmap_opacity, self.heatmap_visible = "jet", 0.6, True
        self._clear_ai_results()

    def set_volume(self, vol: Volume, loading: bool = False) -> None:
        """Show ``vol``: W/L and colour map reset to its defaults, cursor at its centre. ``loading``: its
        voxels are still arriving (``slices_loaded`` as they land, then :meth:`finish_loading`)."""
        self.volume = vol
        self.loading = loading
        self.labels = None
        self._clear_ai_results()
        self.window, self.level = auto_window_level(vol)
        self.colormap = default_colormap(vol)
        self.cursor = vol.index_to_world((np.asarray(vol.size) - 1) / 2.0)
        self.volume_changed.emit(vol)

    def finish_loading(self) -> None:
        """All voxels of the volume being loaded have arrived: views redraw it complete."""
        self.loading = False
        self.slices_loaded.emit([])

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

    # ------------------------------------------------------------------ AI results (heat map, detections, ...)
    def _clear_ai_results(self) -> None:
        """A new volume starts without the previous one's heat map, detections, agreement map and ROI."""
        self.heatmap: Volume | None = None
        self.detections: list[dict] = []
        self.agreement: Volume | None = None
        self.roi = None

    def set_heatmap(self, heat: Volume | None) -> None:
        """Show a float map on the image (values from 0 to its maximum span the colour map); None hides it."""
        self.heatmap = heat
        self.heatmap_changed.emit(heat)

    def set_heatmap_style(self, *, colormap: str | None = None, opacity: float | None = None,
                          visible: bool | None = None) -> None:
        """Colour map ('jet' | 'hot'), opacity (0-1, reached at the map's maximum) and on/off of the heat map."""
        if colormap is not None:
            self.heatmap_colormap = colormap
        if opacity is not None:
            self.heatmap_opacity = float(opacity)
        if visible is not None:
            self.heatmap_visible = bool(visible)
        self.heatmap_style_changed.emit()

    def set_detections(self, detections: list[dict]) -> None:
        self.detections = list(detections)
        self.detections_changed.emit(self.detections)

    def set_agreement(self, amap: Volume | None) -> None:
        self.agreement = amap
        self.agreement_changed.emit(amap)

    def set_roi(self, box) -> None:
        """The box ROI ((x0, y0, z0), (x1, y1, z1)) world LPS mm that AI runs are restricted to; None: none."""
        self.roi = None if box is None else tuple(tuple(float(v) for v in corner) for corner in box)
        self.roi_changed.emit(self.roi)
