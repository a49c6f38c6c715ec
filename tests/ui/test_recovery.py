"""After a crash the next start offers the journalled segmentation and restores it on its image."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.core.session import Session

pytestmark = pytest.mark.gui


def test_start_after_crash_restores_the_segmentation(qtbot, demo_study, monkeypatch, tmp_path):
    from viewer.ui.main_window import MainWindow

    crashed = Session()  # RADVIEW_HOME is per test (tests/conftest.py)
    vol = crashed.open(demo_study.ct_dir)
    seg = crashed.new_segmentation(vol, "before the crash")
    crashed.paint(seg, 3, vol.index_to_world((128, 128, 50)), 8)
    crashed.flush()  # ... and the process dies without close()
    window = MainWindow()
    window.show_error_dialogs = False
    window.show()
    asked = []
    with qtbot.waitSignal(window.load_finished, timeout=30000):
        restored = window.offer_recovery(ask=lambda text: asked.append(text) or True)
    qtbot.wait(50)
    assert [r.name for r in restored] == ["before the crash"] and "before the crash" in asked[0]
    current = window.segment_panel.segmentation
    assert current is not None and np.array_equal(current.array, seg.array)
    assert window.state.labels is not None and np.array_equal(window.state.labels.array, seg.array)
    window.close()  # no asker: the restored, still unsaved segmentation is kept for the next start, once
    assert [r.name for r in Session().recover()] == ["before the crash"]


def test_an_unreadable_journal_is_reported_in_the_window(qtbot, demo_study):
    """A journal whose header is damaged is named in the window (status bar; a dialog when dialogs are on) and
    nothing is asked, since nothing can be recovered from it."""
    from viewer.ui.main_window import MainWindow

    crashed = Session()
    vol = crashed.open(demo_study.ct_dir)
    seg = crashed.new_segmentation(vol, "unreadable")
    crashed.paint(seg, 3, vol.index_to_world((128, 128, 50)), 8)
    crashed.flush()
    (crashed.journal_folder(seg) / "header.json").write_text("{not json")
    window = MainWindow()
    window.show_error_dialogs = False
    window.show()
    asked = []
    assert window.offer_recovery(ask=lambda text: asked.append(text) or True) == [] and asked == []
    message = window.statusBar().currentMessage()
    assert message.startswith("Crash recovery:") and "header.json" in message and "damaged" in message
    from PySide6.QtGui import QTextDocument

    tip = QTextDocument()
    tip.setHtml(window.statusBar().toolTip())  # the whole message, where the bar cuts a long path; wrapped
    assert tip.toPlainText().replace("\u200b", "") == message and "/\u200b" in window.statusBar().toolTip()
    window.close()


def test_every_start_offers_recovery_and_restores_all_segmentations(qtbot, demo_study, monkeypatch):
    """The start-up path itself (app.start_window with a path on the command line): the question is asked,
    and the segmentations of two different images are both restored, each on its own re-opened image."""
    from PySide6.QtWidgets import QMessageBox

    from viewer.ui.app import start_window

    crashed = Session()
    ct, pet = crashed.open(demo_study.ct_dir), crashed.open(demo_study.pet_dir)
    on_ct = crashed.new_segmentation(ct, "liver edits")
    crashed.paint(on_ct, 2, ct.index_to_world((100, 120, 50)), 10)
    on_pet = crashed.new_segmentation(pet, "lesion edits")
    crashed.paint(on_pet, 1, pet.index_to_world((40, 40, 38)), 12)
    crashed.flush()  # the process dies without close()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text: asked.append(text) or QMessageBox.Yes)
    window = start_window([str(demo_study.mr)])  # started with a path: recovery is still offered
    try:

        def restored_and_shown():  # the last image re-opened is on screen with its labels
            shown = window.segment_panel.segmentation
            return (len(window.session.segmentations) == 2 and not window.worker.isRunning()
                    and shown is not None and shown.reference is window.state.volume)

        qtbot.waitUntil(restored_and_shown, timeout=60000)
        window.wait_for_scans()
        assert len(asked) == 1 and "liver edits" in asked[0] and "lesion edits" in asked[0]
        restored = {s.name: s for s in window.session.segmentations.values()}
        assert np.array_equal(restored["liver edits"].array, on_ct.array)
        assert np.array_equal(restored["lesion edits"].array, on_pet.array)
        assert restored["liver edits"].reference.modality == "CT"
        assert restored["lesion edits"].reference.units == "SUVbw"
        shown = window.segment_panel.segmentation
        assert np.array_equal(window.state.labels.array, shown.array)
        assert any(r["description"] == "mr.nii.gz" for r in window.browser.series_rows())
    finally:
        window.ask_unsaved = lambda names: "discard"  # a person closing it discards the recovered edits
        window.close()
    assert Session().recover() == []
