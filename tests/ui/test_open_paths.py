"""Opening images in the GUI: several paths at once, the demo study, one header parse, progressive display,
bad files (error dialog, window stays up) and single-slice images in the 3D view."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.ui.conftest import view_pixels
from viewer.ui.volume_3d_view import LOADING_MESSAGE

pytestmark = pytest.mark.gui


def _listed(viewer) -> dict[str, dict]:
    """The study browser's series rows by description."""
    return {row["description"]: row for row in viewer.browser.series_rows()}


def test_several_paths_are_all_listed_and_the_first_shown(viewer, qtbot, demo_study):
    with qtbot.waitSignal(viewer.load_finished, timeout=30000) as blocker:
        viewer.open_paths([str(demo_study.ct_dir), str(demo_study.pet_dir), str(demo_study.mr)])
    viewer.wait_for_scans()
    assert blocker.args[0].modality == "CT" and viewer.state.volume is blocker.args[0]
    rows = _listed(viewer)
    assert rows["Demo CT"]["modality"] == "CT" and rows["Demo CT"]["slices"] == "100"
    assert rows["Demo PET FDG"]["modality"] == "PT" and rows["Demo PET FDG"]["slices"] == "76"
    assert "mr.nii.gz" in rows
    assert rows["Demo CT"]["patient"].startswith("Demo^Phantom")
    # a listed series opens from the browser without another scan
    item = viewer.browser.findItems("Demo PET FDG", Qt.MatchExactly | Qt.MatchRecursive, 3)[0]
    with qtbot.waitSignal(viewer.load_finished, timeout=30000) as blocker:
        viewer.browser.itemDoubleClicked.emit(item, 0)
    assert blocker.args[0].units == "SUVbw"
    assert len(viewer.browser.series_rows()) == 3  # nothing listed twice


