"""Colour lookup tables for images (gray, inverse gray, hot) and label colours, as VTK objects."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable

from viewer.core.labels import default_color

COLORMAPS = ("gray", "gray_inverse", "hot")

def label_color(label: int) -> tuple[int, int, int]:
    """The default colour of a label id (0, background, is black)."""
    return (0, 0, 0) if label == 0 else default_color(label)


def image_lut(name: str, n: int = 256) -> vtkLookupTable | None:
    """A VTK lookup table for ``name``; None for plain gray (VTK's window/level grey ramp)."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; known: {', '.join(COLORMAPS)}")
    if name == "gray":
        return None
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(n)
    t = np.linspace(0, 1, n)
    if name == "gray_inverse":
        rgb = np.stack([1 - t] * 3, axis=1)
    else:  # hot: black -> red -> yellow -> white
        rgb = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=1)
    for i, (r, g, b) in enumerate(rgb):
        lut.SetTableValue(i, r, g, b, 1.0)
    lut.Build()
    return lut
