"""3D view: VTK volume rendering of a Volume in world (LPS) space with presets, and a cursor marker.

Lower sampling quality while the user interacts (``set_interactive(True)``) and full quality on
release, so rotation stays fluid on a CPU (llvmpipe) renderer.
"""

from __future__ import annotations

import numpy as np
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction
from vtkmodules.vtkFiltersSources import vtkSphereSource
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkColorTransferFunction,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkVolume,
    vtkVolumeProperty,
)
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

from viewer.core.volume import Volume

#: name -> (blend mode, [(value, r, g, b)], [(value, opacity)])
PRESETS = {
    "ct_bone": (
        "composite",
        [(-1000, 0, 0, 0), (150, 0.55, 0.25, 0.15), (300, 0.95, 0.85, 0.7), (1500, 1, 1, 0.95)],
        [(-1000, 0), (150, 0), (250, 0.35), (700, 0.8), (3000, 0.9)],
    ),
    "ct_soft_tissue": (
        "composite",
        [(-1000, 0, 0, 0), (-150, 0.6, 0.35, 0.25), (40, 0.85, 0.45, 0.35), (200, 1, 0.85, 0.75), (1000, 1, 1, 1)],
        [(-1000, 0), (-300, 0), (-100, 0.05), (40, 0.12), (150, 0.3), (1000, 0.6)],
    ),
    "pet_mip": ("mip", [(0, 1, 1, 1), (6, 0, 0, 0)], [(0, 0), (0.5, 0.3), (6, 1)]),
}
#: Sampling distance multiplier while interacting.
INTERACTIVE_COARSENING = 3.0


def _vtk_image(vol: Volume) -> vtkImageData:
    img = vtkImageData()
    x, y, z = vol.size
    img.SetDimensions(x, y, z)
    img.SetSpacing(*vol.spacing)
    img.SetOrigin(*vol.origin)
    img.SetDirectionMatrix(*np.asarray(vol.direction, float).ravel())
    flat = np.ascontiguousarray(vol.array).ravel()
    arr = numpy_to_vtk(flat, deep=False)
    arr._numpy_ref = flat
    img.GetPointData().SetScalars(arr)
    return img


class VolumeView:
    """Volume rendering in ``renderer``: ``VolumeView(renderer)``, then ``set_volume`` and ``set_preset``."""

    PRESETS = tuple(PRESETS)

    def __init__(self, renderer: vtkRenderer):
        self.renderer = renderer
        self.volume: Volume | None = None
        self.preset = "ct_bone"
        self._mapper = vtkSmartVolumeMapper()
        self._mapper.SetRequestedRenderModeToDefault()
        self._prop = vtkVolumeProperty()
        self._prop.SetInterpolationTypeToLinear()
        self._prop.ShadeOn()
        self._prop.SetAmbient(0.35)
        self._prop.SetDiffuse(0.75)
        self._prop.SetSpecular(0.2)
        self._actor = vtkVolume()
        self._actor.SetMapper(self._mapper)
        self._actor.SetProperty(self._prop)
        self._actor.VisibilityOff()
        self._base_sample = 1.0
        sphere = vtkSphereSource()
        sphere.SetRadius(3.0)
        marker_mapper = vtkPolyDataMapper()
        marker_mapper.SetInputConnection(sphere.GetOutputPort())
        self._marker = vtkActor()
        self._marker.SetMapper(marker_mapper)
        self._marker.GetProperty().SetColor(0.2, 0.9, 0.2)
        self._marker.VisibilityOff()
        renderer.AddVolume(self._actor)
        renderer.AddActor(self._marker)
        renderer.SetBackground(0.05, 0.05, 0.08)

    def set_volume(self, vol: Volume) -> None:
        """Render ``vol``; picks a preset matching its units and faces the patient (anterior view)."""
        self.volume = vol
        self._mapper.SetInputData(_vtk_image(vol))
        self._actor.VisibilityOn()
        self._base_sample = float(min(vol.spacing))
        self._mapper.SetAutoAdjustSampleDistances(False)
        self._mapper.SetSampleDistance(self._base_sample)
        self.set_preset("pet_mip" if vol.units in ("SUVbw", "Bq/mL") else "ct_bone" if vol.units == "HU" else
                        "ct_soft_tissue")
        self.reset_camera()

    def set_preset(self, name: str) -> None:
        """Apply a transfer-function preset: 'ct_bone', 'ct_soft_tissue' or 'pet_mip'."""
        if name not in PRESETS:
            raise ValueError(f"unknown 3D preset {name!r}; known: {', '.join(PRESETS)}")
        blend, colors, opacities = PRESETS[name]
        self.preset = name
        ctf = vtkColorTransferFunction()
        for value, r, g, b in colors:
            ctf.AddRGBPoint(value, r, g, b)
        otf = vtkPiecewiseFunction()
        for value, a in opacities:
            otf.AddPoint(value, a)
        self._prop.SetColor(ctf)
        self._prop.SetScalarOpacity(otf)
        if blend == "mip":
            self._mapper.SetBlendModeToMaximumIntensity()
            self._prop.ShadeOff()
        else:
            self._mapper.SetBlendModeToComposite()
            self._prop.ShadeOn()

    def set_interactive(self, interacting: bool) -> None:
        """Coarser sampling while the camera moves; full quality when ``interacting`` is False."""
        factor = INTERACTIVE_COARSENING if interacting else 1.0
        self._mapper.SetSampleDistance(self._base_sample * factor)

    def set_cursor(self, world_xyz) -> None:
        """Show a marker at the linked crosshair point."""
        self._marker.SetPosition(*np.asarray(world_xyz, float))
        self._marker.VisibilityOn()

    def reset_camera(self) -> None:
        """Anterior view (patient's left on screen right), superior up, whole volume in view."""
        cam = self.renderer.GetActiveCamera()
        lo, hi = self.volume.world_bounds()
        centre = (lo + hi) / 2
        cam.SetFocalPoint(*centre)
        cam.SetPosition(centre[0], centre[1] - 1000.0, centre[2])  # from anterior (-y in LPS)
        cam.SetViewUp(0, 0, 1)
        self.renderer.ResetCamera()
