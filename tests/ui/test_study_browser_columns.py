"""Study browser at the main window's default size: columns sized to their contents, so no header or cell text is
elided (measured with the fonts' metrics, as Qt's own eliding decides), and every cell's tooltip starts with its
full text."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QStyle, QTreeWidgetItem

pytestmark = pytest.mark.gui


def _all_items(tree) -> list[QTreeWidgetItem]:
    out, todo = [], [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while todo:
        item = todo.pop()
        out.append(item)
        todo.extend(item.child(i) for i in range(item.childCount()))
    return out


def _elided_cells(tree) -> list[str]:
    """Cells whose text is wider than the room their column gives it (the text rect of Qt's item view style:
    the cell less the focus-frame margin plus one on each side)."""
    margin = 2 * (tree.style().pixelMetric(QStyle.PM_FocusFrameHMargin, None, tree) + 1)
    metrics = tree.fontMetrics()
    out = []
    for item in _all_items(tree):
        for col in range(tree.columnCount()):
            room = tree.visualRect(tree.indexFromItem(item, col)).width() - margin
            if metrics.horizontalAdvance(item.text(col)) > room:
                out.append(f"{item.text(col)!r} in column {col}: {metrics.horizontalAdvance(item.text(col))} > {room}")
    return out


def _elided_headers(tree) -> list[str]:
    header = tree.header()
    margin = 2 * header.style().pixelMetric(QStyle.PM_HeaderMargin, None, header)
    labels = [tree.headerItem().text(col) for col in range(tree.columnCount())]
    return [f"{label!r}: {header.fontMetrics().horizontalAdvance(label)} + {margin} > {header.sectionSize(col)}"
            for col, label in enumerate(labels)
            if header.fontMetrics().horizontalAdvance(label) + margin > header.sectionSize(col)]


def _open(viewer, qtbot, paths) -> None:
    """Open ``paths`` (all listed, the first shown) and wait until the scans and the first load are done."""
    with qtbot.waitSignal(viewer.load_finished, timeout=30000):
        viewer.open_paths([str(p) for p in paths])
    viewer.wait_for_scans()


def test_no_column_text_is_elided_at_the_default_window_size(viewer, qtbot, demo_study, artifacts):
    _open(viewer, qtbot, [demo_study.ct_dir, demo_study.pet_dir, demo_study.mr])
    browser = viewer.browser
    assert len(browser.series_rows()) == 3

    def nothing_elided():  # sections follow their contents on the next layout pass
        assert _elided_headers(browser) == []
        assert _elided_cells(browser) == []

    qtbot.waitUntil(nothing_elided, timeout=2000)
    from viewer.ui.app import grab_window

    grab_window(viewer, artifacts / "study_browser_default_size.png")
    browser.grab().save(str(artifacts / "study_browser_columns.png"))


def test_long_names_widen_the_columns_instead_of_being_cut(viewer, qtbot, tmp_path):
    """Patient and study rows span the columns; one wider than all of them widens the first column."""
    from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series
    from viewer.core.phantom import make_phantom

    study = DicomStudy("long-names", "Longname-Hyphenated^Maximiliane Josephine^Alexandra", "PID-" + "7" * 60,
                       study_description="CT CHEST ABDOMEN PELVIS WITH CONTRAST PORTAL VENOUS PHASE 3MM")
    write_dicom_series(make_phantom(3).ct, tmp_path / "ct", study=study,
                       series_description="AX SOFT TISSUE 3.0 MM RECON B30F ITERATIVE STRENGTH 3 DOSE MOD")
    _open(viewer, qtbot, [tmp_path / "ct"])
    browser = viewer.browser
    assert _elided_cells(browser) == [] and _elided_headers(browser) == []
    assert browser.horizontalScrollBar().maximum() > 0  # wider than the dock: it scrolls, nothing is cut


def test_every_cell_has_its_full_text_as_tooltip(viewer, qtbot, demo_study):
    _open(viewer, qtbot, [demo_study.ct_dir, demo_study.mr])
    browser = viewer.browser
    cells = [(item, col) for item in _all_items(browser) for col in range(browser.columnCount()) if item.text(col)]
    assert len(cells) >= 2 + 2 * 4  # patient, study, and two series rows
    assert [(item.text(col), item.toolTip(col)) for item, col in cells
            if not item.toolTip(col).startswith(item.text(col))] == []
    header = browser.headerItem()
    assert [header.toolTip(col) for col in range(browser.columnCount())] == [
        header.text(col) for col in range(browser.columnCount())]
