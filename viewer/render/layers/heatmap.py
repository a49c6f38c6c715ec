"""The heat-map layer: a float map (Grad-CAM, uncertainty) as colours whose alpha rises with the value."""

from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy

from viewer.core.volume import Volume
from viewer.render.colormaps import image_lut
from viewer.render.layers.base import Z_HEAT, SliceLayer, on_grid, rgba_slice, show_rgba
from viewer.render.slice_geometry import SliceGeometry

#: Colour maps for float heat maps (Grad-CAM, uncertainty).
HEAT_COLORMAPS = ("hot", "jet")


def heat_table(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB colour table of a heat colour map: 'hot' (black-red-yellow-white) or 'jet'."""
    if name not in HEAT_COLORMAPS:
        raise ValueError(f"unknown heat colour map {name!r}; known: {', '.join(HEAT_COLORMAPS)}")
    if name == "hot":
        return vtk_to_numpy(image_lut("hot", n).GetTable())[:, :3].astype(np.uint8)  # RGBA 0-255 table
    t = np.linspace(0, 1, n)  # jet: blue -> cyan -> yellow -> red
    rgb = np.clip(np.stack([1.5 - np.abs(4 * t - 3), 1.5 - np.abs(4 * t - 2), 1.5 - np.abs(4 * t - 1)], 1), 0, 1)
    return np.rint(rgb * 255).astype(np.uint8)


class HeatmapLayer(SliceLayer):
    """A float map on the image's grid: ``range`` spans the colour map, values below ``floor`` (a fraction
    of the range) transparent, alpha rising with the value up to ``opacity``."""

    def __init__(self, geometry: SliceGeometry):
        super().__init__(geometry)
        self.actor = rgba_slice(Z_HEAT)
        self.props = [self.actor]
        self.heat: np.ndarray | None = None
        self.range = (0.0, 1.0)
        self.floor = 0.1
        self.opacity = 0.6
        self.visible = True
        self.colormap = "jet"
        self.table32 = np.zeros(256, np.uint32)

    def clear(self) -> None:
        self.heat = None
        self.actor.VisibilityOff()

    def set_heatmap(self, heat: Volume | np.ndarray | None, *, colormap: str = "jet", opacity: float = 0.6,
                    floor: float = 0.1, value_range: tuple[float, float] | None = None) -> None:
        """Overlay a float map as colours: ``value_range`` (default: 0 to the map's maximum) spans
        ``colormap``; values below ``floor`` (a fraction of that range) stay transparent; the rest is blended
        with an alpha rising with the value up to ``opacity`` at the top of the range, so low values tint the
        image lightly. A Volume on any grid is resampled (linear) by world geometry; None removes it."""
        if heat is None:
            self.clear()
            return
        heat = on_grid(heat, self.geometry.volume, nearest=False).astype(np.float32, copy=False)
        if value_range is None:
            value_range = (0.0, float(heat.max()) if heat.size else 1.0)
        lo, hi = float(value_range[0]), float(value_range[1])
        self.heat = heat
        self.range = (lo, hi if hi > lo else lo + 1e-6)
        self.floor = float(floor)
        self.set_style(colormap=colormap, opacity=opacity)

    def set_style(self, *, colormap: str | None = None, opacity: float | None = None,
                  visible: bool | None = None) -> None:
        """Change the colour map, opacity (0-1) or visibility without recomputing the map."""
        if colormap is not None:
            heat_table(colormap, 2)  # validates the name
            self.colormap = colormap
        if opacity is not None:
            self.opacity = float(np.clip(opacity, 0.0, 1.0))
        if visible is not None:
            self.visible = bool(visible)
        rgba = np.empty((256, 4), np.uint8)
        rgba[:, :3] = heat_table(self.colormap, 256)
        rgba[:, 3] = np.rint(np.linspace(0, 255 * self.opacity, 256))  # stronger where the value is high
        self.table32 = rgba.view(np.uint32).ravel()
        if self.geometry.volume is not None:
            self.update()

    @property
    def style(self) -> dict:
        """{'colormap', 'opacity', 'visible', 'floor', 'range'}."""
        return {"colormap": self.colormap, "opacity": self.opacity, "visible": self.visible,
                "floor": self.floor, "range": self.range}

    def update(self) -> None:
        if self.heat is None or not self.visible or self.opacity <= 0:
            self.actor.VisibilityOff()
            return
        lo, hi = self.range
        t = (self.geometry.plane(self.heat) - lo) / (hi - lo)
        shown = t >= self.floor
        if not shown.any():
            self.actor.VisibilityOff()
            return
        rgba = self.table32.take(np.clip(t * 255, 0, 255).astype(np.uint8))
        rgba[~shown] = 0
        show_rgba(self.actor, rgba.view(np.uint8).reshape(*t.shape, 4), self.geometry.plane_spacing)
