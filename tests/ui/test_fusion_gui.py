"""Fusion and registration in real windows: PET colours over CT on the lesions (before / after registration),
panel controls, registration run / inspect / accept / undo / cancel, transform files, side-by-side linked
cursors and rotating MIP, landmark clicks, fused sessions reopened, and the demo opening fused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import view_pixels
from viewer.core.phantom import PET_TO_CT
from viewer.core.registration.synthetic import phantom_pet_truth

pytestmark = pytest.mark.gui
#: The overlay used for measuring: hot over SUV 0-8, opaque, uptake below SUV 2.5 (liver 2.0) not drawn.
#: How far (mm) the centroid of the PET colour on screen may lie from a lesion's centre: half a 4 mm PET voxel
#: (the overlay is drawn at the PET's resolution) plus one screen pixel (1.2 mm in the test window's views).
TOLERANCE_MM = 2.5
MEASURE = {"colormap": "hot", "window": (0.0, 8.0), "threshold": 2.5, "opacity": 1.0, "blend": "alpha"}


def true_ct_to_pet(points) -> np.ndarray:
    """The demo PET's documented offset (PET p -> CT R p + t) as fixed (CT) -> moving (PET) points."""
    return phantom_pet_truth({"pet_to_ct": PET_TO_CT}).fixed_to_moving(points)


@pytest.fixture
def fused(viewer, open_and_wait, demo_study, qtbot):
    """The viewer showing the demo CT with the demo PET fused over it (not registered yet)."""
    open_and_wait(viewer, demo_study.ct_dir)
    with qtbot.waitSignal(viewer.fusion_control.fused, timeout=30000):
        viewer.fusion_control.load_moving(str(demo_study.pet_dir))
    viewer.fusion.set_display(**MEASURE)
    return viewer


def liver_lesion(demo_study) -> np.ndarray:
    return np.array(json.loads(demo_study.truth.read_text())["lesions"][0]["center_mm"])


def register_and_accept(viewer, qtbot, method: str = "rigid"):
    panel = viewer.registration_panel
    with qtbot.waitSignal(panel.registered, timeout=60000) as blocker:
        panel.run(method)
    panel.accept()
    return blocker.args[0]


def coloured(pixels: np.ndarray) -> np.ndarray:
    """Pixels of the hot colour map (red clearly above blue), not grey CT."""
    return (pixels[..., 0] - pixels[..., 2]) > 60


def colour_centre_mm(view, centre_world) -> tuple[float, int]:
    """(distance in mm between the centroid of the coloured pixels within 30 mm of ``centre_world`` and its
    display position, number of those pixels) in an MPR view."""
    pixels = view_pixels(view)
    h = pixels.shape[0]
    x0, y0 = view.slice_view.world_to_display(centre_world)
    px_per_mm = max(np.hypot(*np.subtract(view.slice_view.world_to_display(np.add(centre_world, step)), (x0, y0)))
                    for step in np.eye(3) * 10.0) / 10.0  # along the view's in-plane axes
    rows, cols = np.indices(pixels.shape[:2])
    near = np.hypot(cols - x0, (h - 1 - rows) - y0) < 30 * px_per_mm
    mask = coloured(pixels) & near
    if not mask.any():
        return np.inf, 0
    dx, dy = cols[mask].mean() - x0, (h - 1 - rows[mask]).mean() - y0
    return float(np.hypot(dx, dy) / px_per_mm), int(mask.sum())


def click(view, world) -> None:
    """A left click in an MPR view at the display position of ``world``."""
    x, y = view.slice_view.world_to_display(world)
    ratio = view.vtk.devicePixelRatioF()
    pos = QPointF(x / ratio, view.vtk.height() - 1 - y / ratio)
    for kind, buttons in ((QMouseEvent.MouseButtonPress, Qt.LeftButton), (QMouseEvent.MouseButtonRelease,
                                                                          Qt.NoButton)):
        event = QMouseEvent(kind, pos, view.vtk.mapToGlobal(pos.toPoint()), Qt.LeftButton, buttons, Qt.NoModifier)
        QApplication.sendEvent(view.vtk, event)


