"""One MPR view (axial, coronal or sagittal) of a Volume in a vtkRenderer: a thin composition of layers.

A SliceGeometry holds the slice, the cursor and the camera; one layer per kind of content (image,
fused volume, heat map, labels, agreement map, boxes, crosshair, brush, orientation letters, corner
text; viewer.render.layers) owns its VTK props and redraws its part when the geometry's slice changes.
The displayed slice is extracted with numpy in the radiological orientation (viewer.core.slicing) and
uploaded as a small 2D image, so a slice change costs one slice per layer, whatever the volume size.
"""

from __future__ import annotations

import numpy as np
import vtkmodules.vtkInteractionStyle  # noqa: F401
import vtkmodules.vtkRenderingFreeType  # noqa: F401  (text rendering)
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL backend)
from vtkmodules.vtkRenderingCore import vtkRenderer

from viewer.core.presets import auto_window_level, default_colormap
from viewer.core.registration import Transform
from viewer.core.slicing import orientation_letters
from viewer.core.volume import Volume
from viewer.render.colormaps import label_color
from viewer.render.layers.agreement import AgreementLayer
from viewer.render.layers.annotations import CornerTextLayer, OrientationLayer
from viewer.render.layers.boxes import BoxLayer
from viewer.render.layers.fusion import FusionLayer, FusionStyle
from viewer.render.layers.heatmap import HeatmapLayer
from viewer.render.layers.image import ImageLayer
from viewer.render.layers.labels import DEFAULT_LABEL_OPACITY, LabelLayer
from viewer.render.layers.marks import BrushLayer, CrosshairLayer
from viewer.render.render_window import disable_multisampling, render_unlit
from viewer.render.slice_geometry import SliceGeometry
from viewer.render.synthetic_banner import SyntheticBanner

ROI_COLOR = (0, 220, 220)


