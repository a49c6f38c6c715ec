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
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkPoints, vtkUnsignedCharArray
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

from viewer.core.labels import LABEL_SOURCE_META
from viewer.core.presets import auto_window_level, default_colormap
from viewer.core.resample import resample_to
from viewer.core.slicing import ViewAxes, orientation_letters, view_axes
from viewer.core.volume import Volume
from viewer.render.colormaps import image_lut, label_color
from viewer.render.polylines import polyline_actor, set_polyline_points
from viewer.render.render_window import disable_multisampling
from viewer.render.slice_cache import XMajorCache

CROSSHAIR_COLOR = (0.2, 0.9, 0.2)
LETTER_COLOR = (1.0, 0.85, 0.2)
LETTER_BACKGROUND_OPACITY = 0.55
#: Pixels between the view's bottom edge and the bottom orientation letter: clear of the corner text.
BOTTOM_LETTER_OFFSET_PX = 24
#: Orientation letters at the middle of each edge, a few pixels in, the bottom one above the corner text:
#: side -> (normalized viewport anchor, pixel offset, horizontal and vertical justification).
_LETTER_PLACES = {"left": ((0, 0.5), (4, 0), "Left", "Centered"),
                  "right": ((1, 0.5), (-4, 0), "Right", "Centered"),
                  "top": ((0.5, 1), (0, -4), "Centered", "Top"),
                  "bottom": ((0.5, 0), (0, BOTTOM_LETTER_OFFSET_PX), "Centered", "Bottom")}
DEFAULT_LABEL_OPACITY = 0.4
#: Seconds without voxel changes (progressive loading, label edits) before an x-major copy is rebuilt.
SLICE_CACHE_DELAY_S = 0.5
BRUSH_COLOR = (1.0, 1.0, 0.3)
BRUSH_OUTLINE_POINTS = 48
#: Colour maps for float heat maps (Grad-CAM, uncertainty).
HEAT_COLORMAPS = ("hot", "jet")
#: Agreement overlay colours (RGB 0-255) by ai.compare code: 1 both, 2 only A, 3 only B.
AGREEMENT_COLORS = {1: (40, 200, 60), 2: (255, 120, 0), 3: (40, 120, 255)}
AGREEMENT_OPACITY = 0.5
ROI_COLOR = (0, 220, 220)
#: Depth of each layer above the image (camera looks down -z): later layers draw on top.
_Z_HEAT, _Z_LABELS, _Z_AGREEMENT, _Z_BOXES, _Z_CROSS = 0.05, 0.1, 0.12, 0.15, 0.2


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


