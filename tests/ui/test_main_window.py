"""The viewer in a real window: load, scroll, linked crosshair, W/L, layouts, errors, screenshot, startup."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import view_pixels

pytestmark = pytest.mark.gui


def _widget_pos(view, world) -> QPoint:
    """Qt widget position of a world point in an MprView."""
    x, y = view.slice_view.world_to_display(world)
    ratio = view.vtk.devicePixelRatioF()
    return QPoint(int(round(x / ratio)), int(round(view.vtk.height() - 1 - y / ratio)))


def test_idle_start_up_compiles_the_slice_views_shaders_in_their_own_windows(viewer, qtbot):
    """The first study opened is drawn without creating contexts or compiling shaders (viewer.render.warm_up)."""
    windows = [v.vtk.GetRenderWindow() for v in viewer.views.values()]
    qtbot.waitUntil(lambda: all(w.GetShaderCache().GetLastShaderBound() is not None for w in windows), timeout=10000)
    assert all(w.GetRenderers().GetNumberOfItems() == 1 for w in windows)
    assert viewer.placeholder_text() is not None  # nothing shown yet: the warm-up drew nothing the user sees


def test_open_shows_the_series_in_all_views(viewer, open_and_wait, demo_study, artifacts):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    assert vol.modality == "CT" and viewer.state.volume is vol
    for name, view in viewer.views.items():
        px = view_pixels(view)
        assert px.std() > 20, f"{name} view looks blank"
    assert viewer.browser.topLevelItemCount() == 1
    viewer.grab_screenshot = None
    from viewer.ui.app import grab_window

    grab_window(viewer, artifacts / "main_window.png")


def test_wheel_and_keys_scroll_slices_and_change_pixels(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    k0 = axial.slice_view.slice_index
    before = view_pixels(axial)
    pos = QPointF(axial.vtk.width() / 2, axial.vtk.height() / 2)
    for _ in range(5):
        event = QWheelEvent(pos, axial.vtk.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120), Qt.NoButton,
                            Qt.NoModifier, Qt.NoScrollPhase, False)
        QApplication.sendEvent(axial.vtk, event)
    assert axial.slice_view.slice_index == k0 + 5
    assert not np.array_equal(before, view_pixels(axial))
    # the linked cursor moved along z: the coronal and sagittal views show its new height
    assert viewer.state.cursor[2] == pytest.approx(axial.slice_view.slice_position_mm)
    qtbot.keyClick(axial.vtk, Qt.Key_PageDown)
    qtbot.keyClick(axial.vtk, Qt.Key_Down)
    assert axial.slice_view.slice_index == k0 + 3


def test_click_sets_the_same_world_point_in_all_views(viewer, open_and_wait, demo_study, qtbot):
    vol = open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    lesion = np.array([-72.0, -20.0, 0.0])  # the liver lesion of the demo phantom (truth.json)
    target = lesion.copy()
    target[2] = axial.slice_view.slice_position_mm
    qtbot.mouseClick(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, target))
    clicked = viewer.state.cursor
    half_voxel = np.asarray(vol.spacing) / 2 + 1
    assert np.all(np.abs(clicked[:2] - target[:2]) <= half_voxel[:2] * 2)
    for name, view in viewer.views.items():
        assert np.allclose(view.slice_view.cursor, clicked), name
    # coronal and sagittal now slice through the clicked point
    cor, sag = viewer.views["coronal"].slice_view, viewer.views["sagittal"].slice_view
    assert abs(cor.slice_position_mm - clicked[1]) <= vol.spacing[1]
    assert abs(sag.slice_position_mm - clicked[0]) <= vol.spacing[0]
    # and the corner probe reports the HU under the mouse
    assert "HU" in axial.slice_view.probe(clicked)


def test_window_level_by_preset_and_by_drag(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    abdomen = view_pixels(axial)
    viewer.histogram.select_preset("ct_lung")
    assert viewer.state.window == 1500 and viewer.state.level == -600
    lung = view_pixels(axial)
    assert lung.mean() > abdomen.mean()  # lung window brightens air and fat
    assert axial.slice_view.window_level == (1500, -600)
    # W/L mode: left-drag to the right widens the window
    viewer.set_tool("window_level")
    start = QPoint(axial.vtk.width() // 2, axial.vtk.height() // 2)
    qtbot.mousePress(axial.vtk, Qt.LeftButton, pos=start)
    qtbot.mouseMove(axial.vtk, start + QPoint(60, 0))
    qtbot.mouseRelease(axial.vtk, Qt.LeftButton, pos=start + QPoint(60, 0))
    assert viewer.state.window > 1500
    low, high = viewer.histogram.region.getRegion()
    assert high - low == pytest.approx(viewer.state.window)


def test_layouts_and_double_click_maximise(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    viewer.set_layout("1x3")
    assert not viewer.view3d.isVisible() and all(v.isVisible() for v in viewer.views.values())
    viewer.set_layout("2x2")
    assert viewer.view3d.isVisible()
    qtbot.mouseDClick(viewer.views["coronal"].vtk, Qt.LeftButton, pos=QPoint(20, 20))
    assert viewer.views["coronal"].isVisible() and not viewer.views["axial"].isVisible()
    qtbot.mouseDClick(viewer.views["coronal"].vtk, Qt.LeftButton, pos=QPoint(20, 20))
    assert viewer.views["axial"].isVisible()


def test_3d_view_renders_the_volume(viewer, open_and_wait, demo_study):
    open_and_wait(viewer, demo_study.ct_dir)
    px = view_pixels(viewer.view3d)
    assert (px.sum(axis=2) > 150).mean() > 0.005


def test_corrupt_file_reports_error_and_window_stays_up(viewer, pydicom_file, qtbot, open_and_wait, demo_study,
                                                       monkeypatch):
    import viewer.ui.main_window as mw

    ct = open_and_wait(viewer, demo_study.ct_dir)
    shown = []
    monkeypatch.setattr(mw, "show_error", lambda parent, message: shown.append(message))
    viewer.show_error_dialogs = True
    with qtbot.waitSignal(viewer.load_failed, timeout=10000) as blocker:
        viewer.open_path(str(pydicom_file("MR_truncated.dcm")))
    assert "truncated" in blocker.args[0] and "MR_truncated.dcm" in blocker.args[0]
    assert shown == [blocker.args[0]]  # the user saw the one-line error in a dialog
    assert viewer.isVisible() and viewer.state.volume is ct  # what the user had is still shown


def test_segmentation_overlay_from_file(viewer, open_and_wait, demo_study):
    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    plain = view_pixels(axial)
    viewer.open_labels(str(demo_study.labels))
    coloured = view_pixels(axial)
    assert np.abs(coloured - plain).sum(axis=2).astype(bool).mean() > 0.05


def test_screenshot_command(tmp_path):
    """``radview --demo --screenshot`` writes the rendered window (its wall time: benchmarks/bench_gui.py)."""
    out = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, "-m", "viewer", "--demo", "--screenshot", str(out)], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    from PIL import Image

    img = np.asarray(Image.open(out).convert("RGB")).astype(np.int16)
    assert img.shape[0] > 400 and img.std() > 20


def test_gui_opens_without_importing_torch_or_monai():
    """The window shows before any model is needed (start-up time: benchmarks/bench_gui.py)."""
    code = (
        "import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
        "from viewer.ui.main_window import MainWindow; w = MainWindow(); w.show(); app.processEvents();"
        "print('torch' in sys.modules, 'monai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_drag_and_drop_opens_and_recent_files_remember(viewer, qtbot, demo_study):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    from viewer.ui.recent_files import recent_files

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_study.ct_dir))])
    event = QDropEvent(QPointF(200, 200), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(viewer.load_finished, timeout=30000) as blocker:
        viewer.dropEvent(event)
    assert blocker.args[0].modality == "CT"
    assert recent_files()[0] == str(demo_study.ct_dir.resolve())
    viewer._fill_recent_menu()
    assert viewer.recent_menu.actions()[0].text() == str(demo_study.ct_dir.resolve())


def test_3d_view_shows_label_surfaces(viewer, open_and_wait, demo_study):
    open_and_wait(viewer, demo_study.ct_dir)
    view = viewer.view3d
    without = view_pixels(view)
    viewer.open_labels(str(demo_study.labels))
    with_surfaces = view_pixels(view)
    changed = np.abs(with_surfaces - without).sum(axis=2) > 30
    assert changed.mean() > 0.02  # coloured organ surfaces appear in front of the bones


def test_window_fits_a_laptop_screen(viewer):
    """Docked panels scroll: the window never needs more than a 1366x768 screen."""
    hint = viewer.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768, (hint.width(), hint.height())
