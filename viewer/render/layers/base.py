"""What every slice-view layer shares: the geometry it draws from, its props, and 2D image helpers."""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkImageSlice, vtkImageSliceMapper, vtkRenderer

from viewer.core.resample import resample_to
from viewer.core.volume import Volume
from viewer.render.slice_geometry import SliceGeometry

#: Depth of each layer above the image (camera looks down -z): later layers draw on top.
Z_FUSION, Z_HEAT, Z_LABELS, Z_AGREEMENT, Z_BOXES, Z_MARKS = 0.02, 0.05, 0.1, 0.12, 0.15, 0.2


class SliceLayer:
    """One kind of content in a slice view (napari's layer + visual in one): subclasses create their props
    in ``__init__``, redraw the current slice in ``update`` and forget their data in ``clear``."""

    def __init__(self, geometry: SliceGeometry):
        self.geometry = geometry
        self.props: list = []

    def add_to(self, renderer: vtkRenderer) -> None:
        """Add this layer's props to ``renderer``."""
        for prop in self.props:
            renderer.AddViewProp(prop)

    def update(self) -> None:
        """Redraw for the geometry's current slice (called on every slice change)."""

    def clear(self) -> None:
        """A new volume is shown: drop data that belonged to the previous one and hide."""


def image_data(plane: np.ndarray, spacing: tuple[float, float], components: int = 1) -> vtkImageData:
    """A 2D vtkImageData of ``plane`` (rows up, cols right); the numpy buffer is referenced, not copied."""
    img = vtkImageData()
    rows, cols = plane.shape[:2]
    img.SetDimensions(cols, rows, 1)
    img.SetSpacing(spacing[0], spacing[1], 1.0)
    flat = np.ascontiguousarray(plane).reshape(rows * cols, components) if components > 1 else \
        np.ascontiguousarray(plane).ravel()
    arr = numpy_to_vtk(flat, deep=False)
    arr._numpy_ref = flat  # keep the buffer alive as long as VTK uses it
    img.GetPointData().SetScalars(arr)
    return img


def image_slice(z: float) -> vtkImageSlice:
    """A hidden 2D image prop at depth ``z`` with nearest-neighbour pixels."""
    layer = vtkImageSlice()
    layer.SetMapper(vtkImageSliceMapper())
    layer.GetProperty().SetInterpolationTypeToNearest()
    layer.SetPosition(0, 0, z)
    layer.VisibilityOff()
    return layer


def rgba_slice(z: float) -> vtkImageSlice:
    """A hidden RGBA image prop at depth ``z`` whose colours are used as they are (identity window)."""
    layer = image_slice(z)
    prop = layer.GetProperty()
    prop.SetColorWindow(255)
    prop.SetColorLevel(127.5)
    return layer


def nonzero_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice] | None:
    """(rows, cols) slices of the bounding box of a 2D ``mask``'s true pixels grown by ``pad`` (kept inside
    the plane); None when none is true."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return (slice(max(rows[0] - pad, 0), rows[-1] + 1 + pad), slice(max(cols[0] - pad, 0), cols[-1] + 1 + pad))


def show_rgba(layer: vtkImageSlice, rgba: np.ndarray, spacing: tuple[float, float],
              offset: tuple[int, int] = (0, 0)) -> None:
    """Upload the non-transparent part of an RGBA (rows, cols, 4) uint8 plane, whose pixel (0, 0) is pixel
    ``offset`` (row, col) of the slice, to ``layer`` and show it (hide it when all is transparent). Only the
    bounding box of visible pixels is drawn: on software OpenGL every pixel a layer covers costs fill time."""
    box = nonzero_box(rgba[..., 3])
    if box is None:
        layer.VisibilityOff()
        return
    img = image_data(rgba[box], spacing, 4)
    img.SetOrigin((offset[1] + box[1].start) * spacing[0], (offset[0] + box[0].start) * spacing[1], 0.0)
    layer.GetMapper().SetInputData(img)
    layer.VisibilityOn()


def on_grid(data: Volume | np.ndarray, grid: Volume, nearest: bool) -> np.ndarray:
    """``data`` as an array on ``grid`` (a Volume on any grid is resampled by world geometry)."""
    if isinstance(data, Volume):
        data = resample_to(data, grid, nearest=nearest, default=0).array
    if data.shape != grid.array.shape[:3]:
        raise ValueError(f"overlay shape {data.shape} differs from the image {grid.array.shape[:3]}")
    return data
