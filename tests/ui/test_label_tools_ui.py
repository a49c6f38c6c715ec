"""Editing tools in a real window on the real CT: disc brush, threshold paint, label tools with preview/undo."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from tests.ui.conftest import view_pixels
from tests.ui.test_main_window import _widget_pos
from viewer.ui.segment_panel import LOCK_COLUMN

pytestmark = pytest.mark.gui

LIVER_IJK = (80, 57, 18)  # (x, y, z) index inside the liver of ct_abdomen_3mm
EDGE_IJK = (91, 37, 6)  # where liver, right kidney and background meet


def _overlay_pixels(rgb: np.ndarray) -> int:
    """Pixels tinted by label 1's red overlay (the grey image has R == G == B)."""
    return int(((rgb[..., 0] - rgb[..., 1]) > 40).sum())


def _distance_to_segment(vol, a, b) -> np.ndarray:
    """World mm from every voxel centre (z, y, x array) to the segment a-b (independent of the brush code)."""
    z, y, x = np.indices(vol.array.shape)
    world = vol.index_to_world(np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1))
    ab = np.asarray(b) - a
    t = np.clip((world - a) @ ab / (ab @ ab), 0, 1)
    return np.linalg.norm(world - (a + t[:, None] * ab), axis=1).reshape(vol.array.shape)


def _stroke(qtbot, view, start, end, steps: int = 6) -> None:
    qtbot.mousePress(view.vtk, Qt.LeftButton, pos=_widget_pos(view, start))
    for t in np.linspace(0, 1, steps)[1:]:
        qtbot.mouseMove(view.vtk, _widget_pos(view, start + t * (end - start)))
    qtbot.mouseRelease(view.vtk, Qt.LeftButton, pos=_widget_pos(view, end))


@pytest.fixture
def ct_window(viewer, open_and_wait, shared_data):
    """The window showing the real 3 mm CT, the cursor (and the axial slice) inside the liver."""
    ct = open_and_wait(viewer, shared_data / "ct_abdomen_3mm.nii.gz")
    viewer.state.set_cursor(ct.index_to_world(LIVER_IJK))
    return viewer, ct


def test_disc_stroke_on_the_axial_view_paints_one_slice(ct_window, qtbot, artifacts):
    viewer, ct = ct_window
    panel, axial = viewer.segment_panel, viewer.views["axial"]
    panel.shape_box.setCurrentIndex(panel.shape_box.findData("disc"))
    panel.radius_box.setValue(6.0)
    viewer.set_tool("paint")
    before = view_pixels(axial)
    centre = ct.index_to_world(LIVER_IJK)
    start, end = centre - [15.0, 0, 0], centre + [15.0, 0, 0]
    _stroke(qtbot, axial, start, end)
    painted = panel.segmentation.array == 1
    assert np.flatnonzero(painted.any(axis=(1, 2))).tolist() == [LIVER_IJK[2]]  # one slice only
    assert len(viewer.session.history) == 1  # one stroke, one undo step
    near = _distance_to_segment(ct, start, end)
    on_slice = np.zeros_like(painted)
    on_slice[LIVER_IJK[2]] = True
    # every voxel of the slice within 6 mm of the stroke (less the mouse's pixel rounding) is painted
    assert not (on_slice & (near <= 5.0) & ~painted).any()
    assert not (painted & (near > 7.0)).any()
    # the overlay covers at least half the painted voxels' screen area (a count, not a fixed pixel number: the
    # view's zoom follows the window size)
    cam = axial.slice_view.renderer.GetActiveCamera()
    mm_per_pixel = 2 * cam.GetParallelScale() / axial.vtk.height()
    voxel_pixels = ct.spacing[0] * ct.spacing[1] / mm_per_pixel ** 2
    assert _overlay_pixels(view_pixels(axial)) > _overlay_pixels(before) + 0.5 * painted.sum() * voxel_pixels
    from viewer.ui.app import grab_window

    grab_window(viewer, artifacts / "disc_brush.png")
    panel.grab().save(str(artifacts / "segment_panel_brush.png"))  # the brush options (docks lie off-screen)


def test_threshold_paint_leaves_out_of_range_voxels(ct_window, qtbot):
    viewer, ct = ct_window
    panel, axial = viewer.segment_panel, viewer.views["axial"]
    viewer.state.set_cursor(ct.index_to_world(EDGE_IJK))
    panel.threshold_check.setChecked(True)
    panel.low_box.setValue(30.0)
    panel.high_box.setValue(200.0)
    panel.radius_box.setValue(12.0)
    viewer.set_tool("paint")
    centre = ct.index_to_world(EDGE_IJK)
    qtbot.mouseClick(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, centre))
    painted = panel.segmentation.array == 1
    in_range = (ct.array >= 30) & (ct.array <= 200)
    near = _distance_to_segment(ct, centre, centre + [1e-6, 0, 0])
    assert painted.any() and not (painted & ~in_range).any()
    assert not (in_range & (near <= 11.0) & ~painted).any()
    assert (~in_range & (near <= 11.0)).sum() > 50  # there were out-of-range voxels under the brush


