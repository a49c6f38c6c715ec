"""Volumes as VTK images: the voxel buffer shared with numpy, placed in world (LPS) space."""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4

from viewer.core.volume import Volume


def vtk_image(vol: Volume, *, geometry: bool = True) -> vtkImageData:
    """``vol`` as a vtkImageData; the voxel buffer is shared, not copied.

    With ``geometry`` the image carries origin and direction (world LPS); without, only the spacing
    (origin 0, identity direction): place it with ``world_matrix(vol)`` as the prop's user matrix.
    """
    img = vtkImageData()
    x, y, z = vol.size
    img.SetDimensions(x, y, z)
    img.SetSpacing(*vol.spacing)
    if geometry:
        img.SetOrigin(*vol.origin)
        img.SetDirectionMatrix(*np.asarray(vol.direction, float).ravel())
    flat = np.ascontiguousarray(vol.array).ravel()
    arr = numpy_to_vtk(flat, deep=False)
    arr._numpy_ref = flat
    img.GetPointData().SetScalars(arr)
    return img


def world_matrix(vol: Volume) -> vtkMatrix4x4:
    """Rotation (direction) and translation (origin) from the spacing-scaled index frame to world LPS."""
    m = np.eye(4)
    m[:3, :3] = vol.direction
    m[:3, 3] = vol.origin
    out = vtkMatrix4x4()
    out.DeepCopy(m.ravel())
    return out
