"""Anonymize dialog: runs the PS3.15 profile in the background, reports files, UIDs and burned-in flags."""

from __future__ import annotations

import shutil

import pydicom
import pytest

from viewer.ui.anonymize_dialog import AnonymizeDialog

pytestmark = pytest.mark.gui


@pytest.fixture
def mixed_input(shared_data, pydicom_file, tmp_path):
    """The real 20-file JPEG 2000 CT series, CT_small flagged with burned-in annotation, and a text file."""
    root = tmp_path / "in"
    shutil.copytree(shared_data / "ct_abdomen_dicom", root / "ct")
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    (root / "small").mkdir()
    ds.save_as(root / "small" / "burned.dcm")
    (root / "notes.txt").write_text("not DICOM")
    return root


def _run(dialog, qtbot, ok: bool = True):
    """Run the dialog and wait until it has shown the outcome. The wait is on the dialog, whose handlers were
    connected before the worker started: a worker that fails at once (a missing folder) may emit before a
    signal spy made after ``run()`` is connected, and that signal would never be seen."""
    worker = dialog.run()
    qtbot.waitUntil(lambda: not worker.isRunning() and dialog.run_button.isEnabled(), timeout=60000)
    assert dialog.status.text().startswith("done:" if ok else "Error:"), dialog.status.text()
    return worker


def test_dialog_anonymizes_a_folder_and_reports_counts_uids_and_burned_in(qtbot, mixed_input, tmp_path):
    dialog = AnonymizeDialog(input_path=str(mixed_input))
    qtbot.addWidget(dialog)
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.name_edit.setText("STUDY^SUBJECT01")
    dialog.show()
    _run(dialog, qtbot)
    report = dialog.report
    assert len(report.files_written) == 21 and report.uid_map_size > 21  # SOP instances + study/series/FoR
    assert [p.name for p in report.burned_in] == ["burned.dcm"]
    assert f"21 files, {report.uid_map_size} UIDs remapped, 1 with burned-in annotation" in dialog.status.text()
    text = dialog.result_text.toPlainText()
    assert "Burned-in annotation flagged" in text and "burned.dcm" in text and "notes.txt" in text
    written = pydicom.dcmread(report.files_written[0])
    assert str(written.PatientName) == "STUDY^SUBJECT01" and written.PatientIdentityRemoved == "YES"
    originals = {str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID)
                 for f in (mixed_input / "ct").iterdir()}
    assert not originals & {p.stem for p in report.files_written}  # every SOP Instance UID remapped
    assert dialog.run_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_errors_are_shown_in_the_dialog_which_stays_usable(qtbot, tmp_path):
    dialog = AnonymizeDialog()
    qtbot.addWidget(dialog)
    assert dialog.run() is None and dialog.status.text().startswith("Error: choose")
    dialog.input_edit.setText(str(tmp_path / "missing"))
    dialog.output_edit.setText(str(tmp_path / "out"))
    _run(dialog, qtbot, ok=False)
    assert "no such file or folder" in dialog.status.text() and dialog.report is None
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    dialog.input_edit.setText(str(tmp_path / "empty"))
    _run(dialog, qtbot, ok=False)
    assert "no DICOM files to anonymize" in dialog.status.text() and dialog.run_button.isEnabled()


def test_file_menu_opens_the_dialog_on_the_current_dicom_series(viewer, open_and_wait, demo_study):
    open_and_wait(viewer, demo_study.ct_dir)
    action = next(a for a in viewer.menuBar().actions()[0].menu().actions() if a.text() == "&Anonymize DICOM...")
    action.trigger()
    dialog = next(w for w in viewer.findChildren(AnonymizeDialog) if w.isVisible())
    assert dialog.input_edit.text() == str(demo_study.ct_dir)
    dialog.close()


def test_a_cancelled_run_keeps_no_output_files(qtbot, mixed_input, tmp_path):
    from viewer.core.io.anonymize import anonymize
    from viewer.ui.workers import TaskWorker

    worker = TaskWorker(anonymize, mixed_input, tmp_path / "out", with_progress=True)
    worker.cancel()  # cancelled before the first file
    with qtbot.waitSignal(worker.cancelled, timeout=30000):
        worker.start()
    worker.wait()
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
