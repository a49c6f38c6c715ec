"""The slice and camera one MPR view's layers share: plane, slice index, cursor, scene <-> world <-> display maps.

The 2D scene is in millimetres: scene (u, v) = (col * right spacing, row * up spacing) of the slice
extracted in the radiological orientation (viewer.core.slicing); the camera looks down -z at it. Layers
(viewer.render.layers) subscribe to ``slice_changed`` and redraw their part of the current slice.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkRenderingCore import vtkCoordinate, vtkRenderer

from viewer.core.events import Event
from viewer.core.slicing import ViewAxes, view_axes
from viewer.core.volume import Volume
from viewer.render.slice_cache import XMajorCache

#: World axis (LPS) along each view's normal.
NORMAL_WORLD_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


class SliceGeometry:
    """Which slice of which volume a view shows, where the cursor is, and the camera that shows it.

    ``slice_changed`` is emitted (no arguments) after the slice or the cursor moved and after a new volume, once:
    setting the cursor where it already is (the GUI echoes a scrolled view's cursor back to it) emits nothing.
    """

    def __init__(self, renderer: vtkRenderer, orientation: str):
        self.renderer = renderer
        self.orientation = orientation
        self.volume: Volume | None = None
        self.axes: ViewAxes | None = None
        self.k = 0
        self.cursor = np.zeros(3)
        self.slice_changed = Event()
        self._drawn = False  # whether the layers show the current volume, slice and cursor
        renderer.GetActiveCamera().ParallelProjectionOn()

    def set_volume(self, vol: Volume) -> None:
        """Show ``vol`` (no event: the caller moves the cursor next)."""
        self.volume = vol
        self.axes = view_axes(vol, self.orientation)
        self._drawn = False

    # ------------------------------------------------------------------ slice and cursor
    @property
    def plane_spacing(self) -> tuple[float, float]:
        """(right, up) pixel size in mm of the displayed slice."""
        sp = self.volume.spacing
        return sp[self.axes.right_axis], sp[self.axes.up_axis]

    @property
    def plane_size(self) -> tuple[int, int]:
        """(cols, rows) of the displayed slice."""
        return self.volume.size[self.axes.right_axis], self.volume.size[self.axes.up_axis]

    @property
    def n_slices(self) -> int:
        """Slices along the view's normal (0 without a volume)."""
        return self.volume.size[self.axes.slice_axis] if self.volume is not None else 0

    def plane_of(self, world_xyz) -> tuple[float, float, float]:
        """Continuous (col, row, k) of a world point in this view's slices."""
        return self.axes.index_to_plane(self.volume.world_to_index(world_xyz), self.volume.size)

    def world_of(self, col: float, row: float, k: float) -> np.ndarray:
        """World LPS point of continuous (col, row) on slice ``k``."""
        return self.volume.index_to_world(self.axes.plane_to_index(col, row, k, self.volume.size))

    def scene_of(self, world_xyz) -> tuple[float, float]:
        """Scene (u, v) mm of a world point projected on this view."""
        col, row, _ = self.plane_of(world_xyz)
        su, sv = self.plane_spacing
        return col * su, row * sv

    def set_cursor(self, world_xyz) -> None:
        """Move the slice through ``world_xyz`` and the cursor there."""
        cursor = np.asarray(world_xyz, float).copy()
        if self._drawn and np.array_equal(cursor, self.cursor):
            return
        self.cursor = cursor
        _, _, k = self.plane_of(self.cursor)
        self.k = int(np.clip(np.rint(k), 0, self.n_slices - 1))
        self._emit()

    def set_slice_index(self, k: int) -> None:
        """Show slice ``k`` (clamped); the cursor moves along the normal."""
        k = int(np.clip(k, 0, self.n_slices - 1))
        col, row, _ = self.plane_of(self.cursor)
        self.cursor = self.world_of(col, row, k)
        self.k = k
        self._emit()

    def _emit(self) -> None:
        self._drawn = True
        self.slice_changed.emit()

    @property
    def slice_position_mm(self) -> float:
        """Position of the shown slice along the view's world axis: the world mm of that slice's voxel
        centres under the cursor (not the cursor itself, which may lie between two slices)."""
        col, row, _ = self.plane_of(self.cursor)
        return float(self.world_of(col, row, self.k)[NORMAL_WORLD_AXIS[self.orientation]])

    def plane(self, array: np.ndarray, cache: XMajorCache | None = None) -> np.ndarray:
        """The current slice of ``array`` (on the volume's grid) on screen (rows up, cols right), read from
        the x-major copy in ``cache`` when it is current. A colour (z, y, x, 3) array gives (rows, cols, 3)."""
        if array.ndim == 4:
            return np.stack([self.axes.extract(array[..., c], self.k) for c in range(array.shape[3])], axis=-1)
        slab = None if cache is None else cache.slab(array, self.k)
        return self.axes.extract(array, self.k) if slab is None else self.axes.extract(slab, 0)

    def plane_to_index_matrix(self) -> np.ndarray:
        """4x4 homogeneous map from (col, row, 0, 1) of the current slice to continuous index (x, y, z, 1)."""
        size = self.volume.size
        origin = self.axes.plane_to_index(0.0, 0.0, self.k, size)
        m = np.eye(4)
        m[:3, 0] = self.axes.plane_to_index(1.0, 0.0, self.k, size) - origin
        m[:3, 1] = self.axes.plane_to_index(0.0, 1.0, self.k, size) - origin
        m[:3, 2] = 0.0
        m[:3, 3] = origin
        return m

    def plane_to_world_matrix(self) -> np.ndarray:
        """4x4 homogeneous map from (col, row, 0, 1) of the current slice to world LPS mm."""
        return self.volume.index_to_world_matrix @ self.plane_to_index_matrix()

    # ------------------------------------------------------------------ camera
    def reset_camera(self) -> None:
        """Fit the whole slice in the view, physically proportioned."""
        su, sv = self.plane_spacing
        cols, rows = self.plane_size
        cx, cy = (cols - 1) * su / 2, (rows - 1) * sv / 2
        cam = self.renderer.GetActiveCamera()
        cam.SetFocalPoint(cx, cy, 0)
        cam.SetPosition(cx, cy, 1000)
        cam.SetViewUp(0, 1, 0)
        w, h = self.renderer.GetSize() if self.renderer.GetRenderWindow() else (1, 1)
        aspect = (w / h) if h else 1.0
        half_h, half_w = rows * sv / 2, cols * su / 2
        cam.SetParallelScale(max(half_h, half_w / max(aspect, 1e-6)) * 1.02)
        self.renderer.ResetCameraClippingRange()

    def zoom(self, factor: float) -> None:
        """Zoom in by ``factor`` (> 1 enlarges)."""
        cam = self.renderer.GetActiveCamera()
        cam.SetParallelScale(cam.GetParallelScale() / factor)

    def pan(self, dx_px: float, dy_px: float) -> None:
        """Move the image by (dx, dy) display pixels."""
        cam = self.renderer.GetActiveCamera()
        h = self.renderer.GetSize()[1] or 1
        mm_per_px = 2 * cam.GetParallelScale() / h
        fx, fy, fz = cam.GetFocalPoint()
        px, py, pz = cam.GetPosition()
        dx, dy = -dx_px * mm_per_px, -dy_px * mm_per_px
        cam.SetFocalPoint(fx + dx, fy + dy, fz)
        cam.SetPosition(px + dx, py + dy, pz)

    def display_to_world(self, x_px: float, y_px: float) -> np.ndarray | None:
        """World LPS point on the current slice under display pixel (x, y) (origin bottom-left)."""
        if self.volume is None:
            return None
        coord = vtkCoordinate()
        coord.SetCoordinateSystemToDisplay()
        coord.SetValue(x_px, y_px, 0)
        u, v, _ = coord.GetComputedWorldValue(self.renderer)
        su, sv = self.plane_spacing
        return self.world_of(u / su, v / sv, self.k)

    def world_to_display(self, world_xyz) -> tuple[float, float]:
        """Display pixel (x, y) (origin bottom-left) of a world point projected on this view."""
        coord = vtkCoordinate()
        coord.SetCoordinateSystemToWorld()
        coord.SetValue(*self.scene_of(world_xyz), 0)
        x, y = coord.GetComputedDoubleDisplayValue(self.renderer)
        return float(x), float(y)
