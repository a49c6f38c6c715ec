"""Render fixtures: SliceViews in offscreen windows that the fixture closes."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def offscreen_slice_view():
    """make(orientation, size=512) -> (SliceView in a size x size offscreen window, render() -> its RGB pixels
    as int (rows top to bottom)); the windows are finalized after the test."""
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.offscreen import window_pixels
    from viewer.render.slice_view import SliceView

    windows = []

    def make(orientation: str, size: int = 512):
        win = vtkRenderWindow()
        win.SetOffScreenRendering(1)
        win.SetSize(size, size)
        ren = vtkRenderer()
        win.AddRenderer(ren)
        windows.append(win)

        def render() -> np.ndarray:
            win.Render()
            return window_pixels(win).astype(int)

        return SliceView(ren, orientation), render

    yield make
    for win in windows:
        win.Finalize()
