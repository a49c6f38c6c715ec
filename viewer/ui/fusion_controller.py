"""Wires a FusionState to the GUI: the overlay in the fixed image's MPR and 3D views, the moving view of the
side-by-side layout (its cursor linked through the transform), the rotating MIP, landmark clicks, and loading
the chosen moving volume."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from viewer.core.fusion import FusionState
from viewer.render.layers.boxes import BoxLayer
from viewer.render.synthetic_banner import banner_text
from viewer.ui.fusion_panel import NO_OVERLAY, FusionPanel
from viewer.ui.mip_view import MipView
from viewer.ui.mpr_view import MprView
from viewer.ui.registration_panel import RegistrationPanel
from viewer.ui.state import ViewerState
from viewer.ui.volume_3d_view import Volume3DView
from viewer.ui.workers import LoadWorker, TaskWorker

log = logging.getLogger(__name__)
#: Frames of the rotating MIP (10 degrees apart).
MIP_ANGLES = 36
#: Landmarks are drawn as squares of this half-size (mm) where the slice passes within it, in this colour.
LANDMARK_HALF_MM = 3.0
LANDMARK_RGB = (255, 0, 255)


class FusionController(QObject):
    """The fusion side of the main window.

    ``state`` is the fixed image's ViewerState; ``fusion`` the FusionState (also ``session.fusion``, so a saved
    session keeps it); ``moving_state``/``moving_view`` show the moving volume in its own frame; ``mip_view``
    loops its MIP. ``fused(Volume)`` is emitted once a chosen moving volume is loaded and fused;
    ``failed(str)`` with a one-line error. ``show_volume(vol)`` (given by the main window) makes a loaded
    volume the shown (fixed) image: :meth:`swap` uses it.
    """

    fused = Signal(object)
    failed = Signal(str)

    def __init__(self, state: ViewerState, session, views: dict[str, MprView], view3d: Volume3DView,
                 show_volume=None, parent=None):
        super().__init__(parent)
        self.state = state
        self.fusion = FusionState()
        session.fusion = self.fusion
        self.views = views
        self.view3d = view3d
        self.show_volume = show_volume or state.set_volume
        self.moving_state = ViewerState()
        self.moving_view = MprView(self.moving_state, "axial")
        self.mip_view = MipView()
        self.panel = FusionPanel(self.fusion)
        self.registration_panel = RegistrationPanel(self.fusion)
        self.loader: LoadWorker | None = None
        self.mip_worker: TaskWorker | None = None
        self._linking = False
        self._candidates: dict[str, tuple[str, object]] = {}  # text -> (path, SeriesInfo)
        for view in views.values():
            view.picked.connect(lambda world: self.registration_panel.add_landmark("fixed", world))
        self.moving_view.picked.connect(lambda world: self.registration_panel.add_landmark("moving", world))
        state.volume_changed.connect(self._on_fixed)  # after the views, which drop their overlays on a new image
        state.cursor_changed.connect(self._fixed_cursor_moved)
        self.moving_state.cursor_changed.connect(self._moving_cursor_moved)
        self.fusion.volumes_changed.connect(self._on_pair)
        self.fusion.transform_changed.connect(self._on_transform)
        self.fusion.display_changed.connect(self._on_display)
        self.fusion.landmarks_changed.connect(self._show_landmarks)
        self.landmark_marks = {"fixed": [(view, _mark_layer(view)) for view in views.values()],
                               "moving": [(self.moving_view, _mark_layer(self.moving_view))]}
        self.panel.moving_chosen.connect(self._on_chosen)
        self.registration_panel.swap_requested.connect(self.swap)
        self.registration_panel.placing_changed.connect(self._on_placing)
        self.registration_panel.failed.connect(self.failed)

    # ------------------------------------------------------------------ choosing and loading the moving volume
    def add_candidates(self, path: str, series_list) -> None:
        """List the series found under ``path`` (a scan) as volumes that can be fused."""
        for s in series_list:
            text = f"{s.modality} {s.description or Path(path).name}".strip()
            if text in self._candidates and self._candidates[text][1].series_uid != s.series_uid:
                text = f"{text} ({s.series_uid[-8:]})"
            self._candidates[text] = (path, s)
        self._show_candidates()

    def _show_candidates(self) -> None:
        fixed = self.fusion.fixed
        uid = fixed.meta.get("series_uid") if fixed is not None else None
        source = fixed.meta.get("source_path") if fixed is not None else None
        shown = [(text, text) for text, (path, s) in self._candidates.items()
                 if not (s.series_uid == uid or (not s.headers and str(path) == source))]
        self.panel.set_candidates(shown, self._candidate_of(self.fusion.moving))

    def _candidate_of(self, vol) -> str:
        """The candidate text of a loaded volume (its DICOM series, else its file), NO_OVERLAY for None."""
        if vol is None:
            return NO_OVERLAY
        uid, source = vol.meta.get("series_uid"), vol.meta.get("source_path")
        return next((text for text, (path, s) in self._candidates.items()
                     if (s.series_uid == uid if uid else str(path) == source)), NO_OVERLAY)

    def _on_chosen(self, key) -> None:
        if key is None:
            self.fusion.set_moving(None)
            return
        path, series = self._candidates[key]
        self.load_moving(path, series)

    def load_moving(self, path: str, series=None) -> LoadWorker | None:
        """Load ``path`` (its ``series``, else its first) in the background and fuse it over the shown image;
        returns the worker (None without a shown image)."""
        if self.fusion.fixed is None:
            self.failed.emit("open an image before fusing another one over it")
            return None
        if self.loader is not None and self.loader.isRunning():
            self.loader.cancel()
            self.loader.wait()
        fixed = self.fusion.fixed
        worker = LoadWorker(path, series, self)
        worker.progress.connect(lambda f, msg: self.panel.show_status(f"loading: {msg}"))
        worker.finished_ok.connect(lambda vol, w=worker: self._on_loaded(w, fixed, vol))
        worker.failed.connect(lambda msg: (self.panel.show_status(msg), self.failed.emit(msg)))
        self.loader = worker
        self.panel.show_status(f"loading {path}")
        worker.start()
        return worker

    def _on_loaded(self, worker: LoadWorker, fixed, vol) -> None:
        if worker is not self.loader or fixed is not self.fusion.fixed:
            return  # another volume was chosen, or another image shown, meanwhile
        from viewer.core.errors import RadviewError

        vol.meta.setdefault("source_path", worker.path)  # a saved session reopens it from there
        try:
            self.fusion.set_moving(vol)
        except RadviewError as err:
            self.panel.show_status(str(err))
            self.failed.emit(str(err))
            return
        self.panel.show_status("")
        self.fused.emit(vol)

    # ------------------------------------------------------------------ the overlay in the fixed image's views
    def _on_fixed(self, vol) -> None:
        self.fusion.set_fixed(vol)  # a new image drops the pair; the same one (a reopened session) keeps it
        self._show_overlay()

    def _on_transform(self) -> None:
        self._show_overlay()
        self._fixed_cursor_moved(self.state.cursor)

    def _show_overlay(self) -> None:
        """Every MPR view and the 3D view showing the fixed image draw the moving one through the transform."""
        f = self.fusion
        style = f.display  # the render layers draw a FusionDisplay as it is
        for view in self.views.values():
            if view.has_volume:
                fused = f.active and f.fixed is view.slice_view.volume
                if fused or view.slice_view.fusion.moving is not None:
                    view.slice_view.set_fusion(f.moving if fused else None, f.shown_transform, style)
                    view.vtk.render()
        volume_view = self.view3d.volume_view
        if volume_view.volume is not None:
            fused = f.active and f.fixed is volume_view.volume
            if fused or volume_view.fusion.moving is not None:
                volume_view.set_fusion(f.moving if fused else None, f.shown_transform, style)
                self.view3d.vtk.render()

    def _on_display(self) -> None:
        style = self.fusion.display
        for view in self.views.values():
            if view.has_volume and view.slice_view.fusion.moving is not None:
                view.slice_view.fusion.set_style(style)
                view.vtk.render()
        if self.view3d.volume_view.fusion.moving is not None:
            self.view3d.volume_view.fusion.set_style(style)
            self.view3d.vtk.render()

    # ------------------------------------------------------------------ the pair changed
    def _on_pair(self) -> None:
        self._show_candidates()
        moving = self.fusion.moving
        self.moving_view.setEnabled(moving is not None)
        if moving is None:
            self.mip_view.set_frames([], (0, 1))
            return
        if self.moving_state.volume is not moving:
            self.moving_state.set_volume(moving)
        self._fixed_cursor_moved(self.state.cursor)
        self._start_mip(moving)

    def _start_mip(self, moving) -> None:
        from viewer.core.mip import rotating_mip

        if self.mip_worker is not None and self.mip_worker.isRunning():
            self.mip_worker.cancel()
            self.mip_worker.wait()
        worker = TaskWorker(rotating_mip, moving, MIP_ANGLES, with_progress=True, parent=self)
        window = self.fusion.display.window
        inverse = moving.modality == "PT" or moving.units == "SUVbw"
        worker.finished_ok.connect(lambda result, m=moving: self._show_mip(m, result, window, inverse))
        worker.failed.connect(self.failed)
        self.mip_worker = worker
        worker.start()

    def _show_mip(self, moving, result, window, inverse: bool) -> None:
        if moving is self.fusion.moving:
            frames, _pixel_mm = result
            self.mip_view.set_frames(frames, window, inverse, banner_text(moving))

    def swap(self) -> bool:
        """Make the moving volume the fixed (shown) one and the fixed one the moving, through the inverse
        transform (linear transforms only); False with a message otherwise."""
        from viewer.core.errors import RadviewError

        f = self.fusion
        if not f.active:
            return False
        try:
            back = f.transform.inverse()
        except RadviewError as err:
            self.failed.emit(str(err))
            return False
        fixed, moving = f.fixed, f.moving
        self.show_volume(moving)  # the pair is dropped: the fixed image changed
        f.set_moving(fixed, back)
        return True

    # ------------------------------------------------------------------ landmarks
    def _show_landmarks(self) -> None:
        half = LANDMARK_HALF_MM
        for role, marks in self.landmark_marks.items():
            boxes = [(p - half, p + half, LANDMARK_RGB) for p in self.fusion.landmarks[role]]
            for view, layer in marks:
                if not boxes and not layer.boxes:
                    continue  # none shown, none to show: no render
                layer.set_boxes(boxes)
                if view.has_volume:
                    layer.update()
                    view.vtk.render()

    # ------------------------------------------------------------------ linked cursors
    def _fixed_cursor_moved(self, xyz) -> None:
        """The fixed cursor moved: the moving view shows the same world point through the transform."""
        if self._linking or not self.fusion.active or self.registration_panel.placing:
            return
        self._linking = True
        try:
            self.moving_state.set_cursor(self.fusion.moving_point(xyz))
        finally:
            self._linking = False

    def _moving_cursor_moved(self, xyz) -> None:
        """A click or scroll in the moving view moves the fixed cursor to the same point (linear transforms)."""
        if self._linking or not self.fusion.active or self.registration_panel.placing:
            return
        fixed_xyz = self.fusion.fixed_point(xyz)
        if fixed_xyz is None:
            return
        self._linking = True
        try:
            self.state.set_cursor(fixed_xyz)
        finally:
            self._linking = False

    def _on_placing(self, on: bool) -> None:
        if not on:  # linked again: the moving view follows the fixed cursor
            self._fixed_cursor_moved(self.state.cursor)

    def close(self) -> None:
        """Stop the background work and release the moving view's VTK window (before the main window closes)."""
        for worker in (self.loader, self.mip_worker, self.registration_panel.worker):
            if worker is not None and worker.isRunning():
                worker.cancel()
                worker.wait(30000)
        self.mip_view.timer.stop()
        self.moving_view.vtk.Finalize()


def _mark_layer(view: MprView) -> BoxLayer:
    """A box layer for landmarks in ``view``, redrawn on its slice changes."""
    layer = BoxLayer(view.slice_view.geometry)
    layer.add_to(view.slice_view.renderer)
    view.slice_view.geometry.slice_changed.connect(layer.update)
    return layer
