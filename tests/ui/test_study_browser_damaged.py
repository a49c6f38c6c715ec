"""Study browser: damaged DICOM files left out of a folder scan are listed as warning rows, beside the good series."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.io.test_damaged_dicom import _mixed_folder

pytestmark = pytest.mark.gui


def test_opening_a_folder_with_damaged_files_shows_its_series_and_a_warning_row_per_damaged_file(
        viewer, open_and_wait, tmp_path, artifacts):
    folder, bad = _mixed_folder(tmp_path / "study")
    open_and_wait(viewer, folder)
    browser = viewer.browser
    assert len(browser.series_rows()) == 2
    rows = browser.damaged_rows()
    assert sorted(r["file"] for r in rows) == sorted(bad) and all(r["problem"] for r in rows)
    from viewer.ui.app import grab_window

    viewer.activateWindow()
    grab_window(viewer, artifacts / "study_browser_damaged.png")


def test_rescanning_the_same_folder_lists_each_damaged_file_once(qtbot, tmp_path):
    from viewer.core.io import scan
    from viewer.ui.study_browser import StudyBrowser

    folder, bad = _mixed_folder(tmp_path / "study")
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    for _ in range(2):
        browser.add_series(str(folder), scan(folder))
    assert sorted(Path(r["file"]).name for r in browser.damaged_rows()) == sorted(bad)
