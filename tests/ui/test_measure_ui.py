"""Measurement tools in a real window: ruler in mm on anisotropic voxels, angle, ROI statistics, table, session."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import view_pixels
from tests.ui.test_main_window import _widget_pos
from viewer.core.measurements import roi_statistics

pytestmark = pytest.mark.gui


def _yellow(rgb: np.ndarray) -> int:
    """Pixels in the measurement colour (yellow: red and green high, blue low)."""
    return int(((rgb[..., 0] > 200) & (rgb[..., 1] > 170) & (rgb[..., 2] < 90)).sum())


def _save_png(rgb: np.ndarray, path) -> None:
    """Save rendered view pixels (rows top to bottom) as a PNG to look at."""
    from PySide6.QtGui import QImage

    data = np.ascontiguousarray(rgb.astype(np.uint8))
    h, w, _ = data.shape
    assert QImage(data.data, w, h, 3 * w, QImage.Format_RGB888).save(str(path))


def _mm_per_pixel(view) -> float:
    """Scene mm covered by one Qt pixel of the view (the precision of a mouse click)."""
    cam = view.slice_view.renderer.GetActiveCamera()
    return 2 * cam.GetParallelScale() / view.vtk.height()


def _drag(qtbot, view, a, b, steps: int = 5) -> None:
    qtbot.mousePress(view.vtk, Qt.LeftButton, pos=_widget_pos(view, a))
    for t in np.linspace(0, 1, steps)[1:]:
        qtbot.mouseMove(view.vtk, _widget_pos(view, a + t * (b - a)))
    qtbot.mouseRelease(view.vtk, Qt.LeftButton, pos=_widget_pos(view, b))


def _on_view_slice(vol, view, i, j_or_k, orientation):
    """World point of in-plane indices on the view's current slice (axial: (x, y); coronal: (x, z))."""
    idx = np.rint(vol.world_to_index(view.slice_view.cursor))
    if orientation == "axial":
        idx[0], idx[1] = i, j_or_k
    else:
        idx[0], idx[2] = i, j_or_k
    return vol.index_to_world(idx)


def test_ruler_on_coronal_view_reads_mm_on_anisotropic_voxels_and_stays_on_its_slice(
        viewer, open_and_wait, demo_study, qtbot, artifacts):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    assert vol.spacing == (1.5, 1.5, 3.0)
    coronal = viewer.views["coronal"]
    viewer.set_tool("ruler")
    before = _yellow(view_pixels(coronal))
    a = _on_view_slice(vol, coronal, 100, 40, "coronal")
    b = _on_view_slice(vol, coronal, 140, 60, "coronal")  # 40 columns x 1.5 mm, 20 slices x 3 mm
    _drag(qtbot, coronal, a, b)
    (m,) = viewer.session.measurements
    expected = np.hypot(40 * 1.5, 20 * 3.0)  # 84.85 mm; with isotropic 1.5 mm it would read 67.08
    assert m.kind == "ruler" and m.orientation == "coronal"
    assert m.values["length_mm"] == pytest.approx(expected, abs=3 * _mm_per_pixel(coronal))
    overlay = viewer.measure_tool.overlays["coronal"]
    assert overlay.texts() == [m.text] and m.text.endswith(" mm")
    assert viewer.measure_tool.overlays["axial"].texts() == []  # drawn on the coronal plane only
    shown = view_pixels(coronal)
    assert _yellow(shown) > before + 50  # the line and its text are drawn
    _save_png(shown, artifacts / "ruler_coronal.png")
    coronal.scroll(1)
    assert overlay.texts() == [] and _yellow(view_pixels(coronal)) <= before + 5  # off its slice: hidden
    coronal.scroll(-1)
    assert overlay.texts() == [m.text]
    assert viewer.measurement_panel.table.rowCount() == 1
    assert viewer.measurement_panel.table.item(0, 3).text() == m.text


