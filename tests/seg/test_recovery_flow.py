"""The crash recovery flow without a window: what is offered, in which order images re-open, what is restored,
skipped or declined (viewer.core.recovery; the GUI only asks and opens the images)."""

from __future__ import annotations

import numpy as np

from viewer.core.errors import LabelMapError
from viewer.core.io import load_volume
from viewer.core.recovery import Recovery
from viewer.core.session import Session


def _crash(home, demo_study) -> tuple:
    """A session that journals a CT and a PET segmentation (CT first), then dies without close()."""
    crashed = Session(home=home)
    ct, pet = crashed.open(demo_study.ct_dir), crashed.open(demo_study.pet_dir)
    on_ct = crashed.new_segmentation(ct, "liver edits")
    crashed.paint(on_ct, 2, ct.index_to_world((100, 120, 50)), 10)
    on_pet = crashed.new_segmentation(pet, "lesion edits")
    crashed.paint(on_pet, 1, pet.index_to_world((40, 40, 38)), 12)
    crashed.flush()
    return on_ct, on_pet


def test_recovery_reopens_each_image_and_restores_its_segmentations(tmp_path, demo_study):
    on_ct, on_pet = _crash(tmp_path, demo_study)
    session = Session(home=tmp_path)
    recovery = Recovery.find(session)
    assert recovery and "'liver edits'" in recovery.question() and "'lesion edits'" in recovery.question()
    images = recovery.images()
    # the first offered segmentation's image opens last: it stays shown
    assert sorted(images) == sorted({on_ct.source, on_pet.source}) and images[-1] == recovery.segmentations[0].source
    for source in images:
        adopted, errors = recovery.restore(source, session.open(source))
        assert errors == [] and len(adopted) == 1
    assert not recovery
    restored = {s.name: s for s in session.segmentations.values()}
    assert np.array_equal(restored["liver edits"].array, on_ct.array)
    assert np.array_equal(restored["lesion edits"].array, on_pet.array)
    assert restored["lesion edits"].reference.units == "SUVbw"
    assert session.audit_log()[-1]["action"] == "recovered after a crash"
    session.close()
    assert Recovery.find(Session(home=tmp_path)).segmentations == []  # handled: not offered again


def test_a_segmentation_that_does_not_fit_its_image_is_reported_and_kept(tmp_path, demo_study):
    on_ct, _ = _crash(tmp_path, demo_study)
    session = Session(home=tmp_path)
    recovery = Recovery.find(session)
    ct_source = next(r.source for r in recovery.segmentations if r.name == "liver edits")
    pet_source = next(s for s in recovery.images() if s != ct_source)
    adopted, errors = recovery.restore(ct_source, load_volume(demo_study.pet_dir))  # the wrong image
    assert adopted == [] and len(errors) == 1 and isinstance(errors[0], LabelMapError)
    assert "liver edits" in str(errors[0])
    recovery.skip(pet_source)  # e.g. the PET could not be opened
    assert not recovery and session.segmentations == {}
    session.close()
    assert sorted(r.name for r in Recovery.find(Session(home=tmp_path)).segmentations) == [
        "lesion edits", "liver edits"]  # both journals are offered again at the next start


def test_declining_closes_every_journal(tmp_path, demo_study):
    _crash(tmp_path, demo_study)
    recovery = Recovery.find(Session(home=tmp_path))
    recovery.decline()
    assert not recovery and recovery.images() == []
    assert not Recovery.find(Session(home=tmp_path))


def test_an_unreadable_journal_is_told_once_and_kept_aside(tmp_path, demo_study):
    """A journal whose header is damaged cannot be offered: the flow names it among its problems once, keeps it
    aside, and still offers the others; the next start neither offers nor reports it."""
    from viewer.core.journal import DAMAGED_DIR, open_journals

    _crash(tmp_path, demo_study)
    session = Session(home=tmp_path)
    damaged = open_journals(session.journal_dir)[0]
    (damaged / "header.json").write_text("{not json")
    recovery = Recovery.find(session)
    assert len(recovery.segmentations) == 1 and len(recovery.problems) == 1
    assert "header.json" in recovery.problems[0] and str(session.journal_dir / DAMAGED_DIR) in recovery.problems[0]
    recovery.decline()
    again = Recovery.find(Session(home=tmp_path))
    assert not again and again.problems == []
    assert (session.journal_dir / DAMAGED_DIR / damaged.name / "deltas.bin").is_file()