def test_pet_colours_sit_on_the_lesions_once_registered(fused, qtbot, demo_study, artifacts):
    from viewer.ui.app import grab_window

    viewer = fused
    views = ("axial", "coronal", "sagittal")
    lesions = [np.array(les["center_mm"]) for les in json.loads(demo_study.truth.read_text())["lesions"]]

    def errors() -> list[dict]:
        found = []
        for centre in lesions:
            viewer.state.set_cursor(centre)
            found.append({name: colour_centre_mm(viewer.views[name], centre) for name in views})
        return found

    before = errors()
    register_and_accept(viewer, qtbot)
    after = errors()
    for lesion, was, now in zip(lesions, before, after, strict=True):
        assert max(err for err, _ in was.values()) > 4.0, (lesion, was)  # the demo's offset shows before
        for name, (err, pixels) in now.items():
            assert pixels > 20, f"{name}: no PET colour on the lesion at {lesion}"
            assert err < TOLERANCE_MM, f"{name}: PET colour {err:.1f} mm off the lesion at {lesion}"
    liver = lesions[0]
    viewer.state.set_cursor(liver)
    grab_window(viewer, artifacts / "fusion_lesions.png")
    away = liver + (40.0, 0.0, 0.0)  # 40 mm to the patient's left: liver, SUV 2.0, below the threshold
    x, y = viewer.views["axial"].slice_view.world_to_display(away)
    pixels = view_pixels(viewer.views["axial"])
    assert not coloured(pixels)[pixels.shape[0] - 1 - int(round(y)), int(round(x))]


def test_display_controls_change_the_overlay(fused, demo_study):
    viewer = fused
    panel = viewer.fusion_panel
    axial = viewer.views["axial"]
    viewer.state.set_cursor(liver_lesion(demo_study))
    panel.visible_box.setChecked(False)
    assert not axial.slice_view.fusion_style.visible
    plain = view_pixels(axial)
    panel.visible_box.setChecked(True)
    hot = view_pixels(axial)
    assert np.abs(hot - plain).sum(axis=2).astype(bool).sum() > 50
    panel.colormap_box.setCurrentText("rainbow")
    assert viewer.fusion.display.colormap == "rainbow" and axial.slice_view.fusion_style.colormap == "rainbow"
    rainbow = view_pixels(axial)
    assert np.abs(rainbow - hot).sum(axis=2).astype(bool).sum() > 50
    panel.threshold_spin.setValue(20.0)  # above every SUV: nothing drawn
    np.testing.assert_array_equal(view_pixels(axial), plain)
    panel.threshold_spin.setValue(2.5)
    panel.high_spin.setValue(30.0)  # wider SUV window: the lesion is lower in the map (bluer in rainbow)
    assert viewer.fusion.display.window == (0.0, 30.0)
    wide = view_pixels(axial)
    assert (wide[..., 2] - wide[..., 0]).sum() > (rainbow[..., 2] - rainbow[..., 0]).sum()
    panel.opacity_slider.setValue(0)
    assert viewer.fusion.display.opacity == 0.0 and axial.slice_view.fusion_style.opacity == 0.0
    panel.blend_box.setCurrentText("checkerboard")
    panel.tile_spin.setValue(35)
    assert axial.slice_view.fusion_style.blend == "checkerboard" and axial.slice_view.fusion_style.tile_mm == 35
    panel.choose("(none)")
    assert viewer.fusion.moving is None and axial.slice_view.fusion.moving is None


def test_registration_is_inspected_in_checkerboard_then_accepted_and_undone(fused, qtbot, demo_study):
    viewer = fused
    panel = viewer.registration_panel
    seen = []
    with qtbot.waitSignal(panel.registered, timeout=60000):
        panel.run("rigid").progress.connect(lambda f, msg: seen.append(f))
    assert seen and max(seen) <= 1.0
    assert viewer.fusion.candidate is not None and viewer.fusion.display.blend == "checkerboard"
    assert panel.inspect_box.isChecked() and panel.accept_button.isEnabled()
    axial = viewer.views["axial"].slice_view
    assert axial.fusion_style.blend == "checkerboard"
    lesion = liver_lesion(demo_study)
    np.testing.assert_allclose(viewer.fusion.moving_point(lesion), true_ct_to_pet(lesion), atol=1.0)
    panel.accept()
    assert viewer.fusion.display.blend == "alpha" and not panel.inspect_box.isChecked()
    assert panel.undo_button.isEnabled()
    panel.undo()
    assert viewer.fusion.transform.description == "identity" and not panel.undo_button.isEnabled()


def test_a_registration_can_be_cancelled(fused, qtbot):
    panel = fused.registration_panel
    seen = []
    worker = panel.run("affine")
    worker.progress.connect(lambda f, msg: seen.append(f))
    qtbot.waitUntil(lambda: bool(seen), timeout=30000)
    assert panel.cancel_button.isEnabled() and panel.progress.isVisible()
    with qtbot.waitSignal(worker.cancelled, timeout=30000):
        panel.cancel()
    worker.wait()
    qtbot.waitUntil(lambda: panel.run_button.isEnabled(), timeout=5000)
    assert fused.fusion.candidate is None and "cancelled" in panel.status.text()


