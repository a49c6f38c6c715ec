"""Label table edits in a real window (show, lock, opacity, rename) are audited as human edits and saved."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from viewer.core.io.labelmap import load_label_names, names_path_for
from viewer.ui.app import grab_window
from viewer.ui.segment_panel import LOCK_COLUMN, NAME_COLUMN, OPACITY_COLUMN, TABLE_COLUMNS

pytestmark = pytest.mark.gui

SHOW_COLUMN = TABLE_COLUMNS.index("Show")


def _table_edits(session) -> list[dict]:
    """The audit's label table entries as {'author': kind, **changes}."""
    return [{"author": e["author"]["kind"], **e["changes"]} for e in session.audit_log()
            if e["action"] == "label 1 table edit"]


def _type_into(qtbot, table, row: int, column: int, text: str) -> None:
    """Edit a cell as a user does: open its editor, replace the text, press Enter."""
    table.setCurrentCell(row, column)
    table.editItem(table.item(row, column))
    editor = table.viewport().findChild(QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key_Return)
    qtbot.waitUntil(lambda: not table.viewport().findChildren(QLineEdit))  # the editor closed, deleted


@pytest.fixture
def painted(viewer, open_and_wait, demo_study):
    """The window on the demo CT with label 1 painted in a new segmentation, shown in the table."""
    open_and_wait(viewer, demo_study.ct_dir)
    seg = viewer.segment_panel.new_segmentation("table edits")
    viewer.session.paint(seg, 1, viewer.state.cursor, 10)
    viewer.segment_panel.refresh()
    return seg


def test_lock_show_opacity_and_rename_are_audited_human_edits(viewer, painted, qtbot, artifacts):
    table = viewer.segment_panel.table
    table.item(0, LOCK_COLUMN).setCheckState(Qt.Checked)
    table.item(0, SHOW_COLUMN).setCheckState(Qt.Unchecked)
    _type_into(qtbot, table, 0, OPACITY_COLUMN, "0.8")
    _type_into(qtbot, table, 0, NAME_COLUMN, "tumour")
    assert _table_edits(viewer.session) == [{"author": "human", "locked": True}, {"author": "human", "visible": False},
                                            {"author": "human", "opacity": 0.8}, {"author": "human", "name": "tumour"}]
    info = painted.table.labels[1]
    assert (info.locked, info.visible, info.opacity, info.name) == (True, False, 0.8, "tumour")
    assert table.item(0, NAME_COLUMN).text() == "tumour"
    grab_window(viewer, artifacts / "label_table_edits.png")
    viewer.segment_panel.grab().save(str(artifacts / "label_table_renamed.png"))


def test_a_blank_name_keeps_the_label_name_and_statistics_cells_are_read_only(viewer, painted, qtbot):
    table = viewer.segment_panel.table
    _type_into(qtbot, table, 0, NAME_COLUMN, "   ")
    assert table.item(0, NAME_COLUMN).text() == "label_1" and not _table_edits(viewer.session)
    voxels = table.item(0, TABLE_COLUMNS.index("Voxels"))
    assert not voxels.flags() & Qt.ItemIsEditable


def test_a_renamed_label_is_exported_and_survives_saving_the_session(viewer, painted, qtbot, tmp_path,
                                                                     export_and_wait):
    from viewer.core.session import Session

    _type_into(qtbot, viewer.segment_panel.table, 0, NAME_COLUMN, "tumour")
    viewer.segment_panel._export_csv(str(tmp_path / "stats.csv"))
    assert "tumour" in (tmp_path / "stats.csv").read_text()
    labels_path, _audit = export_and_wait(viewer, tmp_path / "edited.nii.gz")
    assert load_label_names(names_path_for(labels_path)) == {1: "tumour"}
    viewer.save_session(str(tmp_path / "study.radview"))
    reopened = Session(home=tmp_path / "other")
    reopened.load(tmp_path / "study.radview")
    try:
        (seg,) = reopened.segmentations.values()
        assert seg.table.names() == {1: "tumour"} and np.array_equal(seg.array, painted.array)
        assert {"author": "human", "name": "tumour"} in _table_edits(reopened)
    finally:
        reopened.close()
