"""Smooth surfaces of a label map (VTK surface nets), coloured per label, placed in world (LPS) space."""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from viewer.core.volume import Volume
from viewer.render.colormaps import label_color
from viewer.render.vtk_image import vtk_image, world_matrix

SMOOTHING_ITERATIONS = 16


def label_surface_actor(labels: Volume, colors: dict[int, tuple[int, int, int]] | None = None,
                        opacity: float = 1.0) -> vtkActor | None:
    """One actor with the boundary surface of every non-zero label (None when the map is empty).

    Each triangle takes the colour of the label it bounds (``colors``: id -> (r, g, b) 0-255, the
    default palette otherwise).
    """
    ids = np.unique(labels.array)
    ids = ids[ids > 0]
    if ids.size == 0:
        return None
    nets = vtkSurfaceNets3D()
    nets.SetInputData(vtk_image(labels, geometry=False))
    for i, lab in enumerate(ids):
        nets.SetLabel(i, float(lab))
    nets.SmoothingOn()
    nets.SetNumberOfIterations(SMOOTHING_ITERATIONS)
    nets.Update()
    surface = nets.GetOutput()
    pair = vtk_to_numpy(surface.GetCellData().GetArray("BoundaryLabels"))
    owner = pair.reshape(len(pair), -1).max(axis=1).astype(np.int32)  # the label side of each face
    owner_vtk = numpy_to_vtk(owner, deep=True)
    owner_vtk.SetName("label")
    surface.GetCellData().SetScalars(owner_vtk)
    top = int(ids.max())
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(top + 1)
    lut.SetTableRange(0, top)
    for lab in range(top + 1):
        r, g, b = (colors or {}).get(lab) or label_color(lab)
        lut.SetTableValue(lab, r / 255, g / 255, b / 255, 1.0)
    lut.Build()
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(surface)
    mapper.SetScalarModeToUseCellData()
    mapper.SetLookupTable(lut)
    mapper.SetScalarRange(0, top)
    mapper.SetColorModeToMapScalars()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.SetUserMatrix(world_matrix(labels))
    actor.GetProperty().SetOpacity(opacity)
    return actor
