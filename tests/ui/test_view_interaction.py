"""Mouse and keyboard in real MPR / 3D views: arrows, right-drag zoom, middle-drag pan, reset, 3D quality while
rotating, histogram W/L drag, orientation letters, and CT presets and HU for a CT NIfTI."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import view_pixels

pytestmark = pytest.mark.gui


def _drag(widget, button, start: QPoint, delta: QPoint, steps: int = 6) -> None:
    """Press ``button`` at ``start``, move by ``delta`` in ``steps`` mouse-move events (button held), release."""
    def send(kind, pos, buttons):
        event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.NoModifier)
        QApplication.sendEvent(widget, event)

    send(QMouseEvent.MouseButtonPress, start, button)
    for i in range(1, steps + 1):
        send(QMouseEvent.MouseMove, start + delta * i / steps, button)
    send(QMouseEvent.MouseButtonRelease, start + delta, Qt.NoButton)


def _centre(view) -> QPoint:
    return QPoint(view.vtk.width() // 2, view.vtk.height() // 2)


def test_left_and_right_arrows_scroll_slices(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    sagittal = viewer.views["sagittal"]
    k0 = sagittal.slice_view.slice_index
    before = view_pixels(sagittal)
    for _ in range(4):
        qtbot.keyClick(sagittal.vtk, Qt.Key_Right)
    assert sagittal.slice_view.slice_index == k0 + 4
    assert not np.array_equal(before, view_pixels(sagittal))
    assert viewer.state.cursor[0] == pytest.approx(sagittal.slice_view.slice_position_mm)
    qtbot.keyClick(sagittal.vtk, Qt.Key_Left)
    assert sagittal.slice_view.slice_index == k0 + 3


def test_right_drag_zooms_middle_drag_pans_and_r_resets(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    camera = axial.slice_view.renderer.GetActiveCamera()
    scale0, focal0 = camera.GetParallelScale(), np.array(camera.GetFocalPoint())
    fitted = view_pixels(axial)
    body_fitted = (fitted.sum(axis=2) > 60).mean()
    _drag(axial.vtk, Qt.RightButton, _centre(axial), QPoint(0, -60))  # drag up on screen: zoom in
    assert camera.GetParallelScale() < scale0 * 0.8
    zoomed = view_pixels(axial)
    assert (zoomed.sum(axis=2) > 60).mean() > body_fitted  # the body fills more of the view
    scale1 = camera.GetParallelScale()
    _drag(axial.vtk, Qt.MiddleButton, _centre(axial), QPoint(50, 0))
    focal1 = np.array(camera.GetFocalPoint())
    assert focal1[0] < focal0[0] - 10 and camera.GetParallelScale() == pytest.approx(scale1)  # image followed
    assert not np.array_equal(zoomed, view_pixels(axial))
    qtbot.keyClick(axial.vtk, Qt.Key_R)
    assert camera.GetParallelScale() == pytest.approx(scale0)
    assert np.allclose(camera.GetFocalPoint(), focal0)
    changed = np.abs(view_pixels(axial) - fitted).sum(axis=2) > 0
    assert changed.mean() < 0.01  # the fitted view again (only the probe text under the mouse differs)


def test_3d_rotation_is_coarse_while_dragging_and_full_on_release(viewer, open_and_wait, demo_study):
    open_and_wait(viewer, demo_study.ct_dir)
    view = viewer.view3d
    mapper = view.volume_view._mapper
    full = mapper.GetSampleDistance(), mapper.GetImageSampleDistance()
    during = []
    view.vtk.GetRenderWindow().GetInteractor().AddObserver(
        "InteractionEvent", lambda *_: during.append((mapper.GetSampleDistance(), mapper.GetImageSampleDistance())))
    before = view_pixels(view)
    _drag(view.vtk, Qt.LeftButton, _centre(view), QPoint(80, 0), steps=8)
    assert during, "the drag did not rotate the 3D view"
    assert all(d[0] > full[0] and d[1] > full[1] for d in during)  # coarser rays while the camera moves
    assert (mapper.GetSampleDistance(), mapper.GetImageSampleDistance()) == full  # full quality on release
    assert not np.array_equal(before, view_pixels(view))  # rotated


def test_dragging_the_histogram_region_sets_window_level(viewer, open_and_wait, demo_study, qtbot):
    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    before = view_pixels(axial)
    plot = viewer.histogram.plot
    vb = plot.getPlotItem().getViewBox()
    region = viewer.histogram.region
    lo, hi = region.getRegion()
    # drag the region's right edge (a real mouse drag on the plot) from hi to hi + 400 HU
    y_mid = sum(vb.viewRange()[1]) / 2
    start = plot.mapFromScene(vb.mapViewToScene(QPointF(hi, y_mid)))
    end = plot.mapFromScene(vb.mapViewToScene(QPointF(hi + 400, y_mid)))
    widget = plot.viewport()
    qtbot.mousePress(widget, Qt.LeftButton, pos=start)
    for i in range(1, 9):
        qtbot.mouseMove(widget, start + (end - start) * i / 8)
    qtbot.mouseRelease(widget, Qt.LeftButton, pos=end)
    new_lo, new_hi = region.getRegion()
    assert new_lo == pytest.approx(lo, abs=1) and new_hi > hi + 300
    assert viewer.state.window == pytest.approx(new_hi - new_lo)
    assert viewer.state.level == pytest.approx((new_hi + new_lo) / 2)
    assert axial.slice_view.window_level == (viewer.state.window, viewer.state.level)
    assert not np.array_equal(before, view_pixels(axial))  # wider window: the image changed


def _letter_box(view, side: str) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) display pixels (origin bottom-left) of an orientation letter's drawn box."""
    actor = view.slice_view.orientation_layer.letters[side]
    renderer = view.slice_view.renderer
    box = [0.0] * 4
    actor.GetBoundingBox(renderer, box)  # relative to the actor's anchor, justification applied
    x, y = actor.GetPositionCoordinate().GetComputedDisplayValue(renderer)
    return x + box[0], y + box[2], x + box[1], y + box[3]