class SliceView:
    """An MPR view: ``SliceView(renderer, 'axial' | 'coronal' | 'sagittal')``; layers are attributes
    (``image``, ``fusion``, ``heatmap``, ``labels``, ``agreement``, ``detection_boxes``, ``roi_box``,
    ``crosshair``, ``brush``, ``orientation_layer``, ``corner_text``), drawn in that order; ``synthetic_banner``
    says when the image or the fused overlay is synthetic."""

    def __init__(self, renderer: vtkRenderer, orientation: str):
        self.renderer = renderer
        self.orientation = orientation
        self.geometry = geo = SliceGeometry(renderer, orientation)
        self.image = ImageLayer(geo)
        self.fusion = FusionLayer(self.image)
        self.heatmap = HeatmapLayer(geo)
        self.labels = LabelLayer(self.image)
        self.agreement = AgreementLayer(geo)
        self.detection_boxes = BoxLayer(geo)
        self.roi_box = BoxLayer(geo, line_width=1.5)
        self.crosshair = CrosshairLayer(geo)
        self.brush = BrushLayer(geo)
        self.orientation_layer = OrientationLayer(geo)
        self.corner_text = CornerTextLayer(self.image)
        self.layers = (self.image, self.fusion, self.heatmap, self.labels, self.agreement, self.detection_boxes,
                       self.roi_box, self.crosshair, self.brush, self.orientation_layer, self.corner_text)
        for layer in self.layers:  # the image first: the fused layer's difference blend reads its plane
            layer.add_to(renderer)
            geo.slice_changed.connect(layer.update)
        self.corner = self.corner_text.corner
        self.synthetic_banner = SyntheticBanner(renderer, lambda: (self.volume, self.fusion.moving))
        renderer.SetBackground(0, 0, 0)
        disable_multisampling(renderer)
        render_unlit(renderer)

    # ------------------------------------------------------------------ volume and slice
    def set_volume(self, vol: Volume) -> None:
        """Show ``vol``; resets W/L to its default, the cursor to its centre, the camera, and drops overlays."""
        self.geometry.set_volume(vol)
        disable_multisampling(self.renderer)
        for layer in self.layers:
            layer.clear()
        self.image.show_volume(vol)
        self.image.set_colormap(default_colormap(vol))
        self.image.set_window_level(*auto_window_level(vol))
        self.set_cursor(vol.index_to_world((np.asarray(vol.size) - 1) / 2.0))
        self.reset_camera()

    @property
    def volume(self) -> Volume | None:
        return self.geometry.volume

    @property
    def axes(self):
        """The view's ViewAxes (index axes and flips), None before a volume."""
        return self.geometry.axes

    @property
    def plane_spacing(self) -> tuple[float, float]:
        """(right, up) pixel size in mm of the displayed slice."""
        return self.geometry.plane_spacing

    @property
    def n_slices(self) -> int:
        return self.geometry.n_slices

    @property
    def slice_index(self) -> int:
        return self.geometry.k

    @property
    def slice_position_mm(self) -> float:
        """World mm along the view's axis of the shown slice's voxel centres under the cursor."""
        return self.geometry.slice_position_mm

    @property
    def cursor(self) -> np.ndarray:
        return self.geometry.cursor.copy()

    def set_cursor(self, world_xyz) -> None:
        """Move the slice through ``world_xyz`` and draw the crosshair there."""
        self.geometry.set_cursor(world_xyz)

    def set_slice_index(self, k: int) -> np.ndarray:
        """Show slice ``k`` (clamped); the cursor moves along the normal; returns the new cursor."""
        self.geometry.set_slice_index(k)
        return self.cursor

    def scroll(self, n: int) -> np.ndarray:
        """Move ``n`` slices (positive: towards higher index); returns the new cursor."""
        return self.set_slice_index(self.geometry.k + int(n))

    def voxels_changed(self) -> None:
        """The image's voxels changed in place (slices of a progressive load landed): redraw; the x-major
        copy is rebuilt once they stop changing."""
        if self.volume is not None:
            self.image.cache_voxels(self.image.cache, self.volume.array)
            self.geometry.slice_changed.emit()

    def wait_for_slice_caches(self) -> bool:
        """Block until the background x-major copies are built; True if this view reads slices from them."""
        for cache in (self.image.cache, self.labels.cache):
            cache.wait()
        return self.image.cache.ready

    # ------------------------------------------------------------------ image display
    @property
    def window_level(self) -> tuple[float, float]:
        return self.image.window, self.image.level

    def set_window_level(self, window: float, level: float) -> None:
        """Values ``level -/+ window/2`` span the colour map (not applied to colour images)."""
        self.image.set_window_level(window, level)
        if self.volume is not None:
            self.image.update()  # the drawn part depends on the window's low end
            self.corner_text.update()
            if self.fusion.style.blend == "difference":
                self.fusion.update()

    def set_colormap(self, name: str) -> None:
        """'gray', 'gray_inverse' or 'hot'."""
        self.image.set_colormap(name)
        if self.volume is not None:
            self.image.update()

    @property
    def colormap(self) -> str:
        return self.image.colormap

    # ------------------------------------------------------------------ labels
    def set_labels(self, labels: Volume | np.ndarray | None, colors: dict | None = None,
                   opacity: float | dict[int, float] = DEFAULT_LABEL_OPACITY, outline: bool = True) -> None:
        """Overlay a label map; see ``LabelLayer.set_labels``."""
        self.labels.set_labels(labels, colors, opacity, outline)

    def set_label_visible(self, label: int, visible: bool) -> None:
        """Show or hide one label id of the overlay."""
        self.labels.set_label_visible(label, visible)

    def update_labels(self, region: tuple[slice, slice, slice] | None = None) -> None:
        """Redraw the overlay after the label array changed in place; see ``LabelLayer.update_labels``."""
        self.labels.update_labels(region)

    # ------------------------------------------------------------------ fused volume
    def set_fusion(self, moving: Volume | None, transform: Transform | np.ndarray | None = None,
                   style: FusionStyle | None = None, **changes) -> None:
        """Fuse ``moving`` over the image through ``transform`` (fixed -> moving: a registration Transform, a
        4x4 LPS matrix, or None for the same world frame); ``style`` and/or ``changes`` to its fields (e.g.
        ``colormap='inferno', opacity=0.6, threshold=2.5``) set how; None removes the overlay."""
        self.fusion.set_overlay(moving, transform, style)
        if moving is not None and changes:
            self.fusion.set_style(**changes)

    def set_fusion_style(self, **changes) -> None:
        """Change fields of the fused layer's FusionStyle (colormap, opacity, window, threshold, blend, ...)."""
        self.fusion.set_style(**changes)

    @property
    def fusion_style(self) -> FusionStyle:
        return self.fusion.style

    # ------------------------------------------------------------------ AI result layers
    def set_heatmap(self, heat: Volume | np.ndarray | None, *, colormap: str = "jet", opacity: float = 0.6,
                    floor: float = 0.1, value_range: tuple[float, float] | None = None) -> None:
        """Overlay a float map (Grad-CAM, uncertainty); see ``HeatmapLayer.set_heatmap``."""
        self.heatmap.set_heatmap(heat, colormap=colormap, opacity=opacity, floor=floor, value_range=value_range)

    def set_heatmap_style(self, *, colormap: str | None = None, opacity: float | None = None,
                          visible: bool | None = None) -> None:
        """Change the heat map's colour map, opacity (0-1) or visibility without recomputing it."""
        self.heatmap.set_style(colormap=colormap, opacity=opacity, visible=visible)

    @property
    def heatmap_style(self) -> dict:
        """{'colormap', 'opacity', 'visible', 'floor', 'range'} of the heat-map layer."""
        return self.heatmap.style

    def set_agreement(self, amap: Volume | np.ndarray | None) -> None:
        """Overlay an ai.compare agreement map: both (green), only A (orange), only B (blue); None removes it."""
        self.agreement.set_agreement(amap)

    def set_detections(self, detections: list[dict]) -> None:
        """Box outlines for ai.detection detections ({'label', 'box_mm': [lo, hi], ...}) where the slice cuts them."""
        self.detection_boxes.set_boxes((d["box_mm"][0], d["box_mm"][1], label_color(int(d["label"])))
                                       for d in detections)
        if self.volume is not None:
            self.detection_boxes.update()

    def set_roi(self, box) -> None:
        """Outline the box ROI ((x0, y0, z0), (x1, y1, z1)) world mm where the slice cuts it; None removes it."""
        self.roi_box.set_boxes([] if box is None else [(box[0], box[1], ROI_COLOR)])
        if self.volume is not None:
            self.roi_box.update()

    # ------------------------------------------------------------------ marks and text
    def set_crosshair_visible(self, visible: bool) -> None:
        self.crosshair.set_visible(visible)

    def set_brush_outline(self, world_xyz, radius_mm: float = 0.0) -> None:
        """Outline of a brush of ``radius_mm`` centred on ``world_xyz``; ``None`` hides it."""
        self.brush.set_outline(world_xyz, radius_mm)

    def orientation_labels(self) -> dict[str, str]:
        """Patient-direction letters on the left/right/top/bottom screen edges."""
        return orientation_letters(self.orientation)

    def set_probe_text(self, text: str) -> None:
        """Text in the upper-left corner (value under the mouse, world position)."""
        self.corner_text.set_probe_text(text)

    def probe(self, world_xyz) -> str:
        """'<value> <units>  (x, y, z) mm' for the voxel at ``world_xyz`` (empty outside the volume), with the
        fused volume's value there when one is shown; a colour image gives 'RGB (r, g, b)'."""
        vol = self.volume
        x, y, z = world_xyz
        where = f"({x:.1f}, {y:.1f}, {z:.1f}) mm"
        if vol.is_rgb:
            rgb = vol.rgb_at(world_xyz)
            return "" if rgb is None else f"RGB {rgb}  {where}"
        value = vol.value_at(world_xyz)
        if value is None:
            return ""
        text = f"{value:.6g} {vol.units}  {where}"
        fused = self.fusion.value_at(world_xyz) if self.fusion.moving is not None else None
        if fused is not None:
            text += f"  |  {self.fusion.moving.modality} {fused:.4g} {self.fusion.moving.units}"
        return text

    # ------------------------------------------------------------------ camera and picking
    def reset_camera(self) -> None:
        """Fit the whole slice in the view, physically proportioned."""
        self.geometry.reset_camera()

    def zoom(self, factor: float) -> None:
        """Zoom in by ``factor`` (> 1 enlarges)."""
        self.geometry.zoom(factor)

    def pan(self, dx_px: float, dy_px: float) -> None:
        """Move the image by (dx, dy) display pixels."""
        self.geometry.pan(dx_px, dy_px)

    def display_to_world(self, x_px: float, y_px: float) -> np.ndarray | None:
        """World LPS point on the current slice under display pixel (x, y) (origin bottom-left)."""
        return self.geometry.display_to_world(x_px, y_px)

    def world_to_display(self, world_xyz) -> tuple[float, float]:
        """Display pixel (x, y) (origin bottom-left) of a world point projected on this view."""
        return self.geometry.world_to_display(world_xyz)