def heat_table(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB colour table of a heat colour map: 'hot' (black-red-yellow-white) or 'jet'."""
    if name not in HEAT_COLORMAPS:
        raise ValueError(f"unknown heat colour map {name!r}; known: {', '.join(HEAT_COLORMAPS)}")
    if name == "hot":
        return vtk_to_numpy(image_lut("hot", n).GetTable())[:, :3].astype(np.uint8)  # RGBA 0-255 table
    t = np.linspace(0, 1, n)  # jet: blue -> cyan -> yellow -> red
    rgb = np.clip(np.stack([1.5 - np.abs(4 * t - 3), 1.5 - np.abs(4 * t - 2), 1.5 - np.abs(4 * t - 1)], 1), 0, 1)
    return np.rint(rgb * 255).astype(np.uint8)


def label_tables(colors: dict[int, tuple[int, int, int]], max_label: int, opacity: float | dict[int, float],
                 hidden=()) -> tuple[np.ndarray, np.ndarray]:
    """Packed RGBA (uint32) per label id for area pixels (``opacity``: one for all, or per label id with
    DEFAULT_LABEL_OPACITY for the others) and for outline pixels (opaque); id 0 and ``hidden`` ids
    transparent; ids missing from ``colors`` get the default palette."""
    n = max(max_label + 1, 2)
    fill = np.zeros((n, 4), np.uint8)
    per_label = opacity if isinstance(opacity, dict) else {}
    default = DEFAULT_LABEL_OPACITY if isinstance(opacity, dict) else float(opacity)
    for lab in range(1, n):
        fill[lab, :3] = colors.get(lab) or label_color(lab)
        fill[lab, 3] = round(255 * float(np.clip(per_label.get(lab, default), 0.0, 1.0)))
    edge = fill.copy()
    edge[1:, 3] = 255
    hidden = [h for h in hidden if h < n]
    fill[hidden, 3] = edge[hidden, 3] = 0
    return fill.view(np.uint32).ravel(), edge.view(np.uint32).ravel()


def colour_labels(lab: np.ndarray, fill32: np.ndarray, edge32: np.ndarray, outline: bool) -> np.ndarray:
    """RGBA (rows, cols, 4) uint8 of a label slice: areas from ``fill32``, boundary pixels from ``edge32``."""
    rgba = fill32.take(lab)
    if outline:
        edge = np.zeros(lab.shape, bool)
        vertical = lab[1:, :] != lab[:-1, :]
        horizontal = lab[:, 1:] != lab[:, :-1]
        edge[1:, :] |= vertical
        edge[:-1, :] |= vertical
        edge[:, 1:] |= horizontal
        edge[:, :-1] |= horizontal
        rgba[edge] = edge32.take(lab[edge])
    return rgba.view(np.uint8).reshape(*lab.shape, 4)


def _rgba_slice(z: float) -> vtkImageSlice:
    """A hidden RGBA image layer at depth ``z`` above the image (colours used as they are)."""
    layer = vtkImageSlice()
    layer.SetMapper(vtkImageSliceMapper())
    prop = layer.GetProperty()
    prop.SetInterpolationTypeToNearest()
    prop.SetColorWindow(255)
    prop.SetColorLevel(127.5)
    layer.SetPosition(0, 0, z)
    layer.VisibilityOff()
    return layer


class BoxLayer:
    """Outlines where a view's current slice cuts world boxes (detections, the box ROI), as 2D rectangles.

    A box is ``(lo_xyz, hi_xyz, rgb)`` in world LPS mm (a detection's box spans its voxels' outer edges).
    On oblique images the drawn rectangle is the box's extent in the view's index plane.
    """

    def __init__(self, renderer: vtkRenderer, line_width: float = 2.0):
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
        renderer.AddViewProp(self.actor)

    def set_boxes(self, boxes) -> None:
        """Replace the boxes: an iterable of (lo_xyz, hi_xyz, rgb 0-255)."""
        self.boxes = [(np.asarray(lo, float), np.asarray(hi, float), tuple(int(c) for c in rgb))
                      for lo, hi, rgb in boxes]

    def rectangles(self, view: SliceView) -> list[tuple[float, float, float, float, tuple[int, int, int]]]:
        """(u0, v0, u1, v1, rgb) in the view's scene mm for each box the current slice cuts."""
        vol, axes = view.volume, view.axes
        su, sv = view.plane_spacing
        out = []
        for lo, hi, rgb in self.boxes:
            corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            plane = np.array([axes.index_to_plane(ijk, vol.size) for ijk in vol.world_to_index(corners)])
            (c0, r0, k0), (c1, r1, k1) = plane.min(axis=0), plane.max(axis=0)
            if k0 - 1e-6 <= view.slice_index <= k1 + 1e-6:
                out.append((c0 * su, r0 * sv, c1 * su, r1 * sv, rgb))
        return out

    def update(self, view: SliceView) -> None:
        """Redraw the rectangles for ``view``'s current slice."""
        rects = self.rectangles(view) if view.volume is not None else []
        if not rects:
            self.actor.VisibilityOff()
            return
        points, lines = vtkPoints(), vtkCellArray()
        colours = vtkUnsignedCharArray()
        colours.SetNumberOfComponents(3)
        for u0, v0, u1, v1, rgb in rects:
            first = points.GetNumberOfPoints()
            for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
                points.InsertNextPoint(u, v, _Z_BOXES)
            lines.InsertNextCell(5)
            for i in (0, 1, 2, 3, 0):
                lines.InsertCellPoint(first + i)
            colours.InsertNextTuple3(*rgb)
        self.poly.SetPoints(points)
        self.poly.SetLines(lines)
        self.poly.GetCellData().SetScalars(colours)
        self.poly.Modified()
        self.actor.VisibilityOn()


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
        self._label_source = None  # the Segmentation whose array _labels is, followed for edited boxes
        self._hidden_labels: set[int] = set()
        self._label_colors: dict[int, tuple[int, int, int]] = {}
        self._fill32 = self._edge32 = np.zeros(2, np.uint32)
        self._label_opacity: float | dict[int, float] = DEFAULT_LABEL_OPACITY
        self._outline = True
        # x-major copies of the image and labels, for views whose slice axis is x (see slice_cache)
        self._image_cache, self._label_cache = XMajorCache(), XMajorCache()
        self._image = vtkImageSlice()
        self._image.SetMapper(vtkImageSliceMapper())
        self._image.GetProperty().SetInterpolationTypeToNearest()
        self._image.VisibilityOff()
        self._overlay = _rgba_slice(_Z_LABELS)
        self._heat: np.ndarray | None = None  # float heat map on this grid
        self._heat_range = (0.0, 1.0)
        self._heat_floor = 0.1
        self._heat_opacity = 0.6
        self._heat_visible = True
        self._heat_colormap = "jet"
        self._heat_layer = _rgba_slice(_Z_HEAT)
        self._heat32 = np.zeros(256, np.uint32)
        self._agreement: np.ndarray | None = None
        self._agreement_tables = label_tables(AGREEMENT_COLORS, 3, AGREEMENT_OPACITY)
        self._agreement_layer = _rgba_slice(_Z_AGREEMENT)
        self.detection_boxes = BoxLayer(renderer)
        self.roi_box = BoxLayer(renderer, line_width=1.5)
        self._cross = polyline_actor(np.zeros((4, 2)), _Z_CROSS, CROSSHAIR_COLOR, segments=True)
        self._cross.VisibilityOff()
        self._brush = polyline_actor(np.zeros((BRUSH_OUTLINE_POINTS + 1, 2)), _Z_CROSS, BRUSH_COLOR)
        self._brush.VisibilityOff()
        self.corner = vtkCornerAnnotation()
        self.corner.SetMaximumFontSize(14)
        self.corner.GetTextProperty().SetColor(0.9, 0.9, 0.6)
        self.corner.GetTextProperty().ShadowOn()  # readable on white (PET inverse grey) too
        self._letters = {side: self._make_letter(side) for side in _LETTER_PLACES}
        for prop in (self._image, self._heat_layer, self._overlay, self._agreement_layer, self._cross, self._brush,
                     self.corner,
                     *self._letters.values()):
            renderer.AddViewProp(prop)
        renderer.SetBackground(0, 0, 0)
        disable_multisampling(renderer)
        camera = renderer.GetActiveCamera()
        camera.ParallelProjectionOn()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _make_letter(side: str) -> vtkTextActor:
        """The orientation letter of screen edge ``side`` (placed per ``_LETTER_PLACES``; its text comes with
        the first volume): yellow on a translucent dark box, readable on black and on white (PET inverse grey)
        images alike."""
        anchor, offset, horizontal, vertical = _LETTER_PLACES[side]
        actor = vtkTextActor()
        text = actor.GetTextProperty()
        text.SetFontSize(16)
        text.SetColor(*LETTER_COLOR)
        text.BoldOn()
        text.SetBackgroundColor(0.0, 0.0, 0.0)
        text.SetBackgroundOpacity(LETTER_BACKGROUND_OPACITY)
        text.SetFrame(False)
        getattr(text, f"SetJustificationTo{horizontal}")()
        getattr(text, f"SetVerticalJustificationTo{vertical}")()
        reference = vtkCoordinate()
        reference.SetCoordinateSystemToNormalizedViewport()
        reference.SetValue(*anchor, 0)
        position = actor.GetPositionCoordinate()
        position.SetCoordinateSystemToViewport()
        position.SetReferenceCoordinate(reference)
        position.SetValue(*offset, 0)
        return actor

    def set_volume(self, vol: Volume) -> None:
        """Show ``vol``; resets W/L to its default, the cursor to its centre and the camera."""
        self.volume = vol
        self.axes = view_axes(vol, self.orientation)
        self._label_cache.invalidate(None)
        self._cache_voxels(self._image_cache, vol.array)
        disable_multisampling(self.renderer)
        self._image.VisibilityOn()
        self._labels = self._heat = self._agreement = None
        for layer in (self._overlay, self._heat_layer, self._agreement_layer):
            layer.VisibilityOff()
        for boxes in (self.detection_boxes, self.roi_box):
            boxes.set_boxes([])
        self.set_brush_outline(None)
        self.set_colormap(default_colormap(vol))
        w, level = auto_window_level(vol)
        self.set_window_level(w, level)
        centre = vol.index_to_world((np.asarray(vol.size) - 1) / 2.0)
        self.set_cursor(centre)
        for side, letter in orientation_letters(self.orientation).items():
            self._letters[side].SetInput(letter)
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
        """Position of the shown slice along the view's world axis: the world mm of that slice's voxel
        centres under the cursor (not the cursor itself, which may lie between two slices)."""
        vol = self.volume
        col, row, _ = self.axes.index_to_plane(vol.world_to_index(self._cursor), vol.size)
        centre = vol.index_to_world(self.axes.plane_to_index(col, row, self._k, vol.size))
        return float(centre[{"axial": 2, "coronal": 1, "sagittal": 0}[self.orientation]])

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

    def set_labels(self, labels: Volume | np.ndarray | None, colors: dict | None = None,
                   opacity: float | dict[int, float] = DEFAULT_LABEL_OPACITY, outline: bool = True) -> None:
        """Overlay a label map (a Volume on any grid, resampled by world geometry; or an array on this grid).

        ``colors`` maps label id -> (r, g, b) 0-255 (default palette otherwise); areas are drawn with
        ``opacity`` (one value, or {label id: value}) and, with ``outline``, their boundary pixels opaque.
        The array is kept by reference: call ``update_labels`` after editing it in place.
        """
        self._follow_label_source(None)
        if labels is None:
            self._labels = None
            self._label_cache.invalidate(None)
            self._overlay.VisibilityOff()
            return
        source = labels.meta.get(LABEL_SOURCE_META) if isinstance(labels, Volume) else None
        if isinstance(labels, Volume):
            labels = resample_to(labels, self.volume, nearest=True).array
        if labels.shape != self.volume.array.shape:
            raise ValueError(f"label array shape {labels.shape} differs from the image {self.volume.array.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            labels = np.rint(labels).astype(np.int32)
        if labels.size and labels.min() < 0:
            raise ValueError("label maps hold non-negative ids; this one has negative values")
        self._labels = labels
        self._follow_label_source(source)
        self._cache_voxels(self._label_cache, labels, delay_s=0.0)
        self._label_colors = dict(colors or {})
        self._label_opacity = dict(opacity) if isinstance(opacity, dict) else float(opacity)
        self._outline = outline
        self._build_label_tables(int(labels.max()) if labels.size else 0)
        self._overlay.VisibilityOn()
        self._update_slice()

    def _build_label_tables(self, max_label: int) -> None:
        """Packed RGBA (uint32) per label id for area pixels and for outline pixels; id 0 transparent."""
        self._fill32, self._edge32 = label_tables(self._label_colors, max_label, self._label_opacity,
                                                  self._hidden_labels)

    def set_label_visible(self, label: int, visible: bool) -> None:
        """Show or hide one label id of the overlay."""
        (self._hidden_labels.discard if visible else self._hidden_labels.add)(int(label))
        if self._labels is not None:
            self._build_label_tables(max(int(self._labels.max()), int(label)))
            self._update_slice()

    def update_labels(self, region: tuple[slice, slice, slice] | None = None) -> None:
        """Redraw the overlay after the label array changed in place inside ``region`` (z, y, x slices).

        ``region`` None: anywhere, so the x-major copy is rebuilt, unless the labels are a Segmentation's
        shown on its own grid, whose ``changed`` events have already patched the edited boxes into it.
        """
        if self._labels is None:
            return
        if region is not None:
            self._label_cache.update(self._labels, region, SLICE_CACHE_DELAY_S)
        elif not self._follows_label_edits:
            self._cache_voxels(self._label_cache, self._labels)
        self._update_slice()

    def _follow_label_source(self, source) -> None:
        """Take the edited boxes of Segmentation ``source`` (None: of none) from its ``changed`` event."""
        if self._label_source is not None:
            self._label_source.changed.disconnect(self._on_label_source_changed)
        self._label_source = source
        if source is not None:
            source.changed.connect(self._on_label_source_changed)

    @property
    def _follows_label_edits(self) -> bool:
        """Whether the shown label array is the followed Segmentation's (not resampled, not replaced)."""
        return self._label_source is not None and self._label_source.array is self._labels

    def _on_label_source_changed(self, box: tuple[slice, slice, slice]) -> None:
        """The followed Segmentation changed inside ``box``: patch the x-major copy (redrawn by update_labels)."""
        if self._follows_label_edits:
            self._label_cache.update(self._labels, box, SLICE_CACHE_DELAY_S)

    # ------------------------------------------------------------------ x-major slice copies
    def _cache_voxels(self, cache: XMajorCache, array: np.ndarray, delay_s: float = SLICE_CACHE_DELAY_S) -> None:
        """(Re)build ``cache`` from ``array`` in the background if this view slices along x (else drop it)."""
        cache.invalidate(array if self.axes.slice_axis == 0 else None, delay_s)

    def voxels_changed(self) -> None:
        """The image's voxels changed in place (slices of a progressive load landed): redraw; the x-major
        copy is rebuilt once they stop changing."""
        if self.volume is not None:
            self._cache_voxels(self._image_cache, self.volume.array)
            self._update_slice()

    def wait_for_slice_caches(self) -> bool:
        """Block until the background x-major copies are built; True if this view reads slices from them."""
        for cache in (self._image_cache, self._label_cache):
            cache.wait()
        return self._image_cache.ready

    def _plane(self, array: np.ndarray, cache: XMajorCache) -> np.ndarray:
        """Slice ``k`` of ``array`` on screen (rows up, cols right), from the x-major copy when it is current."""
        slab = cache.slab(array, self._k)
        return self.axes.extract(array, self._k) if slab is None else self.axes.extract(slab, 0)

    # ------------------------------------------------------------------ AI result layers
    def _on_this_grid(self, data: Volume | np.ndarray, nearest: bool) -> np.ndarray:
        """``data`` as an array on this view's grid (a Volume on any grid is resampled by world geometry)."""
        if isinstance(data, Volume):
            data = resample_to(data, self.volume, nearest=nearest, default=0).array
        if data.shape != self.volume.array.shape:
            raise ValueError(f"overlay shape {data.shape} differs from the image {self.volume.array.shape}")
        return data

    def set_heatmap(self, heat: Volume | np.ndarray | None, *, colormap: str = "jet", opacity: float = 0.6,
                    floor: float = 0.1, value_range: tuple[float, float] | None = None) -> None:
        """Overlay a float map (Grad-CAM, uncertainty) as colours: ``value_range`` (default: 0 to the map's
        maximum) spans ``colormap``; values below ``floor`` (a fraction of that range) stay transparent; the
        rest is blended with an alpha rising with the value up to ``opacity`` at the top of the range, so
        low values tint the image lightly. A Volume on any grid is resampled (linear) by world geometry."""
        if heat is None:
            self._heat = None
            self._heat_layer.VisibilityOff()
            return
        heat = self._on_this_grid(heat, nearest=False).astype(np.float32, copy=False)
        if value_range is None:
            value_range = (0.0, float(heat.max()) if heat.size else 1.0)
        lo, hi = float(value_range[0]), float(value_range[1])
        self._heat = heat
        self._heat_range = (lo, hi if hi > lo else lo + 1e-6)
        self._heat_floor = float(floor)
        self.set_heatmap_style(colormap=colormap, opacity=opacity)

    def set_heatmap_style(self, *, colormap: str | None = None, opacity: float | None = None,
                          visible: bool | None = None) -> None:
        """Change the heat map's colour map, opacity (0-1) or visibility without recomputing it."""
        if colormap is not None:
            heat_table(colormap, 2)  # validates the name
            self._heat_colormap = colormap
        if opacity is not None:
            self._heat_opacity = float(np.clip(opacity, 0.0, 1.0))
        if visible is not None:
            self._heat_visible = bool(visible)
        rgba = np.empty((256, 4), np.uint8)
        rgba[:, :3] = heat_table(self._heat_colormap, 256)
        rgba[:, 3] = np.rint(np.linspace(0, 255 * self._heat_opacity, 256))  # stronger where the value is high
        self._heat32 = rgba.view(np.uint32).ravel()
        if self.volume is not None:
            self._update_heat_layer()

    @property
    def heatmap_style(self) -> dict:
        """{'colormap', 'opacity', 'visible', 'floor', 'range'} of the heat-map layer."""
        return {"colormap": self._heat_colormap, "opacity": self._heat_opacity, "visible": self._heat_visible,
                "floor": self._heat_floor, "range": self._heat_range}

    def _update_heat_layer(self) -> None:
        if self._heat is None or not self._heat_visible or self._heat_opacity <= 0:
            self._heat_layer.VisibilityOff()
            return
        lo, hi = self._heat_range
        t = (self.axes.extract(self._heat, self._k) - lo) / (hi - lo)
        shown = t >= self._heat_floor
        if not shown.any():
            self._heat_layer.VisibilityOff()
            return
        rgba = self._heat32.take(np.clip(t * 255, 0, 255).astype(np.uint8))
        rgba[~shown] = 0
        self._heat_layer.GetMapper().SetInputData(
            _image_data(rgba.view(np.uint8).reshape(*t.shape, 4), self.plane_spacing, 4))
        self._heat_layer.VisibilityOn()

    def set_agreement(self, amap: Volume | np.ndarray | None) -> None:
        """Overlay an ai.compare agreement map: both (green), only A (orange), only B (blue); None removes it."""
        self._agreement = None if amap is None else self._on_this_grid(amap, nearest=True).astype(np.uint8, copy=False)
        self._update_agreement_layer()

    def _update_agreement_layer(self) -> None:
        lab = None if self._agreement is None else self.axes.extract(self._agreement, self._k)
        if lab is None or not lab.any():
            self._agreement_layer.VisibilityOff()
            return
        rgba = colour_labels(lab, *self._agreement_tables, outline=False)
        self._agreement_layer.GetMapper().SetInputData(_image_data(rgba, self.plane_spacing, 4))
        self._agreement_layer.VisibilityOn()

    def set_detections(self, detections: list[dict]) -> None:
        """Box outlines for ai.detection detections ({'label', 'box_mm': [lo, hi], ...}) where the slice cuts them."""
        self.detection_boxes.set_boxes((d["box_mm"][0], d["box_mm"][1], label_color(int(d["label"])))
                                       for d in detections)
        if self.volume is not None:
            self.detection_boxes.update(self)

    def set_roi(self, box) -> None:
        """Outline the box ROI ((x0, y0, z0), (x1, y1, z1)) world mm where the slice cuts it; None removes it."""
        self.roi_box.set_boxes([] if box is None else [(box[0], box[1], ROI_COLOR)])
        if self.volume is not None:
            self.roi_box.update(self)

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
        plane = self._plane(self.volume.array, self._image_cache)
        self._image.GetMapper().SetInputData(_image_data(plane, self.plane_spacing))
        if self._labels is not None:
            self._update_overlay(self._plane(self._labels, self._label_cache))
        self._update_heat_layer()
        self._update_agreement_layer()
        self.detection_boxes.update(self)
        self.roi_box.update(self)
        self._update_corner()

    def _update_overlay(self, lab: np.ndarray) -> None:
        """Colour the label slice ``lab`` (rows up, cols right) and upload it; hidden when it is empty."""
        if not lab.any():
            self._overlay.VisibilityOff()
            return
        if int(lab.max()) >= len(self._fill32):  # an id added since set_labels (in-place edit)
            self._build_label_tables(int(lab.max()))
        rgba = colour_labels(lab, self._fill32, self._edge32, self._outline)
        self._overlay.GetMapper().SetInputData(_image_data(rgba, self.plane_spacing, 4))
        self._overlay.VisibilityOn()

    def _update_crosshair(self, col: float, row: float) -> None:
        su, sv = self.plane_spacing
        cols, rows = self.volume.size[self.axes.right_axis], self.volume.size[self.axes.up_axis]
        u, v = col * su, row * sv
        pts = ((-0.5 * su, v), ((cols - 0.5) * su, v), (u, -0.5 * sv), (u, (rows - 0.5) * sv))
        set_polyline_points(self._cross, pts, _Z_CROSS)
        self._cross.VisibilityOn()

    def set_crosshair_visible(self, visible: bool) -> None:
        self._cross.SetVisibility(bool(visible))

    # ------------------------------------------------------------------ brush outline
    def set_brush_outline(self, world_xyz, radius_mm: float = 0.0) -> None:
        """Outline of a brush of ``radius_mm`` centred on ``world_xyz`` (its cut with this slice; a sphere
        and a disc brush cut it alike at their centre); ``None`` hides it."""
        if world_xyz is None or self.volume is None:
            self._brush.VisibilityOff()
            return
        col, row, _ = self.axes.index_to_plane(self.volume.world_to_index(world_xyz), self.volume.size)
        su, sv = self.plane_spacing
        t = np.linspace(0, 2 * np.pi, BRUSH_OUTLINE_POINTS + 1)  # closed: the last point is the first
        set_polyline_points(self._brush, np.column_stack([col * su + radius_mm * np.cos(t),
                                                          row * sv + radius_mm * np.sin(t)]), _Z_CROSS)
        self._brush.VisibilityOn()

    # ------------------------------------------------------------------ text
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