def test_dropping_several_folders_lists_them_all(viewer, qtbot, demo_study):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in (demo_study.ct_dir, demo_study.pet_dir)])
    event = QDropEvent(QPointF(200, 200), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(viewer.load_finished, timeout=30000):
        viewer.dropEvent(event)
    viewer.wait_for_scans()
    assert {r["modality"] for r in viewer.browser.series_rows()} == {"CT", "PT"}


def test_demo_start_lists_ct_pet_and_mr(qtbot, demo_study, monkeypatch):
    import viewer.core.phantom as phantom
    from viewer.ui.app import start_window

    monkeypatch.setattr(phantom, "demo_study_dir", lambda progress=None: demo_study)
    window = start_window([], demo=True, screenshot="unused.png")  # batch start: no recovery question
    try:
        with qtbot.waitSignal(window.load_finished, timeout=30000):
            pass
        window.wait_for_scans()
        modalities = sorted(r["modality"] for r in window.browser.series_rows())
        assert modalities == ["? (NIfTI)", "CT", "PT"]  # the MR NIfTI records no modality: unknown until loaded
        assert window.state.volume.modality == "CT"
        qtbot.waitUntil(lambda: window.state.labels is not None, timeout=10000)  # demo labels on the CT
    finally:
        window.close()


def _open_from_browser(viewer, qtbot, description: str):
    """Double-click the series listed with ``description``; returns the loaded Volume."""
    (item,) = viewer.browser.findItems(description, Qt.MatchExactly | Qt.MatchRecursive, 3)
    with qtbot.waitSignal(viewer.load_finished, timeout=30000) as blocker:
        viewer.browser.itemDoubleClicked.emit(item, 0)
    return blocker.args[0]


def test_nifti_modality_is_unknown_until_loaded_then_the_inferred_one(viewer, qtbot, demo_study, shared_data,
                                                                      artifacts):
    ct = shared_data / "ct_abdomen_3mm.nii.gz"
    with qtbot.waitSignal(viewer.load_finished, timeout=30000):
        viewer.open_paths([str(demo_study.ct_dir), str(ct), str(demo_study.mr)])
    viewer.wait_for_scans()
    rows = _listed(viewer)
    assert rows["Demo CT"]["modality"] == "CT"  # DICOM records it
    assert rows[ct.name]["modality"] == rows["mr.nii.gz"]["modality"] == "? (NIfTI)"  # not a made-up 'OT'
    (item,) = viewer.browser.findItems(ct.name, Qt.MatchExactly | Qt.MatchRecursive, 3)
    assert "do not record the modality" in item.toolTip(1)
    assert _open_from_browser(viewer, qtbot, ct.name).modality == "CT"  # air at -1000 HU
    assert _listed(viewer)[ct.name]["modality"] == "CT" and "inferred when loaded" in item.toolTip(1)
    assert _listed(viewer)["mr.nii.gz"]["modality"] == "? (NIfTI)"  # not loaded yet
    viewer.browser.grab().save(str(artifacts / "browser_nifti_modality.png"))
    mr = _open_from_browser(viewer, qtbot, "mr.nii.gz")
    assert _listed(viewer)["mr.nii.gz"]["modality"] == mr.modality != "? (NIfTI)"


def test_each_header_is_parsed_once_off_the_gui_thread(viewer, open_and_wait, demo_study, monkeypatch):
    import viewer.core.io.dicom_headers as headers

    calls = []
    real = headers.read_header

    def counting(path):
        calls.append((str(path), threading.current_thread() is threading.main_thread()))
        return real(path)

    monkeypatch.setattr(headers, "read_header", counting)
    vol = open_and_wait(viewer, demo_study.ct_dir)
    files = [c[0] for c in calls]
    assert len(files) == vol.size[2] == len(set(files))  # one parse per file
    assert not any(on_gui for _, on_gui in calls)


@pytest.fixture
def gated_loader(monkeypatch):
    """DICOM series loads decode their middle slice, then hold every other slice until ``gate.set()``
    (set at teardown at the latest); yields the gate (a threading.Event)."""
    from viewer.core.io.dicom_series import SeriesLoader

    gate = threading.Event()
    real = SeriesLoader._load_task

    def held(self, ks):
        if len(self.geometry.slices) // 2 not in ks:
            gate.wait(30)
        return real(self, ks)

    monkeypatch.setattr(SeriesLoader, "_load_task", held)
    yield gate
    gate.set()


def test_a_slice_shows_before_the_series_has_loaded(viewer, qtbot, demo_study, gated_loader):
    """The middle slice is drawn while the rest is held back; the 3D view renders no volume until the load
    has finished (ray casting a half-empty volume cost 21 s before the first slice under load), then the
    whole one."""
    volume_view = viewer.view3d.volume_view
    renders = []  # per 3D render: (a volume is in the scene, the mapper's input)
    viewer.view3d.vtk.renderer.AddObserver("StartEvent", lambda *_: renders.append(
        (volume_view.actor.GetVisibility(), volume_view.image_data)))
    with qtbot.waitSignal(viewer.state.slices_loaded, timeout=30000):
        worker = viewer.open_path(str(demo_study.ct_dir))
    vol = viewer.state.volume
    assert worker.isRunning() and viewer.state.loading and viewer.views["axial"].slice_view.volume is vol
    axial = view_pixels(viewer.views["axial"])  # the middle slice, decoded first, is on screen
    assert axial.std() > 20
    assert np.count_nonzero(vol.array.any(axis=(1, 2))) < vol.size[2]  # the rest is still held back
    view_pixels(viewer.view3d)
    assert renders and not any(visible or data is not None for visible, data in renders)
    assert volume_view.volume is None and volume_view.message.GetInput() == LOADING_MESSAGE
    assert not viewer.view3d.preset_box.isEnabled()
    renders.clear()
    gated_loader.set()
    qtbot.waitSignal(viewer.load_finished, timeout=30000).wait()
    assert not viewer.state.loading and volume_view.volume is vol and volume_view.actor.GetVisibility()
    assert renders and renders[-1][0] and renders[-1][1] is volume_view.image_data is not None
    assert view_pixels(viewer.view3d).std() > 5  # the CT is rendered


@pytest.fixture
def truncated_ct(pydicom_file, tmp_path):
    """pydicom's CT_small.dcm without its last 5000 bytes (pixel data cut short)."""
    data = pydicom_file("CT_small.dcm").read_bytes()
    path = tmp_path / "CT_truncated.dcm"
    path.write_bytes(data[:-5000])
    return path


def test_truncated_ct_shows_the_error_in_a_dialog_and_stays_up(viewer, qtbot, truncated_ct, monkeypatch):
    import viewer.ui.main_window as mw

    shown = []
    monkeypatch.setattr(mw, "show_error", lambda parent, message: shown.append(message))
    viewer.show_error_dialogs = True
    with qtbot.waitSignal(viewer.load_failed, timeout=10000) as blocker:
        viewer.open_path(str(truncated_ct))
    assert "truncated" in blocker.args[0] and "CT_truncated.dcm" in blocker.args[0]
    assert shown == [blocker.args[0]]
    qtbot.wait(100)
    assert viewer.isVisible()
    for view in (*viewer.views.values(), viewer.view3d):
        view_pixels(view)  # every view still renders


def test_a_series_missing_a_slice_shows_the_gap_blank_and_says_so(viewer, shared_data, tmp_path, open_and_wait,
                                                                   export_and_wait, artifacts):
    """A damaged file inside a series: its slice stays on the grid, blank, and the status bar says so (the slices
    above it are where they were acquired, see tests/io/test_missing_slices.py)."""
    import shutil

    import pydicom

    from viewer.ui.app import grab_window

    folder = tmp_path / "series"
    shutil.copytree(shared_data / "ct_abdomen_dicom", folder)
    by_z = {float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]): f for f in folder.iterdir()}
    cut = by_z[sorted(by_z)[13]]
    cut.write_bytes(cut.read_bytes()[:-20000])
    vol = open_and_wait(viewer, folder)
    assert vol.array.shape[0] == 20 and (vol.array[13] == vol.array.min()).all()
    assert "1 missing slice(s)" in viewer.statusBar().currentMessage()
    viewer.state.set_cursor(vol.index_to_world([256, 300, 13]))
    coronal = view_pixels(viewer.views["coronal"])
    assert coronal.std() > 20  # the image is drawn around the blank band
    grab_window(viewer, artifacts / "missing_slice.png")
    # a DICOM SEG references acquired slices only: labels drawn on the blank one are said to be left out
    seg = viewer.segment_panel.new_segmentation("lesion")
    viewer.session.paint(seg, 1, vol.index_to_world([256, 300, 13]), 3)
    painted = int(np.count_nonzero(seg.array[13]))
    export_and_wait(viewer, tmp_path / "lesion.dcm")
    message = viewer.statusBar().currentMessage()
    assert "exported" in message and f"{painted} labelled voxel(s) on the series' missing slices" in message


