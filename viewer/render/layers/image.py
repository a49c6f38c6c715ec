"""The base image of a slice view: grey (or colour-mapped) with window/level, or a colour image as stored."""

from __future__ import annotations

import numpy as np

from viewer.core.volume import Volume
from viewer.render.colormaps import image_lut
from viewer.render.layers.base import SliceLayer, image_data, image_slice, nonzero_box
from viewer.render.slice_cache import XMajorCache
from viewer.render.slice_geometry import SliceGeometry

#: Colour maps whose lowest colour is black, the views' background: pixels at or below the window's low end
#: look the same drawn or not, so only the bounding box of the others is drawn (software OpenGL pays per pixel;
#: air around a CT is a third to a half of the slice).
BLACK_BELOW_WINDOW = ("gray", "hot")
#: Seconds without voxel changes (progressive loading, label edits) before an x-major copy is rebuilt.
SLICE_CACHE_DELAY_S = 0.5


class ImageLayer(SliceLayer):
    """The volume's current slice. Scalar images map ``level -/+ window/2`` through the colour map; a colour
    (RGB) image is shown as stored, never windowed (``set_window_level`` only records the values)."""

    def __init__(self, geometry: SliceGeometry):
        super().__init__(geometry)
        self.actor = image_slice(0.0)
        self.props = [self.actor]
        self.cache = XMajorCache()  # x-major copy for views whose slice axis is x (see slice_cache)
        self.window, self.level = 400.0, 40.0
        self.colormap = "gray"
        self.plane: np.ndarray | None = None  # the slice shown (rows up, cols right), for layers that blend with it

    def show_volume(self, vol: Volume) -> None:
        """Start showing ``vol`` (the geometry already holds it)."""
        self.cache_voxels(self.cache, vol.array)
        self.actor.VisibilityOn()
        self._apply_window()

    def cache_voxels(self, cache: XMajorCache, array: np.ndarray, delay_s: float = SLICE_CACHE_DELAY_S) -> None:
        """(Re)build ``cache`` from ``array`` in the background if this view slices along x (else drop it)."""
        cache.invalidate(array if self.geometry.axes.slice_axis == 0 else None, delay_s)

    @property
    def is_rgb(self) -> bool:
        """Whether the shown volume is a colour image."""
        vol = self.geometry.volume
        return vol is not None and vol.is_rgb

    def set_window_level(self, window: float, level: float) -> None:
        """Values ``level -/+ window/2`` span the colour map (scalar images)."""
        self.window, self.level = max(float(window), 1e-6), float(level)
        self._apply_window()

    def set_colormap(self, name: str) -> None:
        """'gray', 'gray_inverse' or 'hot' (scalar images)."""
        lut = image_lut(name)  # validates the name
        self.colormap = name
        prop = self.actor.GetProperty()
        prop.SetLookupTable(None if self.is_rgb else lut)
        prop.SetUseLookupTableScalarRange(False)

    def _apply_window(self) -> None:
        prop = self.actor.GetProperty()
        if self.is_rgb:  # colour as stored: the identity window of the sample type, no lookup table
            dtype = self.geometry.volume.array.dtype
            top = float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0
            prop.SetLookupTable(None)
            prop.SetColorWindow(top)
            prop.SetColorLevel(top / 2)
        else:
            prop.SetColorWindow(self.window)
            prop.SetColorLevel(self.level)

    def update(self) -> None:
        geo = self.geometry
        self.plane = plane = geo.plane(geo.volume.array, self.cache)
        box = (slice(None), slice(None))
        if not self.is_rgb and self.colormap in BLACK_BELOW_WINDOW:
            box = nonzero_box(plane > self.level - self.window / 2)
            if box is None:  # all black, as the background
                self.actor.VisibilityOff()
                return
        img = image_data(plane[box], geo.plane_spacing, 3 if self.is_rgb else 1)
        img.SetOrigin((box[1].start or 0) * geo.plane_spacing[0], (box[0].start or 0) * geo.plane_spacing[1], 0.0)
        self.actor.GetMapper().SetInputData(img)
        self.actor.VisibilityOn()
