"""An MPR view widget: a SliceView in Qt with crosshair clicks, scrolling, zoom, pan and W/L drags."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from viewer.core.labels import LABEL_COLORS_META, LABEL_OPACITY_META
from viewer.render.layers.labels import DEFAULT_LABEL_OPACITY
from viewer.render.slice_view import SliceView
from viewer.ui.state import ViewerState
from viewer.ui.vtk_widget import VtkWidget

#: W/L change per dragged pixel, as a fraction of the current window.
WL_DRAG_GAIN = 0.004
ZOOM_DRAG_GAIN = 1.01


class MprView(QWidget):
    """Axial, coronal or sagittal view bound to a ViewerState.

    Left click/drag: the current tool (crosshair, window/level, paint, erase); right drag: zoom;
    middle drag: pan; wheel, PageUp/PageDown, arrow keys (Up/Right: next, Down/Left: previous): scroll
    slices; R: reset the view.
    Double-click asks the main window to maximise this view (``maximize_requested``); every left click on
    the image reports its world point (``picked``: landmark placing listens to it).
    """

    maximize_requested = Signal(object)
    picked = Signal(object)  # world LPS mm of a left click on the image
    _fusion_ready = Signal()  # a B-spline overlay finished resampling (emitted from its worker thread)

    def __init__(self, state: ViewerState, orientation: str, parent=None):
        super().__init__(parent)
        self.state = state
        self.orientation = orientation
        self.vtk = VtkWidget(self)
        self.slice_view = SliceView(self.vtk.renderer, orientation)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.addWidget(self.vtk)
        self._drag = None  # (button, last display xy, start W/L)
        for name in ("mousePressEvent", "mouseMoveEvent", "mouseReleaseEvent", "wheelEvent", "keyPressEvent",
                     "mouseDoubleClickEvent", "leaveEvent"):
            setattr(self.vtk, name, getattr(self, "_" + name))
        state.volume_changed.connect(self._on_volume)
        state.slices_loaded.connect(self._on_slices_loaded)
        state.cursor_changed.connect(self._on_cursor)
        state.window_level_changed.connect(self._on_window_level)
        state.colormap_changed.connect(self._on_colormap)
        state.labels_changed.connect(self._on_labels)
        state.labels_edited.connect(self._on_labels_edited)
        state.label_visibility_changed.connect(self._on_label_visibility)
        self._connect_ai_layers()
        self.slice_view.fusion.ready.connect(self._fusion_ready.emit)
        self._fusion_ready.connect(self._on_fusion_ready)

    # ------------------------------------------------------------------ state -> view
    @property
    def has_volume(self) -> bool:
        return self.slice_view.volume is not None

    def _on_volume(self, vol) -> None:
        self.slice_view.set_volume(vol)
        self.slice_view.set_window_level(self.state.window, self.state.level)
        self.slice_view.set_colormap(self.state.colormap)
        self.slice_view.set_cursor(self.state.cursor)
        if self.vtk.GetRenderWindow().GetNeverRendered():
            self.vtk.render()  # the first render sizes the window, which fitting the image to the view needs
        self.slice_view.reset_camera()
        if not self.state.loading:  # a progressive load draws when its first slices land (_on_slices_loaded)
            self.vtk.render()

    def _on_slices_loaded(self, ks) -> None:
        if self.has_volume:
            self.slice_view.voxels_changed()
            self.vtk.render()

    def _on_cursor(self, xyz) -> None:
        if self.has_volume:
            self.slice_view.set_cursor(xyz)
            self.vtk.render()

    def _on_window_level(self, window: float, level: float) -> None:
        if self.has_volume:
            self.slice_view.set_window_level(window, level)
            self.vtk.render()

    def _on_colormap(self, name: str) -> None:
        if self.has_volume:
            self.slice_view.set_colormap(name)
            self.vtk.render()

    def _on_labels(self, labels) -> None:
        if self.has_volume:
            meta = labels.meta if labels is not None else {}
            self.slice_view.set_labels(labels, colors=meta.get(LABEL_COLORS_META),
                                       opacity=meta.get(LABEL_OPACITY_META, DEFAULT_LABEL_OPACITY))
            self.vtk.render()

    def _on_labels_edited(self) -> None:
        if self.has_volume:
            self.slice_view.update_labels()
            self.vtk.render()

    def _on_label_visibility(self, label: int, visible: bool) -> None:
        if self.has_volume:
            self.slice_view.set_label_visible(label, visible)
            self.vtk.render()

    def reset_view(self) -> None:
        if self.has_volume:
            self.slice_view.reset_camera()
            self.vtk.render()

    # ------------------------------------------------------------------ fused overlay
    def _on_fusion_ready(self) -> None:
        if self.has_volume:
            self.slice_view.fusion.update()
            self.vtk.render()

    # ------------------------------------------------------------------ AI result layers
    def _connect_ai_layers(self) -> None:
        """Heat map, agreement map, detection boxes and the box ROI follow the state."""
        self._roi_start = None  # (world point where the ROI drag began, the ROI before it)
        self.state.heatmap_changed.connect(self._on_heatmap)
        self.state.heatmap_style_changed.connect(self._on_heatmap_style)
        self.state.agreement_changed.connect(self._on_agreement)
        self.state.detections_changed.connect(self._on_detections)
        self.state.roi_changed.connect(self._on_roi)

    def _on_heatmap(self, heat) -> None:
        if self.has_volume:
            st = self.state
            self.slice_view.set_heatmap(heat, colormap=st.heatmap_colormap, opacity=st.heatmap_opacity)
            self.slice_view.set_heatmap_style(visible=st.heatmap_visible)
            self.vtk.render()

    def _on_heatmap_style(self) -> None:
        if self.has_volume:
            st = self.state
            self.slice_view.set_heatmap_style(colormap=st.heatmap_colormap, opacity=st.heatmap_opacity,
                                              visible=st.heatmap_visible)
            self.vtk.render()

    def _on_agreement(self, amap) -> None:
        if self.has_volume:
            self.slice_view.set_agreement(amap)
            self.vtk.render()

    def _on_detections(self, detections) -> None:
        if self.has_volume:
            self.slice_view.set_detections(detections)
            self.vtk.render()

    def _on_roi(self, box) -> None:
        if self.has_volume:
            self.slice_view.set_roi(box)
            self.vtk.render()

    def _roi_drag_to(self, world) -> None:
        """ROI tool: the dragged rectangle becomes the box ROI (extent along the normal kept, see box_from_drag)."""
        from viewer.core.roi_box import box_from_drag

        if self._roi_start is None or world is None:
            return
        start, previous = self._roi_start
        if not np.allclose(start, world):
            self.state.set_roi(box_from_drag(start, world, self.orientation, self.state.volume, previous))

    # ------------------------------------------------------------------ input -> state
    def _world_at(self, event):
        return self.slice_view.display_to_world(*self.vtk.display_xy(event.position()))

    def _mousePressEvent(self, event) -> None:
        if not self.has_volume:
            return
        xy = self.vtk.display_xy(event.position())
        self._drag = (event.button(), xy, (self.state.window, self.state.level))
        if event.button() != Qt.LeftButton:
            return
        world = self.slice_view.display_to_world(*xy)
        if world is not None:
            self.picked.emit(world)
        if self.state.tool in ("paint", "erase"):
            self.state.stroke.emit("begin", world, self.orientation)
        elif self.state.tool == "crosshair" and world is not None:
            self.state.set_cursor(world)
        elif self.state.tool in self.state.MEASURE_TOOLS and world is not None:
            self.state.measure.emit("press", world, self.orientation)
        elif self.state.tool == "roi" and world is not None:
            self._roi_start = (world, self.state.roi)

    def _mouseMoveEvent(self, event) -> None:
        if not self.has_volume:
            return
        x, y = self.vtk.display_xy(event.position())
        world = self.slice_view.display_to_world(x, y)
        if world is not None:
            self.slice_view.set_probe_text(self.slice_view.probe(world))
        painting = self.state.tool in ("paint", "erase")
        self.slice_view.set_brush_outline(world if painting else None, self.state.brush_radius_mm)
        if self._drag is None:
            self.vtk.render()
            return
        button, (x0, y0), (w0, l0) = self._drag
        tool = self.state.tool
        if button == Qt.LeftButton and tool == "window_level":
            self.state.set_window_level(w0 * (1 + WL_DRAG_GAIN * (x - x0)), l0 - (y - y0) * WL_DRAG_GAIN * w0)
            return
        if button == Qt.LeftButton and tool in ("paint", "erase"):
            self.state.stroke.emit("move", world, self.orientation)
            return
        if button == Qt.LeftButton and tool in self.state.MEASURE_TOOLS:
            if world is not None:
                self.state.measure.emit("drag", world, self.orientation)
            return
        if button == Qt.LeftButton and tool == "roi":
            self._roi_drag_to(world)
            return
        if button == Qt.LeftButton and world is not None:
            self.state.set_cursor(world)
        elif button == Qt.RightButton:
            self.slice_view.zoom(ZOOM_DRAG_GAIN ** (y - y0))
            self._drag = (button, (x, y), (w0, l0))
        elif button == Qt.MiddleButton:
            self.slice_view.pan(x - x0, y - y0)
            self._drag = (button, (x, y), (w0, l0))
        self.vtk.render()

    def _mouseReleaseEvent(self, event) -> None:
        if self._drag is not None and self._drag[0] == Qt.LeftButton and self.state.tool in self.state.MEASURE_TOOLS:
            world = self.slice_view.display_to_world(*self.vtk.display_xy(event.position()))
            self.state.measure.emit("release", world, self.orientation)
        if self._drag is not None and self._drag[0] == Qt.LeftButton and self.state.tool in ("paint", "erase"):
            self.state.stroke.emit("end", None, self.orientation)
        self._drag = None

    def _leaveEvent(self, event) -> None:
        if self.has_volume:
            self.slice_view.set_brush_outline(None)
            self.vtk.render()

    def _mouseDoubleClickEvent(self, event) -> None:
        self.maximize_requested.emit(self)

    def _wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() // 120 or (1 if event.angleDelta().y() > 0 else -1)
        self.scroll(steps)

    def _keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key_PageUp, Qt.Key_Up, Qt.Key_Right):
            self.scroll(1)
        elif key in (Qt.Key_PageDown, Qt.Key_Down, Qt.Key_Left):
            self.scroll(-1)
        elif key == Qt.Key_R:
            self.reset_view()

    def scroll(self, n: int) -> None:
        """Move ``n`` slices and move the linked cursor with them."""
        if self.has_volume:
            self.state.set_cursor(self.slice_view.scroll(n))
