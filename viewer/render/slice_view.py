"""One MPR view (axial, coronal or sagittal) of a Volume in a vtkRenderer: image, label overlay, crosshair.

The displayed slice is extracted with numpy in the radiological orientation (viewer.core.slicing) and
uploaded as a small 2D vtkImageData, so a slice change costs one slice copy, whatever the volume size.
The 2D scene is in millimetres: scene (u, v) = (col * right spacing, row * up spacing).
"""

from __future__ import annotations

import numpy as np
import vtkmodules.vtkInteractionStyle  # noqa: F401
import vtkmodules.vtkRenderingFreeType  # noqa: F401  (text rendering)
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL backend)
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
from vtkmodules.vtkRenderingAnnotation import vtkCornerAnnotation
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkCoordinate,
    vtkImageSlice,
    vtkImageSliceMapper,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkTextActor,
)

from viewer.core.presets import auto_window_level, default_colormap
from viewer.core.resample import resample_to
from viewer.core.slicing import ViewAxes, orientation_letters, view_axes
from viewer.core.volume import Volume
from viewer.render.colormaps import image_lut, label_color
from viewer.render.render_window import disable_multisampling

CROSSHAIR_COLOR = (0.2, 0.9, 0.2)


def _image_data(plane: np.ndarray, spacing: tuple[float, float], components: int = 1) -> vtkImageData:
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


