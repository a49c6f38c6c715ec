"""Colour lookup tables for images (gray, inverse gray, hot) and label colours, as VTK objects."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable

COLORMAPS = ("gray", "gray_inverse", "hot")

#: Distinct label colours (RGB 0-255), cycled by label id.
LABEL_PALETTE = np.array(
    [
        (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
        (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
        (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0),
        (255, 215, 180), (0, 0, 128), (128, 128, 128),
    ],
    dtype=np.uint8,
)


def label_color(label: int) -> tuple[int, int, int]:
    """The default colour of a label id (0 is background)."""
    if label == 0:
        return (0, 0, 0)
    return tuple(int(c) for c in LABEL_PALETTE[1 + (label - 1) % (len(LABEL_PALETTE) - 1)])


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
