"""The 3D view widget: VolumeView with trackball rotation, coarse while dragging, full quality on release."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QVBoxLayout, QWidget
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera

from viewer.core.labels import LABEL_COLORS_META
from viewer.render.volume_view import VolumeView
from viewer.ui.state import ViewerState
from viewer.ui.vtk_widget import VtkWidget

#: Milliseconds without edits before the 3D label surfaces are rebuilt.
SURFACE_DELAY_MS = 400
#: What the 3D view says while the series' voxels are still arriving (it renders once they have all landed).
LOADING_MESSAGE = "3D view: shown when the series has loaded"


class Volume3DView(QWidget):
    """3D rendering bound to a ViewerState, with a preset selector."""

    def __init__(self, state: ViewerState, parent=None):
        super().__init__(parent)
        self.state = state
        self.vtk = VtkWidget(self, vtk_interaction=True)
        self.vtk.GetRenderWindow().GetInteractor().SetInteractorStyle(vtkInteractorStyleTrackballCamera())
        self.volume_view = VolumeView(self.vtk.renderer)
        self._waiting = None  # the volume shown once its load finishes (state.loading)
        self.preset_box = QComboBox()
        self.preset_box.addItems(VolumeView.PRESETS)
        self.preset_box.currentTextChanged.connect(self._on_preset)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addWidget(self.preset_box)
        layout.addWidget(self.vtk, 1)
        interactor = self.vtk.GetRenderWindow().GetInteractor()
        interactor.AddObserver("StartInteractionEvent", lambda *_: self.volume_view.set_interactive(True))
        interactor.AddObserver("EndInteractionEvent", self._on_release)
        state.volume_changed.connect(self._on_volume)
        state.cursor_changed.connect(self._on_cursor)
        state.labels_changed.connect(self._update_surfaces)
        # surfaces are rebuilt once editing pauses, not on every brush dab
        self._surface_timer = QTimer(self)
        self._surface_timer.setSingleShot(True)
        self._surface_timer.setInterval(SURFACE_DELAY_MS)
        self._surface_timer.timeout.connect(self._update_surfaces)
        state.labels_edited.connect(self._surface_timer.start)
        state.detections_changed.connect(self._on_detections)
        state.roi_changed.connect(self._on_roi)

    def _update_surfaces(self, *_) -> None:
        if self.volume_view.volume is None:
            return
        labels = self.state.labels
        colors = labels.meta.get(LABEL_COLORS_META) if labels is not None else None
        self.volume_view.set_labels_surfaces(labels, colors)
        self.vtk.render()

    def _on_release(self, *_):
        self.volume_view.set_interactive(False)
        self.vtk.render()

    def _on_volume(self, vol) -> None:
        if self.state.loading:  # ray casting a half-empty volume costs seconds on the CPU: wait for refresh()
            self._waiting = vol
            self.volume_view.clear(LOADING_MESSAGE)
            self.preset_box.setEnabled(False)
            self.vtk.render()  # the message only: no volume in the scene
            return
        self._waiting = None
        self.volume_view.set_volume(vol)
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentText(self.volume_view.preset)
        self.preset_box.blockSignals(False)
        self.preset_box.setEnabled(VolumeView.can_render(vol))  # a single slice shows a message instead
        self.volume_view.set_cursor(self.state.cursor)
        self.vtk.render()

    def refresh(self) -> None:
        """Show the volume whose loading has finished (or re-upload the voxels of the one shown) and redraw."""
        vol = self._waiting if self._waiting is not None else self.volume_view.volume
        if vol is not None:
            self._on_volume(vol)

    def _on_preset(self, name: str) -> None:
        if self.volume_view.volume is not None:
            self.volume_view.set_preset(name)
            self.vtk.render()

    def _on_detections(self, detections) -> None:
        if self.volume_view.volume is not None:
            self.volume_view.set_detections(detections)
            self.vtk.render()

    def _on_roi(self, box) -> None:
        if self.volume_view.volume is not None:
            self.volume_view.set_roi(box)
            self.vtk.render()

    def _on_cursor(self, xyz) -> None:
        if self.volume_view.volume is not None:
            self.volume_view.set_cursor(xyz)
            self.vtk.render()
