"""Compile a slice view's OpenGL shaders before the first image arrives, so the first study opened shows as fast
as the next.

The first render in a window creates its OpenGL context and compiles the shaders of every kind of prop it draws
(image slice, lines, text): under software OpenGL that costs 0.2-0.4 s, paid by the first study opened. VTK keeps
compiled shaders per render window, so a throwaway renderer that draws a tiny volume once, in the window's own
context, moves that cost to the idle time after start-up.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

from viewer.core.volume import Volume
from viewer.render.slice_view import SliceView

#: what the throwaway view shows: a small CT (every layer a real study draws first: image, crosshair, text)
_WARM_UP_VOLUME_SHAPE = (4, 8, 8)


def warm_up(window: vtkRenderWindow, orientation: str = "axial") -> None:
    """Render a throwaway slice view of a tiny CT in ``window`` once, then remove it; the window's own
    renderers and what they show are untouched."""
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    try:
        view = SliceView(renderer, orientation)
        view.set_volume(Volume(np.zeros(_WARM_UP_VOLUME_SHAPE, np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0),
                               modality="CT", units="HU", description="warm-up"))
        window.Render()
    finally:
        window.RemoveRenderer(renderer)