def test_label_tool_preview_apply_undo_redo_round_trip(ct_window, qtbot, artifacts):
    viewer, ct = ct_window
    tools, axial = viewer.label_tools, viewer.views["axial"]
    viewer.findChild(QDockWidget, "Label tools").raise_()
    before = view_pixels(axial)
    tools.set_tool("threshold")
    tools.low_box.setValue(90.0)
    tools.high_box.setValue(250.0)
    # live preview on the overlay; nothing committed
    qtbot.waitUntil(lambda: _overlay_pixels(view_pixels(axial)) > _overlay_pixels(before) + 200, timeout=5000)
    assert len(viewer.session.history) == 0
    assert viewer.segment_panel.segmentation is None or not viewer.segment_panel.segmentation.array.any()
    previewed = view_pixels(axial)
    qtbot.mouseClick(tools.apply_button, Qt.LeftButton)
    seg = viewer.segment_panel.segmentation
    expected = (ct.array >= 90) & (ct.array <= 250)
    assert np.array_equal(seg.array == 1, expected) and np.array_equal(seg.array > 0, expected)
    assert len(viewer.session.history) == 1
    assert seg.provenance_summary()[1] == {"ai_voxels": 0, "human_voxels": int(expected.sum())}
    assert viewer.session.audit_log()[-1]["author"]["kind"] == "human"
    applied, shown = seg.array.copy(), view_pixels(axial)
    assert np.array_equal(shown, previewed)  # what was previewed is what was applied
    viewer.undo_action.trigger()
    assert not seg.array.any() and _overlay_pixels(view_pixels(axial)) == _overlay_pixels(before)
    viewer.redo_action.trigger()
    assert np.array_equal(seg.array, applied) and np.array_equal(view_pixels(axial), shown)
    from viewer.ui.app import grab_window

    grab_window(viewer, artifacts / "label_tools_threshold.png")
    tools.grab().save(str(artifacts / "label_tools_panel.png"))


def test_region_grow_from_the_crosshair_then_shrink_respects_a_locked_label(ct_window, qtbot):
    viewer, ct = ct_window
    tools, panel = viewer.label_tools, viewer.segment_panel
    tools.preview_check.setChecked(False)
    liver_values = ct.array[LIVER_IJK[2], LIVER_IJK[1], LIVER_IJK[0]]
    tools.set_tool("region_grow")
    tools.low_box.setValue(float(liver_values) - 40)
    tools.high_box.setValue(float(liver_values) + 40)
    assert tools.apply() > 1000
    seg = panel.segmentation
    grown = seg.array == 1
    assert grown[LIVER_IJK[2], LIVER_IJK[1], LIVER_IJK[0]]
    from scipy import ndimage

    inside = (ct.array >= liver_values - 40) & (ct.array <= liver_values + 40)
    components, _ = ndimage.label(inside)
    assert np.array_equal(grown, components == components[LIVER_IJK[2], LIVER_IJK[1], LIVER_IJK[0]])
    # lock label 1 in the table: shrinking it changes nothing
    panel.refresh()
    panel.table.item(0, LOCK_COLUMN).setCheckState(Qt.Checked)
    assert seg.table.labels[1].locked
    tools.set_tool("shrink")
    tools.mm_box.setValue(3.0)
    assert tools.apply() == 0 and len(viewer.session.history) == 1
    panel.table.item(0, LOCK_COLUMN).setCheckState(Qt.Unchecked)  # the table was refreshed
    assert tools.apply() > 0 and len(viewer.session.history) == 2
    viewer.undo_action.trigger()
    assert np.array_equal(seg.array == 1, grown)


def test_fill_between_slices_drawn_with_the_disc_brush_in_the_coronal_view(ct_window, qtbot):
    viewer, ct = ct_window
    panel, tools, coronal = viewer.segment_panel, viewer.label_tools, viewer.views["coronal"]
    panel.shape_box.setCurrentIndex(panel.shape_box.findData("disc"))
    panel.radius_box.setValue(9.0)
    viewer.set_tool("paint")
    i, j, k = LIVER_IJK
    for dj in (-4, 4):  # two coronal slices 24 mm apart
        viewer.state.set_cursor(ct.index_to_world((i, j + dj, k)))
        centre = ct.index_to_world((i, j + dj, k))
        qtbot.mouseClick(coronal.vtk, Qt.LeftButton, pos=_widget_pos(coronal, centre))
    seg = panel.segmentation
    drawn = seg.array.copy()
    assert np.flatnonzero(drawn.any(axis=(0, 2))).tolist() == [j - 4, j + 4]
    assert tools.orientation_box.currentText() == "coronal"  # the view the slices were drawn in
    tools.preview_check.setChecked(False)
    tools.set_tool("interpolate")
    assert tools.apply() > 0 and len(viewer.session.history) == 3
    assert all(seg.array[:, jj].any() for jj in range(j - 4, j + 5))
    assert np.array_equal(seg.array[:, [j - 4, j + 4]], drawn[:, [j - 4, j + 4]])  # drawn slices kept
    viewer.undo_action.trigger()
    assert np.array_equal(seg.array, drawn)