def test_transform_files_save_and_load(fused, qtbot, tmp_path):
    viewer = fused
    panel = viewer.registration_panel
    register_and_accept(viewer, qtbot)
    registered = viewer.fusion.transform.matrix
    assert panel.save_transform(str(tmp_path / "pet_to_ct.tfm"))
    panel.undo()
    assert panel.load_transform(str(tmp_path / "pet_to_ct.tfm"))
    np.testing.assert_allclose(viewer.fusion.transform.matrix, registered, atol=1e-9)
    assert not panel.save_transform(str(tmp_path / "pet_to_ct.png"))
    assert "transform files end with" in panel.status.text()
    assert not panel.load_transform(str(tmp_path / "missing.tfm"))
    assert "no such transform file" in panel.status.text()


def test_side_by_side_links_cursors_through_the_transform_and_loops_a_pet_mip(fused, qtbot, demo_study, artifacts):
    from viewer.ui.app import grab_window

    viewer = fused
    register_and_accept(viewer, qtbot)
    viewer.set_layout("side-by-side")
    control = viewer.fusion_control
    assert control.moving_view.isVisible() and control.mip_view.isVisible()
    assert not viewer.views["sagittal"].isVisible()
    lesion = liver_lesion(demo_study)
    viewer.state.set_cursor(lesion)
    np.testing.assert_allclose(control.moving_state.cursor, viewer.fusion.moving_point(lesion), atol=1e-6)
    np.testing.assert_allclose(control.moving_state.cursor, true_ct_to_pet(lesion), atol=1.0)
    moving_view = control.moving_view
    target = true_ct_to_pet(lesion + (0.0, 25.0, 0.0))
    click(moving_view, target)  # a click in the moving view moves the fixed cursor to the same anatomy
    np.testing.assert_allclose(viewer.state.cursor[:2], (lesion + (0.0, 25.0, 0.0))[:2], atol=3.0)
    qtbot.waitUntil(lambda: len(control.mip_view.frames) == 36, timeout=30000)
    first = control.mip_view.index
    qtbot.waitUntil(lambda: control.mip_view.index != first, timeout=5000)  # it rotates
    grab_window(viewer, artifacts / "fusion_side_by_side.png")
    viewer.set_layout("2x2")
    assert not control.mip_view.timer.isActive()  # paused while hidden


def test_landmarks_are_placed_by_clicks_with_cursors_unlinked(fused, qtbot, demo_study):
    viewer = fused
    viewer.set_layout("side-by-side")
    control, panel = viewer.fusion_control, viewer.registration_panel
    panel.set_placing(True)
    lesion = liver_lesion(demo_study)
    viewer.state.set_cursor(lesion)
    moving_before = control.moving_state.cursor.copy()
    axial = viewer.views["axial"]
    click(axial, lesion)
    np.testing.assert_allclose(control.moving_state.cursor, moving_before)  # unlinked while placing
    (fixed_point,) = viewer.fusion.landmarks["fixed"]
    np.testing.assert_allclose(fixed_point[:2], lesion[:2], atol=1.5)
    control.moving_state.set_cursor(true_ct_to_pet(lesion))
    click(control.moving_view, true_ct_to_pet(lesion))
    assert viewer.fusion.landmark_pairs == 1 and panel.landmark_label.text() == "fixed 1 / moving 1"
    assert not panel.landmark_button.isEnabled()  # three pairs at least
    panel.remove_last_pair()
    assert viewer.fusion.landmarks == {"fixed": [], "moving": []}
    click(axial, lesion)
    panel.remove_last_pair()  # an unpaired landmark alone
    assert viewer.fusion.landmarks == {"fixed": [], "moving": []}
    panel.set_placing(False)
    np.testing.assert_allclose(control.moving_state.cursor, viewer.fusion.moving_point(viewer.state.cursor))


def test_a_fused_session_reopens_fused(fused, qtbot, tmp_path, demo_study):
    from viewer.ui.main_window import MainWindow

    viewer = fused
    register_and_accept(viewer, qtbot)
    viewer.fusion.set_display(colormap="inferno", threshold=3.0)
    viewer.save_session(str(tmp_path / "session"))
    assert (tmp_path / "session" / "fusion_transform.tfm").is_file()
    other = MainWindow()
    other.show_error_dialogs = False
    other.show()
    try:
        assert other.open_session(str(tmp_path / "session"))
        fusion = other.fusion
        assert fusion.active and fusion.fixed is other.state.volume and fusion.moving.modality == "PT"
        np.testing.assert_allclose(fusion.transform.matrix, viewer.fusion.transform.matrix, atol=1e-9)
        assert fusion.display == viewer.fusion.display
        axial = other.views["axial"].slice_view
        assert axial.fusion.moving is fusion.moving and axial.fusion_style.colormap == "inferno"
        lesion = liver_lesion(demo_study)
        other.state.set_cursor(lesion)
        assert colour_centre_mm(other.views["axial"], lesion)[0] < TOLERANCE_MM
    finally:
        other.close()


