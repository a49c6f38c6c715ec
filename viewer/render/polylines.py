"""2D line actors in a slice view's scene (mm, camera looking down -z): crosshair, brush outline, measurements."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper


def polyline_actor(points_uv: np.ndarray, z: float, color, *, width: float = 1.0,
                   segments: bool = False) -> vtkActor:
    """An opaque line actor through ``points_uv`` ((n, 2) scene mm) at depth ``z``; with ``segments``
    the points are taken in pairs (separate line segments) instead of one connected polyline. Move the
    points later with :func:`set_polyline_points`."""
    uv = np.asarray(points_uv, float)
    points = vtkPoints()
    points.SetNumberOfPoints(len(uv))
    cells = vtkCellArray()
    runs = [[i, i + 1] for i in range(0, len(uv) - 1, 2)] if segments else [list(range(len(uv)))]
    for run in runs:
        cells.InsertNextCell(len(run))
        for i in run:
            cells.InsertCellPoint(i)
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(cells)
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(poly)
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*color)  # opaque: a translucent line costs a render pass
    actor.GetProperty().SetLineWidth(width)
    set_polyline_points(actor, uv, z)
    return actor


def set_polyline_points(actor: vtkActor, points_uv: np.ndarray, z: float) -> None:
    """Move the points of a :func:`polyline_actor` (same count) to ``points_uv`` at depth ``z``."""
    points = actor.GetMapper().GetInput().GetPoints()
    for i, (u, v) in enumerate(np.asarray(points_uv, float)):
        points.SetPoint(i, u, v, z)
    points.Modified()
