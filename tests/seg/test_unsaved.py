"""The Session knows which segmentations have edits not yet saved, and closing can keep their journals for recovery."""

from __future__ import annotations

import numpy as np

from viewer.core.segmentation_files import export_segmentation
from viewer.core.session import Session


def _painted(session, ct, name="liver"):
    seg = session.new_segmentation(ct, name)
    session.paint(seg, 2, ct.index_to_world(np.array(ct.size) // 2), 8)
    return seg


def test_every_edit_path_marks_unsaved_and_export_clears(session, ct, tmp_path):
    seg = session.new_segmentation(ct, "liver")
    assert session.unsaved() == []  # an empty new segmentation holds nothing to lose
    centre = ct.index_to_world(np.array(ct.size) // 2)
    edits = [lambda: session.paint(seg, 2, centre, 8), lambda: session.erase(seg, centre, 3),
             lambda: session.apply(seg, (ct.array > 200).astype(np.uint8), "threshold"),
             session.undo, session.redo, lambda: session.edit_label(seg, 2, name="kidney")]
    for edit in edits:
        edit()
        assert session.unsaved() == ["liver"], edit
        export_segmentation(session, seg, tmp_path / "liver.nii.gz")
        assert session.unsaved() == []
    ai = session.add_ai_segmentation(ct, (ct.array > 300).astype(np.uint8), {1: "bone"}, "bones", "1")
    assert session.unsaved() == [ai.name]


def test_session_save_clears_and_opening_a_saved_session_is_not_unsaved(session, ct, tmp_path):
    _painted(session, ct)
    session.save(tmp_path / "saved")
    assert session.unsaved() == []
    reopened = Session(home=tmp_path / "other home")
    reopened.load(tmp_path / "saved")
    assert reopened.unsaved() == []
    reopened.close()


def test_an_edit_after_the_saved_state_stays_unsaved(session, ct):
    seg = _painted(session, ct)
    as_of = session.edit_serial()
    session.paint(seg, 3, ct.index_to_world((10, 10, 10)), 5)  # while the export was writing
    session.mark_saved(seg, as_of)
    assert session.unsaved() == ["liver"]


def test_close_keeping_unsaved_offers_them_at_the_next_start(tmp_path, ct):
    home = tmp_path / "closing home"
    closing = Session(home=home)
    edited = _painted(closing, ct)
    saved = _painted(closing, ct, "saved")
    export_segmentation(closing, saved, tmp_path / "saved.nii.gz")
    closing.close(keep_unsaved=True)
    recovered = Session(home=home).recover()
    assert [r.name for r in recovered] == ["liver"]  # the exported one is not offered
    assert np.array_equal(recovered[0].array, edited.array)


def test_close_without_keep_deletes_the_journals(tmp_path, ct):
    home = tmp_path / "closing home"
    closing = Session(home=home)
    _painted(closing, ct)
    closing.close()
    assert Session(home=home).recover() == []
    assert not any((home / "journal").iterdir())
