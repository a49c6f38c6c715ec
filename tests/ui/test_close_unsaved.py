"""Closing the window never silently loses unsaved segmentation edits: cancel keeps it open, discard deletes
the journals, save writes the session, and without an asker (tests, --screenshot) the journals are kept."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.ui.test_main_window import _widget_pos
from viewer.core.session import Session

pytestmark = pytest.mark.gui


def _paint_stroke(viewer, open_and_wait, demo_study, qtbot) -> np.ndarray:
    """Open the demo CT, paint one mouse stroke in the axial view; returns the painted labels."""
    open_and_wait(viewer, demo_study.ct_dir)
    axial = viewer.views["axial"]
    viewer.set_tool("paint")
    z = axial.slice_view.slice_position_mm
    start, end = np.array([-40.0, 0.0, z]), np.array([20.0, 0.0, z])
    qtbot.mousePress(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, start))
    qtbot.mouseMove(axial.vtk, _widget_pos(axial, end))
    qtbot.mouseRelease(axial.vtk, Qt.LeftButton, pos=_widget_pos(axial, end))
    painted = viewer.segment_panel.segmentation.array.copy()
    assert painted.any()
    return painted


def test_cancel_keeps_the_window_open_with_its_labels(viewer, open_and_wait, demo_study, qtbot):
    painted = _paint_stroke(viewer, open_and_wait, demo_study, qtbot)
    asked = []
    viewer.ask_unsaved = lambda names: asked.append(names) or "cancel"
    assert not viewer.close()
    assert viewer.isVisible() and asked == [[viewer.segment_panel.segmentation.name]]
    assert np.array_equal(viewer.segment_panel.segmentation.array, painted)
    assert viewer.session.journal_folder(viewer.segment_panel.segmentation).is_dir()  # still journalling
    viewer.ask_unsaved = lambda names: "discard"  # let the fixture close it


def test_save_whose_folder_dialog_is_cancelled_keeps_the_window_open(viewer, open_and_wait, demo_study, qtbot,
                                                                     monkeypatch):
    _paint_stroke(viewer, open_and_wait, demo_study, qtbot)
    viewer.ask_unsaved = lambda names: "save"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: "")
    assert not viewer.close() and viewer.isVisible()
    viewer.ask_unsaved = lambda names: "discard"


def test_save_writes_the_session_then_closes(viewer, open_and_wait, demo_study, qtbot, monkeypatch, tmp_path):
    painted = _paint_stroke(viewer, open_and_wait, demo_study, qtbot)
    viewer.ask_unsaved = lambda names: "save"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path / "saved"))
    assert viewer.close()
    reopened = Session(home=tmp_path / "other home")
    reopened.load(tmp_path / "saved")
    assert np.array_equal(next(iter(reopened.segmentations.values())).array, painted)
    reopened.close()
    assert Session().recover() == []  # saved: nothing to offer at the next start


def test_discard_closes_and_deletes_the_journals(viewer, open_and_wait, demo_study, qtbot):
    _paint_stroke(viewer, open_and_wait, demo_study, qtbot)
    viewer.ask_unsaved = lambda names: "discard"
    assert viewer.close()
    assert Session().recover() == []


def test_without_an_asker_closing_keeps_the_edits_for_the_next_start(viewer, open_and_wait, demo_study, qtbot):
    painted = _paint_stroke(viewer, open_and_wait, demo_study, qtbot)
    assert viewer.ask_unsaved is None  # the default: tests and --screenshot runs never block on a dialog
    assert viewer.close()
    recovered = Session().recover()  # RADVIEW_HOME is per test (tests/conftest.py)
    assert len(recovered) == 1 and np.array_equal(recovered[0].array, painted)