def test_the_demo_opens_pet_registered_and_fused_over_ct(qtbot, demo_study, monkeypatch):
    import viewer.core.phantom as phantom
    from viewer.ui.app import start_window

    monkeypatch.setattr(phantom, "demo_study_dir", lambda progress=None: demo_study)
    outcome = []
    window = start_window([], demo=True, screenshot="unused.png", on_demo_ready=outcome.append)
    try:
        qtbot.waitUntil(lambda: bool(outcome), timeout=90000)
        assert outcome == [True]
        fusion = window.fusion
        assert window.state.volume.modality == "CT" and fusion.moving.modality == "PT"
        assert fusion.moving.units == "SUVbw" and fusion.candidate is None and fusion.can_undo
        lesions = np.array([les["center_mm"] for les in json.loads(demo_study.truth.read_text())["lesions"]])
        errors = np.linalg.norm(fusion.moving_point(lesions) - true_ct_to_pet(lesions), axis=1)
        assert errors.max() < 1.0, errors
        assert window.fusion_panel.moving_box.currentText().startswith("PT")
        assert colour_centre_mm(window.views["axial"], lesions[0])[0] < TOLERANCE_MM
    finally:
        window.close()


def test_landmarks_are_drawn_where_placed(fused, demo_study):
    viewer = fused
    viewer.set_layout("side-by-side")
    control, panel = viewer.fusion_control, viewer.registration_panel
    lesion = liver_lesion(demo_study)
    viewer.state.set_cursor(lesion)
    axial = viewer.views["axial"]
    before = view_pixels(axial)
    panel.set_placing(True)
    click(axial, lesion + (30.0, 0.0, 0.0))
    after = view_pixels(axial)
    magenta = (after[..., 0] > 200) & (after[..., 2] > 200) & (after[..., 1] < 80)
    assert magenta.sum() > 10 and not ((before[..., 0] > 200) & (before[..., 2] > 200) & (before[..., 1] < 80)).any()
    rows, cols = np.nonzero(magenta)
    x, y = axial.slice_view.world_to_display(viewer.fusion.landmarks["fixed"][0])
    assert abs(cols.mean() - x) < 2 and abs((after.shape[0] - 1 - rows.mean()) - y) < 2  # a square around it
    ((_view, moving_marks),) = control.landmark_marks["moving"]
    assert moving_marks.boxes == []  # the moving view draws the moving landmarks only


def test_swap_shows_the_moving_image_with_the_fixed_one_fused_through_the_inverse(fused, qtbot, demo_study):
    viewer = fused
    register_and_accept(viewer, qtbot)
    ct, pet, forward = viewer.fusion.fixed, viewer.fusion.moving, viewer.fusion.transform
    viewer.registration_panel.swap_button.click()
    fusion = viewer.fusion
    assert viewer.state.volume is pet and fusion.fixed is pet and fusion.moving is ct
    assert fusion.display.colormap == "gray" and viewer.views["axial"].slice_view.fusion.moving is ct
    lesion = liver_lesion(demo_study)
    np.testing.assert_allclose(fusion.moving_point(forward.fixed_to_moving(lesion)), lesion, atol=1e-6)


def test_the_3d_view_renders_the_fused_volume(fused, demo_study):
    viewer = fused
    view3d = viewer.view3d
    assert view3d.volume_view.fusion.moving is viewer.fusion.moving
    with_pet = view_pixels(view3d)
    viewer.fusion_panel.visible_box.setChecked(False)
    without = view_pixels(view3d)
    assert np.abs(with_pet - without).sum(axis=2).astype(bool).sum() > 100
    viewer.fusion_panel.choose("(none)")
    assert view3d.volume_view.fusion.moving is None


def test_a_run_refines_the_accepted_transform_unless_asked_to_start_by_moments(fused):
    panel = fused.registration_panel
    assert panel._starting_transform("geometry") is None  # identity: about the fixed image's centre
    nudged = fused.fusion.transform.compose_nudge((3.0, 0.0, 0.0))
    fused.fusion.set_transform(nudged)
    assert panel._starting_transform("geometry") is nudged
    assert panel._starting_transform("moments") is None