def test_roi_statistics_equal_roi_statistics_on_the_drawn_corners(viewer, open_and_wait, demo_study, qtbot,
                                                                   artifacts):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    tol = 2 * _mm_per_pixel(axial)
    corners = {"rectangle": ((70, 110), (110, 140)), "ellipse": ((150, 150), (190, 180))}
    for shape, (ij0, ij1) in corners.items():
        viewer.set_tool(shape)
        a, b = _on_view_slice(vol, axial, *ij0, "axial"), _on_view_slice(vol, axial, *ij1, "axial")
        _drag(qtbot, axial, a, b)
        m = viewer.session.measurements[-1]
        assert np.allclose(m.points_mm[0], a, atol=tol) and np.allclose(m.points_mm[1], b, atol=tol)
        expected = roi_statistics(vol, m.points_mm[0], m.points_mm[1], m.kind, "axial")
        assert m.values == expected and m.values["units"] == "HU"
    rect, ell = viewer.session.measurements
    # the voxel centres between the corners as drawn (a click lands within a pixel of its target, here near
    # 40 x 30 voxels apart): a span of L voxels holds floor(L) or floor(L) + 1 centres
    span = vol.world_to_index(np.asarray(rect.points_mm[1])) - vol.world_to_index(np.asarray(rect.points_mm[0]))
    cols, rows = np.floor(np.abs(span[:2]))
    assert abs(cols - 40) <= 1 and abs(rows - 30) <= 1
    assert cols * rows <= rect.values["voxels"] <= (cols + 1) * (rows + 1)
    assert rect.values["area_mm2"] == pytest.approx(rect.values["voxels"] * 1.5 * 1.5)
    assert ell.values["voxels"] == pytest.approx(np.pi / 4 * 40 * 30, rel=0.1)
    texts = viewer.measure_tool.overlays["axial"].texts()
    assert texts == [rect.text, ell.text] and "HU" in texts[0] and "mm²" in texts[1]
    assert _yellow(view_pixels(axial)) > 200
    quarter = axial.width()
    viewer.set_layout("single")
    qtbot.waitUntil(lambda: axial.width() > 1.5 * quarter)  # the view takes the whole central area
    viewer.set_tool("ruler")
    _drag(qtbot, axial, _on_view_slice(vol, axial, 60, 60, "axial"), _on_view_slice(vol, axial, 180, 60, "axial"))
    viewer.set_tool("angle")
    for i, j in ((60, 200), (100, 170), (140, 200)):
        qtbot.mouseClick(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, _on_view_slice(vol, axial, i, j, "axial")))
    _save_png(view_pixels(axial), artifacts / "measurements.png")


def test_angle_takes_three_clicks(viewer, open_and_wait, demo_study, qtbot):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    viewer.set_tool("angle")
    points = [_on_view_slice(vol, axial, i, j, "axial") for i, j in ((90, 100), (130, 100), (130, 60))]
    for n, p in enumerate(points):
        assert viewer.session.measurements == []  # not done before the third click
        qtbot.mouseClick(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, p))
        assert len(viewer.measure_tool.overlays["axial"].texts()) == 0 if n < 2 else 1
    (m,) = viewer.session.measurements
    assert m.kind == "angle" and m.values["angle_deg"] == pytest.approx(90, abs=2)
    assert m.text.endswith("°")


def test_table_deletes_and_session_restores_measurements(viewer, open_and_wait, demo_study, qtbot, tmp_path):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    viewer.set_tool("ruler")
    for j in (80, 120):
        _drag(qtbot, axial, _on_view_slice(vol, axial, 60, j, "axial"), _on_view_slice(vol, axial, 160, j, "axial"))
    saved = list(viewer.session.measurements)
    assert len(saved) == 2
    viewer.save_session(str(tmp_path / "session"))
    panel = viewer.measurement_panel
    panel.table.selectRow(0)
    qtbot.mouseClick(panel.delete_button, Qt.LeftButton)
    assert viewer.session.measurements == saved[1:] and panel.table.rowCount() == 1
    assert len(viewer.measure_tool.overlays["axial"].texts()) == 1
    viewer.session.measurements.clear()
    viewer.measure_tool.refresh()
    assert viewer.measure_tool.overlays["axial"].texts() == []
    assert viewer.open_session(str(tmp_path / "session"))
    assert viewer.session.measurements == saved and panel.table.rowCount() == 2
    assert viewer.state.volume is not vol  # the image was re-opened from its saved path
    assert viewer.measure_tool.overlays["axial"].texts() == [m.text for m in saved]
    assert not viewer.open_session(str(tmp_path))  # no session.json there: reported, nothing changes
    assert "session.json" in viewer.statusBar().currentMessage() and viewer.session.measurements == saved
