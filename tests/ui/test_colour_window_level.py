"""A colour (RGB) image offers no window/level: the W/L panel says so and its controls are disabled."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_colour_image_disables_window_level(viewer, open_and_wait, pydicom_file, demo_study, artifacts):
    from viewer.ui.histogram_panel import COLOUR_MESSAGE

    panel = viewer.histogram
    viewer.set_tool("window_level")
    vol = open_and_wait(viewer, pydicom_file("SC_rgb.dcm"))
    assert vol.is_rgb
    assert panel.readout.text() == COLOUR_MESSAGE == "colour image: shown as stored, no window/level"
    assert panel.readout.isVisible()
    assert not panel.presets.isEnabled() and panel.presets.count() == 0
    assert not panel.plot.isVisible() and not panel.region.movable
    assert not viewer.wl_action.isEnabled() and viewer.state.tool == "crosshair"
    panel.grab().save(str(artifacts / "colour_window_level_panel.png"))
    open_and_wait(viewer, demo_study.ct_dir)  # a greyscale image offers window/level again
    assert panel.presets.isEnabled() and panel.presets.count() > 1 and panel.plot.isVisible()
    assert panel.region.movable and viewer.wl_action.isEnabled() and panel.readout.text().startswith("W ")
