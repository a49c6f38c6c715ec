"""3D view: VTK volume rendering of a Volume in world (LPS) space with presets, and a cursor marker.

Lower sampling quality while the user interacts (``set_interactive(True)``) and full quality on
release. On software OpenGL (Mesa llvmpipe) the CPU ray caster is used: measured ~15x faster there
than the GPU ray caster (benchmarks/bench_render.py). The prop carries the volume's direction and
origin, so both mappers place it identically in world (LPS) space.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import weakref

import numpy as np
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (OpenGL GPU ray cast implementation)
from vtkmodules.vtkCommonCore import vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction, vtkPolyData
from vtkmodules.vtkFiltersCore import vtkAppendPolyData
from vtkmodules.vtkFiltersSources import vtkOutlineSource, vtkSphereSource
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkColorTransferFunction,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkTextActor,
    vtkVolume,
    vtkVolumeProperty,
)
from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper, vtkGPUVolumeRayCastMapper

from viewer.core.presets import auto_window_level, looks_like_hu
from viewer.core.volume import Volume
from viewer.render.colormaps import label_color
from viewer.render.fused_volume import FusedVolume
from viewer.render.label_surfaces import label_surface_actor
from viewer.render.render_window import disable_multisampling, is_software_opengl
from viewer.render.synthetic_banner import SyntheticBanner
from viewer.render.vtk_image import vtk_image, world_matrix

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
    "pet_mip": ("mip", [(0, 1, 1, 1), (6, 0, 0, 0)], [(0, 0), (0.5, 0.3), (6, 1)]),  # SUV 0-6 inverse grey
    "mip": ("mip", None, None),  # grey ramp over the volume's automatic window (MR, PET in Bq/mL, ...)
}
#: Background per blend: an inverse-grey PET MIP is read dark-on-white, like on a film.
BACKGROUNDS = {"pet_mip": (1.0, 1.0, 1.0)}
DEFAULT_BACKGROUND = (0.05, 0.05, 0.08)
#: Sampling distance multiplier while interacting.
INTERACTIVE_COARSENING = 3.0
#: Ray spacing in pixels while interacting (2: a quarter of the rays).
INTERACTIVE_IMAGE_SAMPLING = 2.0
MAPPERS = ("auto", "gpu", "cpu")
#: Voxels above which the 3D view ray-casts an in-plane decimated copy (rendered_copy): the first render of a
#: 512x512x300 CT takes 3.6 s with the CPU ray caster (no GPU), 1.0 s at half the in-plane resolution.
MAX_RENDERED_VOXELS = 24_000_000
#: Shown instead of a rendering when the volume is a single slice (or a single row/column): the ray
#: casters' gradients need neighbours on every axis (VTK's CPU ray caster reads past a 1-slice image).
TOO_THIN_MESSAGE = "3D needs >= 2 slices"

log = logging.getLogger(__name__)


def default_preset(vol: Volume) -> str:
    """'pet_mip' for SUV, 'ct_bone' for CT in HU, otherwise the generic 'mip'."""
    if vol.units == "SUVbw":
        return "pet_mip"
    return "ct_bone" if looks_like_hu(vol) else "mip"


def _coloured(poly_source, rgb) -> vtkPolyData:
    """The output of ``poly_source`` with every cell coloured ``rgb`` (0-255)."""
    poly_source.Update()
    poly = poly_source.GetOutput()
    colours = vtkUnsignedCharArray()
    colours.SetNumberOfComponents(3)
    for _ in range(poly.GetNumberOfCells()):
        colours.InsertNextTuple3(*rgb)
    poly.GetCellData().SetScalars(colours)
    return poly


def box_actor(boxes, marker_radius_mm: float = 0.0) -> vtkActor | None:
    """One actor outlining world boxes ``(lo_xyz, hi_xyz, rgb 0-255)``, with a sphere of
    ``marker_radius_mm`` at each centre when positive; None when there are no boxes."""
    boxes = list(boxes)
    if not boxes:
        return None
    append = vtkAppendPolyData()
    for lo, hi, rgb in boxes:
        outline = vtkOutlineSource()
        outline.SetBounds(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        append.AddInputData(_coloured(outline, rgb))
        if marker_radius_mm > 0:
            sphere = vtkSphereSource()
            sphere.SetCenter(*((np.asarray(lo, float) + np.asarray(hi, float)) / 2))
            sphere.SetRadius(marker_radius_mm)
            append.AddInputData(_coloured(sphere, rgb))
    append.Update()
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(append.GetOutput())
    mapper.SetColorModeToDirectScalars()
    mapper.SetScalarModeToUseCellData()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetLineWidth(2.0)
    return actor


def rendered_copy(vol: Volume) -> Volume:
    """``vol`` as the 3D view ray-casts it: itself, or, above MAX_RENDERED_VOXELS, every k-th row and column of
    every slice (the same origin and direction, k x the in-plane spacing), with the smallest k that fits."""
    step = max(1, math.ceil(math.sqrt(vol.array.size / MAX_RENDERED_VOXELS)))
    if step == 1:
        return vol
    sx, sy, sz = vol.spacing
    return dataclasses.replace(vol, array=np.ascontiguousarray(vol.array[:, ::step, ::step]),
                               spacing=(sx * step, sy * step, sz))


class VolumeView:
    """Volume rendering in ``renderer``: ``VolumeView(renderer)``, then ``set_volume`` and ``set_preset``."""

    PRESETS = tuple(PRESETS)

    def __init__(self, renderer: vtkRenderer, mapper: str = "auto"):
        """``mapper``: 'gpu' (vtkGPUVolumeRayCastMapper), 'cpu' (vtkFixedPointVolumeRayCastMapper) or
        'auto': the CPU ray caster on software OpenGL (llvmpipe: ~20x faster there), the GPU otherwise,
        decided at the first render when the OpenGL context is known."""
        if mapper not in MAPPERS:
            raise ValueError(f"mapper must be one of {', '.join(MAPPERS)}, got {mapper!r}")
        self.renderer = renderer
        self.volume: Volume | None = None
        self.image_data: vtkImageData | None = None
        self.preset = "ct_bone"
        self._interacting = False
        self._surfaces: vtkActor | None = None
        self._overlays: dict[str, vtkActor] = {}  # 'detections' / 'roi' box actors
        self._gpu = vtkGPUVolumeRayCastMapper()
        self._cpu = vtkFixedPointVolumeRayCastMapper()
        self._cpu.SetNumberOfThreads(os.cpu_count() or 1)
        for m in (self._gpu, self._cpu):
            m.SetAutoAdjustSampleDistances(False)
        self._mapper = self._cpu if mapper == "cpu" else self._gpu
        self._choice_pending = mapper == "auto"
        if self._choice_pending:
            choose = weakref.WeakMethod(self._choose_mapper)  # the renderer must not keep this view alive
            self._start_observer = renderer.AddObserver("StartEvent", lambda *_: choose() and choose()())
        disable_multisampling(renderer)
        self._prop = vtkVolumeProperty()
        self._prop.SetInterpolationTypeToLinear()
        self._prop.ShadeOn()
        self._prop.SetAmbient(0.5)
        self._prop.SetDiffuse(0.85)
        self._prop.SetSpecular(0.2)
        self.actor = vtkVolume()
        self.actor.SetMapper(self._mapper)
        self.actor.SetProperty(self._prop)
        self.actor.VisibilityOff()
        self._base_sample = 1.0
        sphere = vtkSphereSource()
        sphere.SetRadius(3.0)
        marker_mapper = vtkPolyDataMapper()
        marker_mapper.SetInputConnection(sphere.GetOutputPort())
        self._marker = vtkActor()
        self._marker.SetMapper(marker_mapper)
        self._marker.GetProperty().SetColor(0.2, 0.9, 0.2)
        self._marker.VisibilityOff()
        self.message = vtkTextActor()
        self.message.SetInput(TOO_THIN_MESSAGE)
        text = self.message.GetTextProperty()
        text.SetFontSize(18)
        text.SetColor(0.9, 0.9, 0.6)
        text.SetJustificationToCentered()
        text.SetVerticalJustificationToCentered()
        self.message.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        self.message.SetPosition(0.5, 0.5)
        self.message.VisibilityOff()
        renderer.AddVolume(self.actor)
        self.fusion = FusedVolume(renderer)  # a second volume (PET over CT, ...): set_fusion
        self.synthetic_banner = SyntheticBanner(renderer, lambda: (self.volume, self.fusion.moving))
        renderer.AddActor(self._marker)
        renderer.AddViewProp(self.message)
        renderer.SetBackground(*DEFAULT_BACKGROUND)

    @staticmethod
    def can_render(vol: Volume) -> bool:
        """Whether ``vol`` can be volume rendered: at least 2 voxels along every axis."""
        return min(vol.size) >= 2

    def set_volume(self, vol: Volume) -> None:
        """Render ``vol``; picks a preset matching its units and faces the patient (anterior view).

        A volume that ``can_render`` refuses (one slice) shows ``TOO_THIN_MESSAGE`` instead.
        """
        if not self.can_render(vol):
            self.clear(TOO_THIN_MESSAGE)
            self.volume = vol
            self.reset_camera()
            return
        self.volume = vol
        for name in list(self._overlays):  # the previous image's detections and ROI
            self._set_overlay(name, None)
        self.message.VisibilityOff()
        # The CPU ray caster ignores an image's direction matrix: both mappers get the index frame and
        # the prop carries the direction and origin.
        shown = rendered_copy(vol)
        self.image_data = vtk_image(shown, geometry=False)
        self.actor.SetUserMatrix(world_matrix(shown))
        for m in (self._gpu, self._cpu):
            m.SetInputData(self.image_data)
        self.actor.VisibilityOn()
        self._base_sample = float(min(shown.spacing))
        self.set_interactive(self._interacting)
        disable_multisampling(self.renderer)
        self.set_preset(default_preset(vol))
        self.reset_camera()

    def clear(self, message: str = "") -> None:
        """Show no volume (the mappers drop their input, so a render costs nothing) and ``message``, if any,
        in the middle of the view."""
        self.volume = None
        for name in list(self._overlays):
            self._set_overlay(name, None)
        self.message.SetInput(message)
        self.message.SetVisibility(bool(message))
        self.actor.VisibilityOff()
        self._marker.VisibilityOff()
        self.set_labels_surfaces(None)
        self.set_fusion(None)
        for m in (self._gpu, self._cpu):
            m.RemoveAllInputs()
        self.image_data = None
        self.renderer.SetBackground(*DEFAULT_BACKGROUND)

    def set_preset(self, name: str) -> None:
        """Apply a transfer-function preset: 'ct_bone', 'ct_soft_tissue', 'pet_mip' (SUV) or 'mip'."""
        if name not in PRESETS:
            raise ValueError(f"unknown 3D preset {name!r}; known: {', '.join(PRESETS)}")
        blend, colors, opacities = PRESETS[name]
        if colors is None:
            window, level = auto_window_level(self.volume)
            lo, hi = level - window / 2, level + window / 2
            colors, opacities = [(lo, 0, 0, 0), (hi, 1, 1, 1)], [(lo, 0), (hi, 1)]
        self.preset = name
        shown = self.volume is not None and self.can_render(self.volume)
        self.renderer.SetBackground(*(BACKGROUNDS.get(name, DEFAULT_BACKGROUND) if shown else DEFAULT_BACKGROUND))
        ctf = vtkColorTransferFunction()
        for value, r, g, b in colors:
            ctf.AddRGBPoint(value, r, g, b)
        otf = vtkPiecewiseFunction()
        for value, a in opacities:
            otf.AddPoint(value, a)
        self._prop.SetColor(ctf)
        self._prop.SetScalarOpacity(otf)
        for m in (self._gpu, self._cpu):
            if blend == "mip":
                m.SetBlendModeToMaximumIntensity()
            else:
                m.SetBlendModeToComposite()
        self._prop.SetShade(blend != "mip")

    def _choose_mapper(self) -> None:
        """First render: pick the CPU ray caster if the OpenGL context is a software rasteriser."""
        window = self.renderer.GetRenderWindow()
        if not self._choice_pending or window is None:
            return
        self._choice_pending = False
        self.renderer.RemoveObserver(self._start_observer)
        self._mapper = self._cpu if is_software_opengl(window) else self._gpu
        self.actor.SetMapper(self._mapper)
        log.info("volume rendering with %s", self.mapper_name())

    def mapper_name(self) -> str:
        """Class name of the volume mapper in use."""
        return self._mapper.GetClassName()

    def set_interactive(self, interacting: bool) -> None:
        """Coarser rays (sample distance x3, half image resolution) while the camera moves; full quality
        when ``interacting`` is False."""
        self._interacting = bool(interacting)
        factor = INTERACTIVE_COARSENING if interacting else 1.0
        for m in (self._gpu, self._cpu):
            m.SetSampleDistance(self._base_sample * factor)
            m.SetImageSampleDistance(INTERACTIVE_IMAGE_SAMPLING if interacting else 1.0)
        self._cpu.SetInteractiveSampleDistance(self._base_sample * factor)

    def set_labels_surfaces(self, labels: Volume | None, colors: dict[int, tuple[int, int, int]] | None = None,
                            opacity: float = 1.0) -> None:
        """Show smooth per-label surfaces of ``labels`` (any grid, placed in world space); None removes them."""
        if self._surfaces is not None:
            self.renderer.RemoveActor(self._surfaces)
            self._surfaces = None
        if labels is not None and self.volume is not None and self.can_render(self.volume):
            self._surfaces = label_surface_actor(labels, colors, opacity)
            if self._surfaces is not None:
                self.renderer.AddActor(self._surfaces)

    def set_fusion(self, moving: Volume | None, transform=None, style=None) -> None:
        """Render a second volume ``moving`` through ``transform`` (fixed -> moving Transform or 4x4; None: the
        same world frame) with a FusionStyle (default: the moving volume's); None removes it."""
        self.fusion.set_overlay(moving, transform, style)

    def _set_overlay(self, name: str, actor: vtkActor | None) -> None:
        old = self._overlays.pop(name, None)
        if old is not None:
            self.renderer.RemoveActor(old)
        if actor is not None:
            self._overlays[name] = actor
            self.renderer.AddActor(actor)

    def set_detections(self, detections: list[dict]) -> None:
        """Outline boxes and a centre sphere (label colours) for ai.detection detections; [] removes them."""
        self._set_overlay("detections", box_actor(((d["box_mm"][0], d["box_mm"][1], label_color(int(d["label"])))
                                                   for d in detections), marker_radius_mm=4.0))

    def set_roi(self, box, rgb=(0, 220, 220)) -> None:
        """Outline the box ROI ((x0, y0, z0), (x1, y1, z1)) world mm; None removes it."""
        self._set_overlay("roi", None if box is None else box_actor([(box[0], box[1], rgb)]))

    def set_cursor(self, world_xyz) -> None:
        """Show a marker at the linked crosshair point (none when the volume cannot be rendered)."""
        self._marker.SetPosition(*np.asarray(world_xyz, float))
        self._marker.SetVisibility(self.volume is not None and self.can_render(self.volume))

    def reset_camera(self) -> None:
        """Anterior view (patient's left on screen right), superior up, whole volume in view."""
        cam = self.renderer.GetActiveCamera()
        lo, hi = self.volume.world_bounds()
        centre = (lo + hi) / 2
        cam.SetFocalPoint(*centre)
        cam.SetPosition(centre[0], centre[1] - 1000.0, centre[2])  # from anterior (-y in LPS)
        cam.SetViewUp(0, 0, 1)
        self.renderer.ResetCamera()
