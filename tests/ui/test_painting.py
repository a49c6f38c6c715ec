"""Hand editing in a real window: a mouse stroke paints a sphere in world mm, undo/redo restore pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import view_pixels
from tests.ui.test_main_window import _widget_pos

pytestmark = pytest.mark.gui


def _overlay_pixels(rgb: np.ndarray) -> int:
    """Pixels tinted by label 1's red overlay (the grey image has R == G == B)."""
    return int(((rgb[..., 0] - rgb[..., 1]) > 40).sum())


def test_mouse_stroke_paints_one_undo_step_and_overlay_follows(viewer, open_and_wait, demo_study, qtbot, artifacts):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    viewer.segment_panel.radius_box.setValue(6.0)
    viewer.set_tool("paint")
    before = view_pixels(axial)
    z = axial.slice_view.slice_position_mm
    start, end = np.array([-40.0, 0.0, z]), np.array([20.0, 0.0, z])
    qtbot.mousePress(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, start))
    for t in np.linspace(0, 1, 8)[1:]:
        qtbot.mouseMove(axial.vtk, _widget_pos(axial, start + t * (end - start)))
    qtbot.mouseRelease(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, end))
    seg = viewer.segment_panel.segmentation
    painted = seg.array.copy()
    assert len(viewer.session.history) == 1  # one stroke, one undo step
    # voxels within 6 mm of the stroke's start are painted; far from it nothing is
    assert seg.array[tuple(np.rint(vol.world_to_index(start)).astype(int)[::-1])] == 1
    assert seg.array[tuple(np.rint(vol.world_to_index(start + [0, 30.0, 0])).astype(int)[::-1])] == 0
    # the sphere reaches neighbouring slices (3D brush, slices 3 mm apart)
    k = int(np.rint(vol.world_to_index(start))[2])
    assert painted[k + 1].any() and painted[k - 1].any()
    after = view_pixels(axial)
    assert _overlay_pixels(after) > 200 + _overlay_pixels(before)
    from viewer.ui.app import grab_window

    qtbot.wait(100)  # the label table lays out its new row on a timer
    grab_window(viewer, artifacts / "painting.png")
    viewer.undo_action.trigger()  # Edit > Undo (Ctrl+Z)
    assert not seg.array.any()
    assert _overlay_pixels(view_pixels(axial)) == _overlay_pixels(before)
    viewer.segment_panel.redo()
    assert np.array_equal(seg.array, painted)
    assert np.array_equal(view_pixels(axial), after)
    assert seg.provenance_summary()[1]["human_voxels"] == int((painted == 1).sum())


def test_erase_tool_removes_label(viewer, open_and_wait, demo_study, qtbot):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    seg = viewer.segment_panel.new_segmentation("erase test")
    centre = np.array([0.0, 0.0, axial.slice_view.slice_position_mm])
    viewer.session.paint(seg, 1, centre, 10)
    viewer.set_tool("erase")
    viewer.segment_panel.radius_box.setValue(4.0)
    qtbot.mouseClick(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, centre))
    assert seg.array[tuple(np.rint(vol.world_to_index(centre)).astype(int)[::-1])] == 0
    assert seg.array.any()


def test_label_table_shows_statistics_hides_labels_and_exports_csv(viewer, open_and_wait, demo_study, tmp_path):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    panel = viewer.segment_panel
    seg = panel.new_segmentation("table")
    centre = np.array([-60.0, -5.0, axial.slice_view.slice_position_mm])  # inside the phantom liver
    viewer.session.paint(seg, 1, centre, 10)
    viewer.state.labels_edited.emit()
    panel._refresh()
    assert panel.table.rowCount() == 1
    mask = seg.array == 1
    assert int(panel.table.item(0, 3).text()) == mask.sum()
    assert float(panel.table.item(0, 5).text()) == pytest.approx(vol.array[mask].mean(), abs=0.05)
    assert int(panel.table.item(0, 7).text()) == mask.sum()  # all by hand
    shown = _overlay_pixels(view_pixels(axial))
    panel.table.item(0, 0).setCheckState(Qt.Unchecked)
    assert shown > 100 and _overlay_pixels(view_pixels(axial)) == 0
    panel._export_csv(str(tmp_path / "stats.csv"))
    assert "volume_ml" in (tmp_path / "stats.csv").read_text()


def _brush_pixels(rgb: np.ndarray) -> np.ndarray:
    """(row, col) of the brush outline's yellow pixels (orientation letters are orange, text pale)."""
    return np.argwhere((rgb[..., 0] > 240) & (rgb[..., 1] > 240) & (rgb[..., 2] < 110))


def test_brush_outline_follows_the_mouse_with_the_radius_in_mm(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    viewer.segment_panel.radius_box.setValue(20.0)
    centre = axial.slice_view.cursor + [10.0, 0.0, 0.0]
    qtbot.mouseMove(axial.vtk, _widget_pos(axial, centre))
    assert len(_brush_pixels(view_pixels(axial))) == 0  # crosshair tool: no brush
    viewer.set_tool("paint")
    qtbot.mouseMove(axial.vtk, _widget_pos(axial, centre + [1.0, 0, 0]))
    qtbot.mouseMove(axial.vtk, _widget_pos(axial, centre))
    ring = _brush_pixels(view_pixels(axial))
    (x0, _), (x1, _) = (axial.slice_view.world_to_display(centre + [d, 0, 0]) for d in (-20.0, 20.0))
    assert abs((ring[:, 1].max() - ring[:, 1].min()) - abs(x1 - x0)) <= 3  # 40 mm wide on screen
    assert abs((ring[:, 0].max() - ring[:, 0].min()) - abs(x1 - x0)) <= 3  # and as tall (a circle)
    axial._leaveEvent(None)
    assert len(_brush_pixels(view_pixels(axial))) == 0


def test_label_opacity_typed_in_the_table_changes_the_fill(viewer, open_and_wait, demo_study):
    from viewer.ui.segment_panel import OPACITY_COLUMN

    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    panel = viewer.segment_panel
    seg = panel.new_segmentation("opacity")
    centre = np.array([-60.0, -5.0, axial.slice_view.slice_position_mm])
    viewer.session.paint(seg, 1, centre, 12)
    viewer.state.labels_edited.emit()
    panel._refresh()
    x, y = (int(round(v)) for v in axial.slice_view.world_to_display(centre))

    def centre_pixel():
        rgb = view_pixels(axial)
        return rgb[rgb.shape[0] - 1 - y, x]

    blended = centre_pixel()
    panel.table.item(0, OPACITY_COLUMN).setText("1")
    assert seg.table.labels[1].opacity == 1.0
    assert tuple(centre_pixel()) == seg.table.labels[1].color != tuple(blended)  # opaque: the label colour
    panel.table.item(0, OPACITY_COLUMN).setText("0")
    grey = centre_pixel()
    assert grey[0] == grey[1] == grey[2]  # transparent fill: the CT shows through
    panel.table.item(0, OPACITY_COLUMN).setText("lots")
    assert panel.table.item(0, OPACITY_COLUMN).text() == "0.00"  # not a number: value kept
