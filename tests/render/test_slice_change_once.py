"""One slice change redraws the layers once: the GUI's scroll moves the slice, then echoes the new cursor back."""

from __future__ import annotations

import numpy as np

from viewer.core.volume import Volume


def test_cursor_echo_after_scroll_does_not_redraw_again_but_a_new_volume_does(offscreen_slice_view):
    view, _ = offscreen_slice_view("axial", size=128)
    vol = Volume(np.arange(20 * 32 * 32, dtype=np.int16).reshape(20, 32, 32), spacing=(1.0, 1.0, 2.0))
    view.set_volume(vol)
    redraws = []
    view.geometry.slice_changed.connect(lambda: redraws.append(view.slice_index))
    cursor = view.scroll(3)  # what MPRView.scroll does: scroll, then ViewerState echoes the cursor to every view
    view.set_cursor(cursor.copy())
    assert redraws == [13]
    view.set_cursor(cursor + [5.0, 0.0, 0.0])  # the crosshair moves within the slice: redraw
    assert redraws == [13, 13]
    flipped = vol.with_array(vol.array[::-1].copy())
    view.set_volume(flipped)  # same grid and centre (the cursor does not move), new voxels: redraw
    assert len(redraws) == 3
    np.testing.assert_array_equal(view.image.plane, view.geometry.plane(flipped.array))