def test_orientation_letters_clear_the_corner_text_and_stand_out_on_white(viewer, open_and_wait, demo_study,
                                                                         artifacts):
    open_and_wait(viewer, demo_study.pet_dir)
    assert viewer.state.colormap == "gray_inverse"
    from viewer.render.layers.annotations import BOTTOM_LETTER_OFFSET_PX

    for name in ("coronal", "sagittal"):
        view = viewer.views[name]
        view_pixels(view)
        x0, y0, x1, y1 = _letter_box(view, "bottom")
        # above the corner text line (at most 14 px high, drawn from the bottom edge)
        assert y0 >= BOTTOM_LETTER_OFFSET_PX - 6 > 14
        assert view.slice_view.orientation_layer.letters["bottom"].GetInput() == "I"
    axial = viewer.views["axial"]
    px = view_pixels(axial)
    h = px.shape[0]
    x0, y0, x1, y1 = _letter_box(axial, "left")  # "R" drawn over the white PET background
    patch = px[h - 1 - int(y1): h - int(y0), int(x0): int(x1) + 1]
    assert patch.sum(axis=2).min() < 300  # a dark backing box behind the yellow letter
    assert (patch[..., 0] > 180).any() and (patch[..., 2] < 120).any()  # and the yellow letter itself
    from viewer.ui.app import grab_window

    grab_window(viewer, artifacts / "pet_letters.png")


def test_study_browser_columns_fit_the_dock(viewer, open_and_wait, demo_study):
    open_and_wait(viewer, demo_study.ct_dir)
    browser = viewer.browser
    header = browser.header()
    visible = browser.viewport().width()
    for col in (1, 2, 3):
        assert header.sectionViewportPosition(col) + 20 < visible, f"column {col} starts outside the dock"
    item = browser.findItems("Demo CT", Qt.MatchExactly | Qt.MatchRecursive, 3)[0]
    assert browser.fontMetrics().horizontalAdvance(item.text(2)) < header.sectionSize(2)


def test_ct_nifti_gets_ct_presets_and_hu_probe(viewer, open_and_wait, shared_data, qtbot):
    vol = open_and_wait(viewer, shared_data / "ct_abdomen_3mm.nii.gz")
    assert vol.modality == "CT" and vol.units == "HU"
    names = [viewer.histogram.presets.itemData(i) for i in range(viewer.histogram.presets.count())]
    for preset in ("ct_brain", "ct_abdomen", "ct_lung", "ct_bone", "ct_mediastinum"):
        assert preset in names
    axial = viewer.views["axial"]
    qtbot.mouseMove(axial.vtk, _centre(axial))
    assert " HU  (" in axial.slice_view.corner.GetText(2)
    assert "look like CT in HU" in viewer.statusBar().currentMessage()  # the reader's warning is shown
    from viewer.core.presets import get_preset

    bone = get_preset("ct_bone")
    viewer.histogram.select_preset("ct_bone")
    assert (viewer.state.window, viewer.state.level) == (bone.window, bone.level)
