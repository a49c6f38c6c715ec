"""Render a Volume (with optional labels) to a PNG without a window, using the viewer's own views."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOImage import vtkPNGWriter
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkWindowToImageFilter

from viewer.core.presets import get_preset
from viewer.core.registration import Transform
from viewer.core.volume import Volume
from viewer.render.layers.fusion import FusionStyle
from viewer.render.slice_view import SliceView
from viewer.render.volume_view import VolumeView

VIEWS = ("axial", "coronal", "sagittal", "3d")

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    # no X server: render through EGL (Mesa) instead of failing over from GLX with a warning
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def window_pixels(window: vtkRenderWindow) -> np.ndarray:
    """The rendered RGB pixels of ``window`` as (height, width, 3) uint8, row 0 at the top."""
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    img = grab.GetOutput()
    w, h, _ = img.GetDimensions()
    return vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, 3)[::-1].copy()


def save_png(window: vtkRenderWindow, out: str | Path) -> Path:
    """Write the window's current image as PNG."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.ReadFrontBufferOff()
    grab.Update()
    writer = vtkPNGWriter()
    writer.SetFileName(str(out))
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    return out


def render_png(
    volume: Volume,
    out_png: str | Path,
    *,
    view: str = "axial",
    slice_index: int | None = None,
    window: float | None = None,
    level: float | None = None,
    preset: str | None = None,
    labels: Volume | None = None,
    size: int = 512,
    overlay: Volume | None = None,
    overlay_transform: Transform | np.ndarray | None = None,
    overlay_style: FusionStyle | None = None,
) -> Path:
    """Render one view of ``volume`` offscreen to ``out_png`` and return its path.

    MPR views follow the radiological convention with physically correct aspect; ``labels`` (any
    grid) are overlaid in world space. ``preset`` is a W/L preset for MPR views or a 3D preset
    ('ct_bone', 'ct_soft_tissue', 'pet_mip') for ``view='3d'``. ``overlay`` is a second volume fused
    over the first through ``overlay_transform`` (fixed -> moving; None: the same world frame), drawn
    with ``overlay_style`` (default: ``FusionStyle.for_volume(overlay)``).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    ren_win = vtkRenderWindow()
    ren_win.SetOffScreenRendering(1)
    ren_win.SetSize(size, size)
    renderer = vtkRenderer()
    ren_win.AddRenderer(renderer)
    if view == "3d":
        vv = VolumeView(renderer)
        vv.set_volume(volume)
        if preset:
            vv.set_preset(preset)
        if overlay is not None:
            vv.set_fusion(overlay, overlay_transform, overlay_style)
    else:
        sv = SliceView(renderer, view)
        sv.set_volume(volume)
        if preset:
            p = get_preset(preset)
            sv.set_window_level(p.window, p.level)
            sv.set_colormap(p.colormap)
        if window is not None or level is not None:
            w0, l0 = sv.window_level
            sv.set_window_level(window if window is not None else w0, level if level is not None else l0)
        if labels is not None:
            sv.set_labels(labels)
        if overlay is not None:
            sv.set_fusion(overlay, overlay_transform, overlay_style)
            sv.fusion.wait()  # a B-spline transform is resampled in a worker
            sv.fusion.update()
        if slice_index is not None:
            if not 0 <= slice_index < sv.n_slices:
                raise ValueError(f"slice {slice_index} outside 0..{sv.n_slices - 1} for the {view} view")
            sv.set_slice_index(slice_index)
        sv.set_crosshair_visible(False)
        ren_win.Render()
        sv.reset_camera()
    ren_win.Render()
    path = save_png(ren_win, out_png)
    ren_win.Finalize()
    return path
