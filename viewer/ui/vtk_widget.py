"""A QVTKRenderWindowInteractor whose mouse/keyboard events are handled in Qt, not by a VTK style."""

from __future__ import annotations

import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
from PySide6.QtCore import Qt
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleUser
from vtkmodules.vtkRenderingCore import vtkRenderer


class VtkWidget(QVTKRenderWindowInteractor):
    """One renderer in a Qt widget; ``display_xy(event)`` converts Qt positions to VTK display pixels."""

    def __init__(self, parent=None, vtk_interaction: bool = False):
        super().__init__(parent)
        self.renderer = vtkRenderer()
        self.GetRenderWindow().AddRenderer(self.renderer)
        self._vtk_interaction = vtk_interaction
        if not vtk_interaction:
            self.GetRenderWindow().GetInteractor().SetInteractorStyle(vtkInteractorStyleUser())
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(True)

    def display_xy(self, pos) -> tuple[float, float]:
        """Qt widget position -> VTK display coordinates (device pixels, origin bottom-left)."""
        ratio = self.devicePixelRatioF()
        return pos.x() * ratio, (self.height() - pos.y() - 1) * ratio

    def render(self) -> None:
        """Redraw now."""
        self.GetRenderWindow().Render()
