"""The fused volume in the 3D view: a second vtkVolume (PET, MR) placed through the registration, coloured like
the slice views' fused layer (colour map over the window, transparent below the threshold)."""

from __future__ import annotations

import logging

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkRenderingCore import vtkColorTransferFunction, vtkRenderer, vtkVolume, vtkVolumeProperty
from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

from viewer.core.registration import Transform
from viewer.core.volume import Volume
from viewer.render.colormaps import colormap_rgb
from viewer.render.layers.fusion import FusionStyle, fixed_to_moving_matrix, lower_threshold
from viewer.render.vtk_image import vtk_image, world_matrix

#: Colour points sampled from the colour map over the window.
COLOR_POINTS = 16

log = logging.getLogger(__name__)


def transfer_functions(style: FusionStyle) -> tuple[vtkColorTransferFunction, vtkPiecewiseFunction]:
    """Colour: ``style.colormap`` over its window; opacity: 0 below the threshold, rising linearly to
    ``style.opacity`` at the top of the window (bright uptake stands out, background stays clear)."""
    lo, hi = style.window
    colours = vtkColorTransferFunction()
    for value, rgb in zip(np.linspace(lo, hi, COLOR_POINTS), colormap_rgb(style.colormap, COLOR_POINTS), strict=True):
        colours.AddRGBPoint(float(value), *rgb)
    threshold = lower_threshold(style)
    opacity = vtkPiecewiseFunction()
    opacity.AddPoint(min(lo, threshold) - 1.0, 0.0)
    opacity.AddPoint(threshold, 0.0)
    opacity.AddPoint(max(hi, threshold + 1e-3), style.opacity)
    return colours, opacity


class FusedVolume:
    """A moving volume rendered in a fixed volume's 3D scene (CPU ray caster, composite blending)."""

    def __init__(self, renderer: vtkRenderer):
        self.renderer = renderer
        self.mapper = vtkFixedPointVolumeRayCastMapper()
        self.property = vtkVolumeProperty()
        self.property.SetInterpolationTypeToLinear()
        self.property.ShadeOff()
        self.actor = vtkVolume()
        self.actor.SetMapper(self.mapper)
        self.actor.SetProperty(self.property)
        self.actor.VisibilityOff()
        self.moving: Volume | None = None
        renderer.AddVolume(self.actor)

    def set_overlay(self, moving: Volume | None, transform: Transform | np.ndarray | None = None,
                    style: FusionStyle | None = None) -> None:
        """Render ``moving`` where ``transform`` (fixed -> moving; None: same world frame) puts it in the fixed
        image's world; None removes it. A B-spline transform is not shown in 3D (logged)."""
        self.moving = moving
        matrix = None if moving is None else fixed_to_moving_matrix(transform)
        if matrix is None:
            if moving is not None:
                log.warning("3D fusion shows linear transforms only; %s is not drawn in 3D", transform)
            self.actor.VisibilityOff()
            self.mapper.RemoveAllInputs()
            return
        self.mapper.SetInputData(vtk_image(moving, geometry=False))  # the CPU ray caster ignores directions
        placement = vtkMatrix4x4()
        moving_index_to_world = np.array([[world_matrix(moving).GetElement(i, j) for j in range(4)] for i in range(4)])
        placement.DeepCopy((np.linalg.inv(matrix) @ moving_index_to_world).ravel())
        self.actor.SetUserMatrix(placement)
        self.mapper.SetSampleDistance(float(min(moving.spacing)) / 2)
        self.set_style(style or FusionStyle.for_volume(moving))
        self.actor.VisibilityOn()

    def set_style(self, style: FusionStyle) -> None:
        """Colour and opacity from ``style`` (its blend mode applies to slices only)."""
        colours, opacity = transfer_functions(style)
        self.property.SetColor(colours)
        self.property.SetScalarOpacity(opacity)
        self.actor.SetVisibility(self.moving is not None and style.visible)
