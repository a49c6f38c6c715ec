"""The start-up warm-up renders in a view's own window and leaves it as it was: same renderers, same pixels."""

from __future__ import annotations

import numpy as np

from viewer.core.volume import Volume


def test_warm_up_leaves_the_window_and_what_it_draws_unchanged(offscreen_slice_view):
    from viewer.render.warm_up import warm_up

    z, y, x = np.mgrid[:20, :48, :48]
    ct = Volume((x * 30 - 700).astype(np.int16), spacing=(1.0, 1.0, 2.0), modality="CT", units="HU")
    cold_view, cold_render = offscreen_slice_view("axial", size=200)
    warm_view, warm_render = offscreen_slice_view("axial", size=200)
    window = warm_view.renderer.GetRenderWindow()
    warm_up(window, "axial")
    assert window.GetRenderers().GetNumberOfItems() == 1
    assert window.GetShaderCache().GetLastShaderBound() is not None  # shaders were compiled in this context
    for view in (cold_view, warm_view):
        view.set_volume(ct)
    cold, warm = cold_render(), warm_render()
    assert (cold > 0).any(axis=-1).sum() > 1000  # the slice is drawn
    np.testing.assert_array_equal(cold, warm)