class SliceView:
    """An MPR view: ``SliceView(renderer, 'axial' | 'coronal' | 'sagittal')``."""

    def __init__(self, renderer: vtkRenderer, orientation: str):
        self.renderer = renderer
        self.orientation = orientation
        self.volume: Volume | None = None
        self.axes: ViewAxes | None = None
        self._k = 0
        self._cursor = np.zeros(3)
        self._window, self._level = 400.0, 40.0
        self._colormap = "gray"
        self._labels: np.ndarray | None = None
        self._hidden_labels: set[int] = set()
        self._label_colors: dict[int, tuple[int, int, int]] = {}
        self._fill32 = self._edge32 = np.zeros(2, np.uint32)
        self._label_opacity = 0.4
        self._outline = True
        self._image = vtkImageSlice()
        self._image.SetMapper(vtkImageSliceMapper())
        self._image.GetProperty().SetInterpolationTypeToNearest()
        self._image.VisibilityOff()
        self._overlay = vtkImageSlice()
        self._overlay.SetMapper(vtkImageSliceMapper())
        self._overlay.GetProperty().SetInterpolationTypeToNearest()
        self._overlay.SetPosition(0, 0, 0.1)
        self._overlay.VisibilityOff()
        self._cross = self._make_crosshair()
        self.corner = vtkCornerAnnotation()
        self.corner.SetMaximumFontSize(14)
        self.corner.GetTextProperty().SetColor(0.9, 0.9, 0.6)
        self._letters = {side: self._make_letter() for side in ("left", "right", "top", "bottom")}
        for prop in (self._image, self._overlay, self._cross, self.corner, *self._letters.values()):
            renderer.AddViewProp(prop)
        renderer.SetBackground(0, 0, 0)
        disable_multisampling(renderer)
        camera = renderer.GetActiveCamera()
        camera.ParallelProjectionOn()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _make_letter() -> vtkTextActor:
        actor = vtkTextActor()
        actor.GetTextProperty().SetFontSize(16)
        actor.GetTextProperty().SetColor(1.0, 0.85, 0.2)
        actor.GetTextProperty().BoldOn()
        actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        return actor

    def _make_crosshair(self) -> vtkActor:
        self._cross_points = vtkPoints()
        self._cross_points.SetNumberOfPoints(4)
        lines = vtkCellArray()
        for a, b in ((0, 1), (2, 3)):
            lines.InsertNextCell(2)
            lines.InsertCellPoint(a)
            lines.InsertCellPoint(b)
        poly = vtkPolyData()
        poly.SetPoints(self._cross_points)
        poly.SetLines(lines)
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(poly)
        self._cross_poly = poly
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(*CROSSHAIR_COLOR)  # opaque: a translucent line costs a render pass
        actor.VisibilityOff()
        return actor

    def set_volume(self, vol: Volume) -> None:
        """Show ``vol``; resets W/L to its default, the cursor to its centre and the camera."""
        self.volume = vol
        self.axes = view_axes(vol, self.orientation)
        disable_multisampling(self.renderer)
        self._image.VisibilityOn()
        self._labels = None
        self._overlay.VisibilityOff()
        self.set_colormap(default_colormap(vol))
        w, level = auto_window_level(vol)
        self.set_window_level(w, level)
        centre = vol.index_to_world((np.asarray(vol.size) - 1) / 2.0)
        self.set_cursor(centre)
        self._place_letters()
        self.reset_camera()

    @property
    def plane_spacing(self) -> tuple[float, float]:
        """(right, up) pixel size in mm of the displayed slice."""
        sp = self.volume.spacing
        return sp[self.axes.right_axis], sp[self.axes.up_axis]

    @property
    def n_slices(self) -> int:
        return self.volume.size[self.axes.slice_axis] if self.volume is not None else 0

    @property
    def slice_index(self) -> int:
        return self._k

    @property
    def slice_position_mm(self) -> float:
        """Position of the slice along the view's normal (world mm of the slice's centre)."""
        normal_world = {"axial": 2, "coronal": 1, "sagittal": 0}[self.orientation]
        return float(self._cursor[normal_world])

    @property
    def cursor(self) -> np.ndarray:
        return self._cursor.copy()

    @property
    def window_level(self) -> tuple[float, float]:
        return self._window, self._level

    # ------------------------------------------------------------------ display state
    def set_window_level(self, window: float, level: float) -> None:
        """Values ``level -/+ window/2`` span the colour map."""
        self._window, self._level = max(float(window), 1e-6), float(level)
        prop = self._image.GetProperty()
        prop.SetColorWindow(self._window)
        prop.SetColorLevel(self._level)
        if self.volume is not None:
            self._update_corner()

    def set_colormap(self, name: str) -> None:
        """'gray', 'gray_inverse' or 'hot'."""
        self._colormap = name
        prop = self._image.GetProperty()
        lut = image_lut(name)
        prop.SetLookupTable(lut)
        prop.SetUseLookupTableScalarRange(False)

    @property
    def colormap(self) -> str:
        return self._colormap

    def set_labels(self, labels: Volume | np.ndarray | None, colors: dict | None = None, opacity: float = 0.4,
                   outline: bool = True) -> None:
        """Overlay a label map (a Volume on any grid, resampled by world geometry; or an array on this grid).

        ``colors`` maps label id -> (r, g, b) 0-255 (default palette otherwise); areas are drawn with
        ``opacity`` and, with ``outline``, their boundary pixels opaque. The array is kept by reference:
        call ``update_labels`` after editing it in place.
        """
        if labels is None:
            self._labels = None
            self._overlay.VisibilityOff()
            return
        if isinstance(labels, Volume):
            labels = resample_to(labels, self.volume, nearest=True).array
        if labels.shape != self.volume.array.shape:
            raise ValueError(f"label array shape {labels.shape} differs from the image {self.volume.array.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            labels = np.rint(labels).astype(np.int32)
        if labels.size and labels.min() < 0:
            raise ValueError("label maps hold non-negative ids; this one has negative values")
        self._labels = labels
        self._label_colors = dict(colors or {})
        self._label_opacity = float(opacity)
        self._outline = outline
        self._build_label_tables(int(labels.max()) if labels.size else 0)
        self._overlay.VisibilityOn()
        self._update_slice()

    def _build_label_tables(self, max_label: int) -> None:
        """Packed RGBA (uint32) per label id for area pixels and for outline pixels; id 0 transparent."""
        n = max(max_label + 1, 2)
        fill = np.zeros((n, 4), np.uint8)
        for lab in range(1, n):
            fill[lab, :3] = self._label_colors.get(lab) or label_color(lab)
        edge = fill.copy()
        fill[1:, 3] = round(255 * self._label_opacity)
        edge[1:, 3] = 255
        hidden = [h for h in self._hidden_labels if h < n]
        fill[hidden, 3] = edge[hidden, 3] = 0
        self._fill32 = fill.view(np.uint32).ravel()
        self._edge32 = edge.view(np.uint32).ravel()

    def set_label_visible(self, label: int, visible: bool) -> None:
        """Show or hide one label id of the overlay."""
        (self._hidden_labels.discard if visible else self._hidden_labels.add)(int(label))
        if self._labels is not None:
            self._build_label_tables(max(int(self._labels.max()), int(label)))
            self._update_slice()

    def update_labels(self, region=None) -> None:
        """Redraw the overlay after the label array changed in place (``region`` is unused: one slice)."""
        if self._labels is not None:
            self._update_slice()

    def set_cursor(self, world_xyz) -> None:
        """Move the slice through ``world_xyz`` and draw the crosshair there."""
        vol = self.volume
        self._cursor = np.asarray(world_xyz, float).copy()
        col, row, k = self.axes.index_to_plane(vol.world_to_index(self._cursor), vol.size)
        self._k = int(np.clip(np.rint(k), 0, self.n_slices - 1))
        self._update_slice()
        self._update_crosshair(col, row)

    def set_slice_index(self, k: int) -> np.ndarray:
        """Show slice ``k`` (clamped); the cursor moves along the normal; returns the new cursor."""
        vol = self.volume
        k = int(np.clip(k, 0, self.n_slices - 1))
        col, row, _ = self.axes.index_to_plane(vol.world_to_index(self._cursor), vol.size)
        self._cursor = vol.index_to_world(self.axes.plane_to_index(col, row, k, vol.size))
        self._k = k
        self._update_slice()
        self._update_crosshair(col, row)
        return self.cursor

    def scroll(self, n: int) -> np.ndarray:
        """Move ``n`` slices (positive: towards higher index); returns the new cursor."""
        return self.set_slice_index(self._k + int(n))

    def _update_slice(self) -> None:
        if self.volume is None:
            return
        plane = self.axes.extract(self.volume.array, self._k)
        self._image.GetMapper().SetInputData(_image_data(plane, self.plane_spacing))
        if self._labels is not None:
            self._update_overlay(self.axes.extract(self._labels, self._k))
        self._update_corner()

    def _update_overlay(self, lab: np.ndarray) -> None:
        """Colour the label slice ``lab`` (rows up, cols right) and upload it; hidden when it is empty."""
        if not lab.any():
            self._overlay.VisibilityOff()
            return
        if int(lab.max()) >= len(self._fill32):  # an id added since set_labels (in-place edit)
            self._build_label_tables(int(lab.max()))
        rgba = self._fill32.take(lab)
        if self._outline:
            edge = np.zeros(lab.shape, bool)
            vertical = lab[1:, :] != lab[:-1, :]
            horizontal = lab[:, 1:] != lab[:, :-1]
            edge[1:, :] |= vertical
            edge[:-1, :] |= vertical
            edge[:, 1:] |= horizontal
            edge[:, :-1] |= horizontal
            rgba[edge] = self._edge32.take(lab[edge])
        self._overlay.GetMapper().SetInputData(_image_data(rgba.view(np.uint8).reshape(*lab.shape, 4),
                                                           self.plane_spacing, 4))
        prop = self._overlay.GetProperty()
        prop.SetColorWindow(255)
        prop.SetColorLevel(127.5)
        self._overlay.VisibilityOn()

    def _update_crosshair(self, col: float, row: float) -> None:
        su, sv = self.plane_spacing
        cols, rows = self.volume.size[self.axes.right_axis], self.volume.size[self.axes.up_axis]
        u, v = col * su, row * sv
        pts = ((-0.5 * su, v), ((cols - 0.5) * su, v), (u, -0.5 * sv), (u, (rows - 0.5) * sv))
        for i, (x, y) in enumerate(pts):
            self._cross_points.SetPoint(i, x, y, 0.2)
        self._cross_points.Modified()
        self._cross.VisibilityOn()

    def set_crosshair_visible(self, visible: bool) -> None:
        self._cross.SetVisibility(bool(visible))

    # ------------------------------------------------------------------ text
    def _place_letters(self) -> None:
        letters = orientation_letters(self.orientation)
        places = {"left": (0.01, 0.5), "right": (0.97, 0.5), "top": (0.49, 0.95), "bottom": (0.49, 0.02)}
        for side, actor in self._letters.items():
            actor.SetInput(letters[side])
            actor.SetPosition(*places[side])

    def orientation_labels(self) -> dict[str, str]:
        """Patient-direction letters on the left/right/top/bottom screen edges."""
        return orientation_letters(self.orientation)

    def _update_corner(self) -> None:
        w, level = self._window, self._level
        self.corner.SetText(0, f"{self.orientation}  {self._k + 1}/{self.n_slices}  {self.slice_position_mm:.1f} mm")
        self.corner.SetText(1, f"W {w:g}  L {level:g}")

    def set_probe_text(self, text: str) -> None:
        """Text in the upper-left corner (value under the mouse, world position)."""
        self.corner.SetText(2, text)

    def probe(self, world_xyz) -> str:
        """'<value> <units>  (x, y, z) mm' for the voxel at ``world_xyz`` (empty outside the volume)."""
        value = self.volume.value_at(world_xyz)
        if value is None:
            return ""
        x, y, z = world_xyz
        return f"{value:.6g} {self.volume.units}  ({x:.1f}, {y:.1f}, {z:.1f}) mm"

    # ------------------------------------------------------------------ camera and picking
    def reset_camera(self) -> None:
        """Fit the whole slice in the view, physically proportioned."""
        su, sv = self.plane_spacing
        cols, rows = self.volume.size[self.axes.right_axis], self.volume.size[self.axes.up_axis]
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
        ijk = self.axes.plane_to_index(u / su, v / sv, self._k, self.volume.size)
        return self.volume.index_to_world(ijk)

    def world_to_display(self, world_xyz) -> tuple[float, float]:
        """Display pixel (x, y) (origin bottom-left) of a world point projected on this view."""
        col, row, _ = self.axes.index_to_plane(self.volume.world_to_index(world_xyz), self.volume.size)
        su, sv = self.plane_spacing
        coord = vtkCoordinate()
        coord.SetCoordinateSystemToWorld()
        coord.SetValue(col * su, row * sv, 0)
        x, y = coord.GetComputedDoubleDisplayValue(self.renderer)
        return float(x), float(y)
