"""Colour lookup tables for images (gray, inverse gray, hot), fused overlays (hot, inferno, rainbow) and labels."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable

from viewer.core.fusion import FUSION_COLORMAPS
from viewer.core.labels import default_color

COLORMAPS = ("gray", "gray_inverse", "hot")
#: matplotlib's inferno (CC0) at 17 evenly spaced points, RGB 0-255; linear in between.
_INFERNO = ((0, 0, 4), (11, 7, 36), (33, 12, 74), (61, 9, 101), (87, 16, 110), (113, 25, 110), (138, 34, 106),
            (163, 44, 97), (188, 55, 84), (210, 70, 68), (228, 90, 49), (241, 115, 29), (249, 142, 9),
            (252, 172, 17), (249, 203, 53), (242, 234, 105), (252, 255, 164))


def label_color(label: int) -> tuple[int, int, int]:
    """The default colour of a label id (0, background, is black)."""
    return (0, 0, 0) if label == 0 else default_color(label)


def colormap_rgb(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) float RGB 0-1 of colour map ``name`` from its lowest to its highest value: 'gray',
    'gray_inverse', 'hot' (black-red-yellow-white), 'inferno' (black-purple-orange-yellow) or 'rainbow'
    (blue-cyan-green-yellow-red)."""
    t = np.linspace(0, 1, n)
    if name == "gray":
        return np.stack([t] * 3, axis=1)
    if name == "gray_inverse":
        return np.stack([1 - t] * 3, axis=1)
    if name == "hot":
        return np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=1)
    if name == "inferno":
        anchors = np.asarray(_INFERNO, float) / 255
        at = np.linspace(0, 1, len(anchors))
        return np.stack([np.interp(t, at, anchors[:, c]) for c in range(3)], axis=1)
    if name == "rainbow":  # hue from blue (240 deg) down to red (0 deg), full saturation and value
        h = (1 - t) * 4  # sextant position 4 (blue) -> 0 (red)
        return np.clip(np.stack([np.abs(h - 3) - 1, 2 - np.abs(h - 2), np.abs(h - 1) - 1], axis=1), 0, 1)
    raise ValueError(f"unknown colormap {name!r}; known: {', '.join(dict.fromkeys(COLORMAPS + FUSION_COLORMAPS))}")


def image_lut(name: str, n: int = 256) -> vtkLookupTable | None:
    """A VTK lookup table for ``name``; None for plain gray (VTK's window/level grey ramp)."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; known: {', '.join(COLORMAPS)}")
    if name == "gray":
        return None
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(n)
    for i, (r, g, b) in enumerate(colormap_rgb(name, n)):
        lut.SetTableValue(i, r, g, b, 1.0)
    lut.Build()
    return lut
