"""Box outlines where the current slice cuts world boxes (detections, the box ROI), as 2D rectangles."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints, vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from viewer.render.layers.base import Z_BOXES, SliceLayer
from viewer.render.slice_geometry import SliceGeometry


class BoxLayer(SliceLayer):
    """Rectangles where the current slice cuts world boxes ``(lo_xyz, hi_xyz, rgb)`` (LPS mm; a detection's
    box spans its voxels' outer edges). On oblique images the rectangle is the box's extent in the view's
    index plane."""

    def __init__(self, geometry: SliceGeometry, line_width: float = 2.0):
        super().__init__(geometry)
        self.boxes: list[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]] = []
        self.poly = vtkPolyData()
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(self.poly)
        mapper.SetColorModeToDirectScalars()
        mapper.SetScalarModeToUseCellData()
        self.actor = vtkActor()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetLineWidth(line_width)
        self.actor.VisibilityOff()
        self.props = [self.actor]

    def clear(self) -> None:
        self.set_boxes([])
        self.actor.VisibilityOff()

    def set_boxes(self, boxes) -> None:
        """Replace the boxes: an iterable of (lo_xyz, hi_xyz, rgb 0-255); redrawn by ``update``."""
        self.boxes = [(np.asarray(lo, float), np.asarray(hi, float), tuple(int(c) for c in rgb))
                      for lo, hi, rgb in boxes]

    def rectangles(self) -> list[tuple[float, float, float, float, tuple[int, int, int]]]:
        """(u0, v0, u1, v1, rgb) in scene mm for each box the current slice cuts."""
        geo = self.geometry
        su, sv = geo.plane_spacing
        out = []
        for lo, hi, rgb in self.boxes:
            corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            plane = np.array([geo.plane_of(c) for c in corners])
            (c0, r0, k0), (c1, r1, k1) = plane.min(axis=0), plane.max(axis=0)
            if k0 - 1e-6 <= geo.k <= k1 + 1e-6:
                out.append((c0 * su, r0 * sv, c1 * su, r1 * sv, rgb))
        return out

    def update(self) -> None:
        rects = self.rectangles() if self.geometry.volume is not None else []
        if not rects:
            self.actor.VisibilityOff()
            return
        points, lines = vtkPoints(), vtkCellArray()
        colours = vtkUnsignedCharArray()
        colours.SetNumberOfComponents(3)
        for u0, v0, u1, v1, rgb in rects:
            first = points.GetNumberOfPoints()
            for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
                points.InsertNextPoint(u, v, Z_BOXES)
            lines.InsertNextCell(5)
            for i in (0, 1, 2, 3, 0):
                lines.InsertCellPoint(first + i)
            colours.InsertNextTuple3(*rgb)
        self.poly.SetPoints(points)
        self.poly.SetLines(lines)
        self.poly.GetCellData().SetScalars(colours)
        self.poly.Modified()
        self.actor.VisibilityOn()
