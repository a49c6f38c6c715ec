"""Slice views render unlit: no per-fragment lighting (a third of an llvmpipe frame), same pixels as a head light."""

from __future__ import annotations

import numpy as np

from viewer.core.volume import Volume


def _scene() -> tuple[Volume, np.ndarray, Volume]:
    """A 40 x 64 x 64 CT ramp with a labelled block and a coarse PET with a hot block."""
    z, y, x = np.mgrid[:40, :64, :64]
    ct = Volume((x * 20 - 600).astype(np.int16), spacing=(1.0, 1.0, 2.0), modality="CT", units="HU")
    labels = np.zeros(ct.array.shape, np.uint8)
    labels[10:30, 20:40, 15:35] = 1
    pet = np.full((20, 16, 16), 1.0, np.float32)
    pet[8:12, 6:10, 6:10] = 8.0
    return ct, labels, Volume(pet, spacing=(4.0, 4.0, 4.0), modality="PT", units="SUVbw")


def test_slice_view_renderer_has_no_lights_and_draws_what_a_head_light_draws(offscreen_slice_view):
    from vtkmodules.vtkRenderingCore import vtkLight

    for orientation in ("axial", "coronal", "sagittal"):
        view, render = offscreen_slice_view(orientation, size=256)
        ct, labels, pet = _scene()
        view.set_volume(ct)
        view.set_labels(labels)
        view.set_fusion(pet)
        view.set_detections([{"label": 2, "box_mm": [view.cursor - 10, view.cursor + 10]}])
        view.set_brush_outline(view.cursor, 8.0)
        view.set_probe_text("40 HU")
        unlit = render()
        assert view.renderer.GetLights().GetNumberOfItems() == 0, orientation
        light = vtkLight()
        light.SetLightTypeToHeadlight()
        view.renderer.AddLight(light)
        lit = render()
        assert (unlit > 0).any(axis=-1).sum() > 1000, orientation  # the scene is drawn
        np.testing.assert_array_equal(unlit, lit, err_msg=orientation)
