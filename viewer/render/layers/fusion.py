"""The fused-volume layer: a second volume (PET, MR) resliced through the registration onto the current slice.

For a linear transform the moving volume is resliced directly (vtkImageReslice, one 2D plane per slice
change) at ``matrix @ p`` for every fixed-slice pixel centre p, so the overlay follows the fixed image's
cursor through the transform and no 3D copy is made. A B-spline transform is resampled once onto the
fixed grid in a background thread (``Transform.resample``) and that cache is resliced the same way.
Colours come from a lookup table over the style's window (values below the threshold transparent), applied
in numpy: VTK's own float-through-lookup-table texture path measured ~30 ms a frame on llvmpipe.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkCommonCore import VTK_FLOAT
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkImagingCore import vtkImageReslice

from viewer.core.events import Event
from viewer.core.fusion import FusionDisplay
from viewer.core.registration import Transform
from viewer.core.volume import Volume
from viewer.render.colormaps import colormap_rgb
from viewer.render.layers.base import Z_FUSION, SliceLayer, rgba_slice, show_rgba
from viewer.render.layers.image import ImageLayer
from viewer.render.vtk_image import vtk_image

#: Entries of the overlay's lookup table (the threshold falls on one of them).
LUT_SIZE = 1024
#: vtkImageProperty interpolation types (VTK_NEAREST_INTERPOLATION, VTK_LINEAR_INTERPOLATION).
NEAREST, LINEAR = 0, 1
#: How the layer draws: core's FusionDisplay (one definition of the fields, their checks and defaults;
#: ``FusionDisplay.for_volume(moving)`` is a moving volume's default), under the render side's name.
FusionStyle = FusionDisplay

log = logging.getLogger(__name__)


def lower_threshold(style: FusionStyle) -> float:
    """The threshold in effect: moving values below it are transparent (the window's low end when none is set)."""
    return float(style.window[0] if style.threshold is None else style.threshold)


def fixed_to_moving_matrix(transform: Transform | np.ndarray | None) -> np.ndarray | None:
    """The 4x4 fixed -> moving matrix (LPS mm) of ``transform`` (identity for None), or None when it is not
    linear (a B-spline)."""
    if transform is None:
        return np.eye(4)
    if isinstance(transform, Transform):
        return transform.matrix
    matrix = np.asarray(transform, float)
    if matrix.shape != (4, 4):
        raise ValueError(f"a fusion transform is a Transform or a 4x4 matrix, got shape {matrix.shape}")
    return matrix


class FusionColours:
    """Packed RGBA colours of moving values for a FusionStyle (numpy: one table lookup per pixel).

    'alpha' colours the window, values below the threshold transparent; 'checkerboard' is opaque everywhere
    (below the window: its lowest colour); 'difference' colours 0-1. NaN (outside the moving volume, the
    image's checkerboard tiles) is transparent.
    """

    def __init__(self, style: FusionStyle):
        lo, hi = (0.0, 1.0) if style.blend == "difference" else style.window
        self.bottom = min(lo, lower_threshold(style)) if style.blend == "alpha" else lo
        self.top = hi
        values = self.bottom + np.arange(LUT_SIZE) * (hi - self.bottom) / (LUT_SIZE - 1)
        rgb = colormap_rgb(style.colormap, LUT_SIZE)
        index = np.clip(np.rint((values - lo) / (hi - lo) * (LUT_SIZE - 1)), 0, LUT_SIZE - 1).astype(int)
        rgba = np.empty((LUT_SIZE, 4), np.uint8)
        rgba[:, :3] = np.rint(rgb[index] * 255)
        rgba[:, 3] = 255
        if style.blend == "alpha":
            rgba[values < lower_threshold(style), 3] = 0
        self.table = rgba.view(np.uint32).ravel()
        self.below = self.table[0] if style.blend == "checkerboard" else np.uint32(0)

    def rgba(self, values: np.ndarray) -> np.ndarray:
        """(rows, cols, 4) uint8 colours of a float plane of moving values."""
        scaled = (values - self.bottom) * ((LUT_SIZE - 1) / (self.top - self.bottom))
        index = np.clip(np.nan_to_num(scaled, nan=0.0), 0, LUT_SIZE - 1).astype(np.uint16)
        out = self.table.take(index)
        out[scaled < 0] = self.below
        out[np.isnan(values)] = 0
        return out.view(np.uint8).reshape(*values.shape, 4)


class FusionLayer(SliceLayer):
    """A moving volume over the image: ``set_overlay(moving, transform, style)``; ``None`` removes it.

    ``ready`` is emitted (from the worker thread) when a B-spline resampling finishes: redraw then.
    """

    def __init__(self, image: ImageLayer):
        super().__init__(image.geometry)
        self.image = image
        self.actor = rgba_slice(Z_FUSION)
        self.props = [self.actor]
        self.moving: Volume | None = None
        self.transform: Transform | np.ndarray | None = None
        self.style = FusionStyle()
        self.colours = FusionColours(self.style)
        self.ready = Event()
        self._source: tuple[vtkImageData, np.ndarray, Volume] | None = None  # input, fixed->moving, its grid
        self._worker: threading.Thread | None = None
        self._generation = 0
        self.reslice = vtkImageReslice()
        self.reslice.SetInterpolationModeToLinear()
        self.reslice.SetOutputDimensionality(2)
        self.reslice.SetNumberOfThreads(1)  # a plane of ~10^4 pixels: waking helper threads costs more (ms under load)
        self.reslice.SetOutputScalarType(VTK_FLOAT)
        self.reslice.SetBackgroundLevel(float("nan"))
        self.reslice.SetOutputOrigin(0.0, 0.0, 0.0)
        self.reslice.SetOutputSpacing(1.0, 1.0, 1.0)

    def clear(self) -> None:
        self.set_overlay(None)

    @property
    def pending(self) -> bool:
        """Whether a B-spline resampling is still running."""
        return self._worker is not None and self._worker.is_alive()

    def wait(self) -> None:
        """Block until a running B-spline resampling is done."""
        if self._worker is not None:
            self._worker.join()

    def set_overlay(self, moving: Volume | None, transform: Transform | np.ndarray | None = None,
                    style: FusionStyle | None = None) -> None:
        """Fuse ``moving`` over the image through ``transform`` (fixed -> moving: a Transform, a 4x4 matrix in
        LPS mm, or None for the identity) drawn with ``style`` (default: ``FusionStyle.for_volume(moving)``)."""
        self._generation += 1
        self._source = None
        self.moving, self.transform = moving, transform
        if moving is None:
            self.actor.VisibilityOff()
            return
        moving.require_scalar("fusion")
        if self.geometry.volume is None:
            raise ValueError("fusion needs the fixed image shown first (set_volume)")
        self.set_style(style or FusionStyle.for_volume(moving))
        matrix = fixed_to_moving_matrix(transform)
        if matrix is not None:
            self._source = (self._index_image(moving), matrix, moving)
            self.update()
            return
        fixed, generation = self.geometry.volume, self._generation
        self.actor.VisibilityOff()
        self._worker = threading.Thread(target=self._resample, args=(moving, fixed, transform, generation),
                                        name="fusion-resample", daemon=True)
        self._worker.start()

    def _resample(self, moving: Volume, fixed: Volume, transform: Transform, generation: int) -> None:
        """Worker: the B-spline-mapped moving volume on the fixed grid, kept if still wanted."""
        resampled = transform.resample(moving, fixed, interpolator="linear")
        if generation == self._generation:
            self._source = (self._index_image(resampled), np.eye(4), resampled)
            log.debug("fusion: %s resampled onto the fixed grid", moving.description)
            self.ready.emit()

    @staticmethod
    def _index_image(vol: Volume) -> vtkImageData:
        """``vol``'s voxels as a vtkImageData in index space (origin 0, spacing 1), buffer shared."""
        img = vtk_image(vol, geometry=False)
        img.SetSpacing(1.0, 1.0, 1.0)
        return img

    def set_style(self, style: FusionStyle | None = None, **changes) -> None:
        """Replace the style, or change some of its fields (``colormap=``, ``opacity=``, ``window=``, ...)."""
        style = replace(style or self.style, **changes)
        if style.blend == "difference" and self.image.is_rgb:
            raise ValueError("difference blending needs a greyscale image under the overlay, not a colour one")
        self.style = style
        self.colours = FusionColours(style)
        self.actor.GetProperty().SetOpacity(1.0 if style.blend == "checkerboard" else style.opacity)
        if self.geometry.volume is not None and self._source is not None:
            self.update()

    def sampling_step(self) -> tuple[int, int]:
        """Fixed-slice pixels per overlay pixel along (right, up): the overlay is sampled about once per moving
        voxel (never coarser, never finer than the image) and drawn with linear interpolation, as PET is
        usually shown, so a 4 mm PET over a 0.8 mm CT reslices 1/25 of the pixels."""
        voxel = min(self._source[2].spacing)
        return tuple(max(1, int(voxel // s)) for s in self.geometry.plane_spacing)

    def plane_matrix(self, step: tuple[int, int] = (1, 1)) -> np.ndarray:
        """4x4 map from overlay pixel (i, j, 0, 1) of the current slice, ``step`` image pixels apart, to the
        moving source's continuous index."""
        _, fixed_to_moving, grid = self._source
        world_to_index = np.linalg.inv(grid.index_to_world_matrix)
        return world_to_index @ fixed_to_moving @ self.geometry.plane_to_world_matrix() @ np.diag([*step, 1.0, 1.0])

    def values(self, step: tuple[int, int] = (1, 1)) -> np.ndarray:
        """The moving values at every ``step``-th pixel of the current slice (rows up, cols right; NaN
        outside the moving volume), resliced with linear interpolation."""
        source, _, _ = self._source
        axes = vtkMatrix4x4()
        axes.DeepCopy(self.plane_matrix(step).ravel())
        cols, rows = (-(-n // f) for n, f in zip(self.geometry.plane_size, step, strict=True))
        self.reslice.SetInputData(source)
        self.reslice.SetResliceAxes(axes)
        self.reslice.SetOutputExtent(0, cols - 1, 0, rows - 1, 0, 0)
        self.reslice.Update()
        return vtk_to_numpy(self.reslice.GetOutput().GetPointData().GetScalars()).reshape(rows, cols)

    def update(self) -> None:
        if self._source is None or not self.style.visible:
            self.actor.VisibilityOff()
            return
        step = self.sampling_step()
        values = self.values(step)
        style = self.style
        if style.blend == "checkerboard":
            values[self._image_tiles(values.shape, step)] = np.nan
        elif style.blend == "difference":
            low, high = style.window
            values = np.abs(self._normalised_image(step) - np.clip((values - low) / (high - low), 0, 1))
        su, sv = self.geometry.plane_spacing
        show_rgba(self.actor, self.colours.rgba(values), (su * step[0], sv * step[1]))
        self.actor.GetProperty().SetInterpolationType(NEAREST if step == (1, 1) else LINEAR)

    def _image_tiles(self, shape: tuple[int, int], step: tuple[int, int]) -> np.ndarray:
        """True on the checkerboard tiles where the image shows (tiles of ``tile_mm`` in scene mm)."""
        su, sv = self.geometry.plane_spacing
        tile = self.style.tile_mm
        rows, cols = shape
        return ((np.arange(rows)[:, None] * (sv * step[1]) // tile +
                 np.arange(cols)[None, :] * (su * step[0]) // tile) % 2) == 0

    def _normalised_image(self, step: tuple[int, int]) -> np.ndarray:
        """Every ``step``-th pixel of the image's current slice scaled 0-1 by its window/level (clipped)."""
        image = self.image
        low = image.level - image.window / 2
        plane = image.plane[::step[1], ::step[0]]
        return np.clip((plane.astype(np.float32) - low) / image.window, 0, 1)

    def value_at(self, world_xyz) -> float | None:
        """The moving volume's value shown at fixed world point ``world_xyz`` (None outside it or while a
        B-spline resampling runs)."""
        if self._source is None:
            return None
        _, fixed_to_moving, grid = self._source
        return grid.value_at((fixed_to_moving @ np.append(np.asarray(world_xyz, float), 1.0))[:3])
