"""File > Open from PACS and File > Send to PACS in a real window against a real Orthanc: query, retrieve with
progress (and Cancel), the series opens with its SEG; a SEG file is sent with one status row per instance."""

from __future__ import annotations

import numpy as np
import pytest

from tests.pacs.conftest import make_study
from tests.pacs.orthanc import running_orthanc
from tests.ui.conftest import view_pixels
from viewer.ui.app import grab_window
from viewer.ui.pacs_dialog import OpenFromPacsDialog
from viewer.ui.pacs_send_dialog import SendToPacsDialog
from viewer.ui.pacs_servers import pacs_servers

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """A real Orthanc holding one generated study (CT series, JPEG 2000 series, SEG); (server, study)."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc_gui")) as server:
        study = make_study(tmp_path_factory.mktemp("gui_study"), "radview-pacs-gui", "PACS-GUI", "Gui^Patient",
                           "20250505")
        for path in study.files:
            server.upload(path)
        yield server, study


def file_action(window, text: str):
    return next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == text)


def search(qtbot, dialog, server: str, **fields) -> None:
    dialog.server_row.server.setCurrentText(server)
    for name, value in fields.items():
        getattr(dialog, name).setText(value)
    worker = dialog.search()
    qtbot.waitUntil(lambda: not worker.isRunning() and dialog.search_button.isEnabled(), timeout=30000)


def test_open_from_pacs_retrieves_and_opens_the_study_with_its_seg(viewer, qtbot, pacs, tmp_path, artifacts):
    server, study = pacs
    file_action(viewer, "Open from &PACS...").trigger()
    dialog = next(w for w in viewer.findChildren(OpenFromPacsDialog) if w.isVisible())
    dialog.folder.setText(str(tmp_path / "retrieved"))
    search(qtbot, dialog, server.dicomweb, patient_id="PACS-GUI")
    assert dialog.tree.topLevelItemCount() == 1
    item = dialog.tree.topLevelItem(0)
    assert [item.text(c) for c in range(4)] == ["PACS-GUI", "Gui^Patient", "20250505", "CT/SEG"]
    assert [item.child(i).text(4) for i in range(item.childCount())] == ["CT plain", "CT J2K", "Segmentation"]
    item.setSelected(True)
    with qtbot.waitSignal(viewer.load_finished, timeout=60000) as loaded:
        dialog.retrieve_button.click()
    assert loaded.args[0].array.shape == (6, 32, 32)
    qtbot.waitUntil(lambda: viewer.state.labels is not None, timeout=30000)
    assert int(np.count_nonzero(viewer.state.labels.array)) == 4 * 16 * 12  # the SEG's box, on the CT
    assert dialog.progress.value() == 1000 and dialog.status.text().startswith("retrieved 13 instances")
    assert pacs_servers()[0] == server.dicomweb
    dialog.grab().save(str(artifacts / "pacs_open_dialog.png"))
    dialog.close()
    assert view_pixels(viewer.views["axial"]).std() > 20, "the retrieved CT is not drawn"
    grab_window(viewer, artifacts / "pacs_opened_study.png")


def test_retrieve_of_one_series_over_dimse_and_cancel(viewer, qtbot, pacs, tmp_path):
    server, study = pacs
    dialog = viewer.open_pacs_dialog()
    dialog.folder.setText(str(tmp_path / "r"))
    search(qtbot, dialog, server.dimse, patient_name="Gui*")
    series_item = dialog.tree.topLevelItem(0).child(1)  # the JPEG 2000 series
    series_item.setSelected(True)
    worker = dialog.retrieve()
    dialog.cancel()  # before the first series is fetched
    qtbot.waitUntil(lambda: not worker.isRunning() and dialog.cancel_button.isEnabled() is False, timeout=30000)
    assert dialog.status.text() == "cancelled: nothing of this retrieve was kept"
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    with qtbot.waitSignal(viewer.load_finished, timeout=60000) as loaded:
        dialog.retrieve_button.click()
    assert loaded.args[0].description == "CT J2K" and viewer.state.labels is None
    assert [p.name for p in (tmp_path / "r").iterdir()] == [study.series_uid(study.j2k_dir)]
    dialog.close()


def test_errors_show_in_the_dialog(viewer, qtbot, pacs):
    server, _ = pacs
    dialog = viewer.open_pacs_dialog()
    dialog.server_row.server.setCurrentText("dicom://pacs:4242")
    assert dialog.search() is None and "dicom://AET@HOST:PORT" in dialog.status.text()
    search(qtbot, dialog, f"dicom://WRONG@127.0.0.1:{server.dicom_port}")
    assert "association rejected" in dialog.status.text() and dialog.tree.topLevelItemCount() == 0
    dialog.close()


def test_send_to_pacs_shows_each_instance_status(viewer, qtbot, pacs, tmp_path, artifacts, shared_data):
    server, _ = pacs
    study = make_study(tmp_path, "radview-pacs-gui-send", "PACS-SEND", "Send^Patient", "20250606")
    file_action(viewer, "Send to PA&CS...").trigger()
    dialog = next(w for w in viewer.findChildren(SendToPacsDialog) if w.isVisible())
    dialog.path_edit.setText(str(study.seg))
    dialog.server_row.server.setCurrentText(server.dimse)
    worker = dialog.send()
    qtbot.waitUntil(lambda: not worker.isRunning() and dialog.send_button.isEnabled(), timeout=30000)
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 0).text() == "STORED"
    assert server.has_instance(dialog.table.item(0, 3).text()) and dialog.status.text() == "1 instances stored"
    dialog.path_edit.setText(str(shared_data / "ct_abdomen_dicom"))
    dialog.server_row.server.setCurrentText(server.dicomweb)
    worker = dialog.send()
    qtbot.waitUntil(lambda: not worker.isRunning() and dialog.send_button.isEnabled(), timeout=30000)
    assert dialog.table.rowCount() == 20 and {dialog.table.item(r, 0).text() for r in range(20)} == {"FAILED"}
    assert dialog.status.text() == "Error: 20 of 20 instances not stored"
    assert "a PACS cannot file it" in dialog.table.item(0, 1).text()
    dialog.grab().save(str(artifacts / "pacs_send_dialog.png"))
    dialog.close()


def test_send_to_pacs_offers_the_exported_seg(viewer, qtbot, open_and_wait, pacs, tmp_path):
    """Export the segmentation of a DICOM image as DICOM SEG, then File > Send to PACS sends that file."""
    server, _ = pacs
    study = make_study(tmp_path, "radview-pacs-gui-export", "PACS-EXPORT", "Export^Patient", "20250707")
    open_and_wait(viewer, study.ct_dir)
    assert viewer.open_labels(str(study.seg)) is not None
    out = tmp_path / "exported" / "liver.dcm"
    out.parent.mkdir()
    viewer.export_segmentation(str(out))
    qtbot.waitUntil(lambda: getattr(viewer, "last_export", "") == str(out), timeout=60000)
    file_action(viewer, "Send to PA&CS...").trigger()
    dialog = next(w for w in viewer.findChildren(SendToPacsDialog) if w.isVisible())
    assert dialog.path_edit.text() == str(out)
    dialog.server_row.server.setCurrentText(server.dicomweb)
    worker = dialog.send()
    qtbot.waitUntil(lambda: not worker.isRunning() and dialog.send_button.isEnabled(), timeout=30000)
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 0).text() == "STORED"
    assert server.has_instance(dialog.table.item(0, 3).text())
    dialog.close()