def test_a_failed_first_open_says_what_failed_and_the_other_paths_still_open(viewer, qtbot, truncated_ct,
                                                                             shared_data, artifacts):
    from viewer.ui.app import grab_window

    assert "No study open" in viewer.placeholder_text()
    nifti = shared_data / "ct_abdomen_3mm.nii.gz"
    with qtbot.waitSignal(viewer.load_failed, timeout=10000) as blocker:
        viewer.start([str(truncated_ct), str(nifti)], recover=False)  # as `radview BROKEN GOOD`
    viewer.wait_for_scans()
    text = viewer.placeholder_text()
    problem = blocker.args[0].removeprefix(f"{truncated_ct}: ")
    assert f"Could not open {truncated_ct}" in text and "truncated" in problem and problem in text
    assert "File > Open file..." in text and "double-click a series" in text
    qtbot.wait(200)  # the study browser repaints before the grab
    grab_window(viewer, artifacts / "failed_first_open.png")
    _open_from_browser(viewer, qtbot, nifti.name)
    assert viewer.placeholder_text() is None and view_pixels(viewer.views["axial"]).std() > 20


def test_single_slice_image_in_the_3d_view_says_it_needs_two(viewer, qtbot, artifacts):
    from viewer.core.volume import Volume
    from viewer.render.volume_view import TOO_THIN_MESSAGE

    for dtype in (np.int32, np.int16):  # int32 zeros crashed VTK's CPU ray caster (gradients of one slice)
        vol = Volume(np.zeros((1, 128, 128), dtype), spacing=(0.66, 0.66, 5.0), modality="CT", units="HU")
        viewer.state.set_volume(vol)
        px = view_pixels(viewer.view3d)
        view3d = viewer.view3d.volume_view
        assert view3d.message.GetVisibility() and view3d.message.GetInput() == TOO_THIN_MESSAGE
        assert not view3d.actor.GetVisibility() and not viewer.view3d.preset_box.isEnabled()
        assert (px.sum(axis=2) > 300).any()  # the message is drawn
        assert view_pixels(viewer.views["axial"]).std() >= 0
    from viewer.ui.app import grab_window

    grab_window(viewer, artifacts / "single_slice_3d.png")
    viewer.state.set_volume(Volume(np.full((2, 64, 64), 500, np.int16), spacing=(1, 1, 1), modality="CT",
                                   units="HU"))
    assert viewer.view3d.volume_view.actor.GetVisibility() and not viewer.view3d.volume_view.message.GetVisibility()
