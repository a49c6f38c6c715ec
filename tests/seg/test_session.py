"""The Session contract: paint in world mm, one undo step per action, exact undo/redo, provenance."""

import numpy as np
import pytest

from viewer.core.editing import sphere_region
from viewer.core.labels import PROV_MODEL
from viewer.core.session import Session, ai_result_segmentation
from viewer.core.volume import Volume


def test_contract_paint_undo_redo_labels(session, ct):
    seg = session.new_segmentation(ct, "liver edit")
    centre = ct.index_to_world((60, 50, 15))
    session.paint(seg, label=1, center_mm=centre, radius_mm=9)
    painted = session.labels(seg).copy()
    assert painted.shape == ct.array.shape and painted.dtype == np.uint8
    assert painted[15, 50, 60] == 1 and painted.sum() > 0
    assert session.undo() and not session.labels(seg).any()
    assert session.redo() and np.array_equal(session.labels(seg), painted)
    assert not session.redo()


def test_sphere_brush_volume_is_in_mm_on_anisotropic_oblique_grid():
    a = np.deg2rad(30)
    direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    vol = Volume(np.zeros((60, 80, 80), np.int16), spacing=(0.6, 0.8, 2.0), direction=direction)
    r = 10.0
    box, mask = sphere_region(vol, vol.index_to_world((40, 40, 30)), r)
    expected = 4 / 3 * np.pi * r**3 / np.prod(vol.spacing)
    assert mask.sum() == pytest.approx(expected, rel=0.05)
    # every selected voxel centre is within r mm of the centre, in world space
    k, j, i = np.nonzero(mask)
    idx = np.stack([i + box[2].start, j + box[1].start, k + box[0].start], axis=1)
    d = np.linalg.norm(vol.index_to_world(idx) - vol.index_to_world((40, 40, 30)), axis=1)
    assert d.max() <= r + 1e-4


def test_one_stroke_is_one_undo_step(session, ct):
    seg = session.new_segmentation(ct, "stroke")
    start = ct.index_to_world((40, 50, 15))
    with session.group("stroke"):
        for t in range(6):
            session.paint(seg, 1, start + np.array([4.0 * t, 0, 0]), 4)
    assert len(session.history) == 1
    session.undo()
    assert not seg.array.any()


def test_new_edit_clears_redo_and_history_has_no_step_limit(session, ct):
    seg = session.new_segmentation(ct, "many")
    for t in range(40):
        session.paint(seg, 1 + t % 3, ct.index_to_world((20 + t, 50, 15)), 3)
    assert len(session.history) == 40
    for _ in range(40):
        assert session.undo()
    assert not seg.array.any()
    session.redo()
    session.paint(seg, 1, ct.index_to_world((60, 60, 10)), 3)
    assert not session.redo()


def test_history_memory_is_sparse_and_budget_drops_oldest(tmp_path, ct):
    s = Session(home=tmp_path / "h", history_budget_bytes=6_000)
    seg = s.new_segmentation(ct, "budget")
    changed = s.paint(seg, 1, ct.index_to_world((60, 50, 15)), 9)
    step = s.history.steps()[-1]
    assert step.nbytes <= 2 * changed * 4 + 400 + step.deltas[0].mask.size // 8
    for t in range(30):
        s.paint(seg, 2, ct.index_to_world((10 + 3 * t, 20, 5)), 6)
    assert s.history.nbytes <= 6_000 + step.nbytes
    assert len(s.history) < 31
    s.close()


@pytest.mark.parametrize(("n_labels", "bytes_per_changed_byte"), [(3, 1.0), (300, 2.0)])
def test_history_over_mixed_labels_stays_within_twice_the_changed_bytes(tmp_path, n_labels, bytes_per_changed_byte):
    """A stroke over many other labels and provenances: <= 2x the changed bytes + the per-step constant
    (<= 1x over 3 labels: 2-bit codes; 300 labels take 16-bit codes), and undo/redo stay exact."""
    vol = Volume(np.zeros((60, 128, 128), np.int16), (0.8, 0.8, 2.5))
    rng = np.random.default_rng(0)
    s = Session(home=tmp_path)
    seg = s.new_segmentation(vol, "mixed", labels=rng.integers(0, n_labels, vol.array.shape))
    seg.provenance[:] = rng.integers(0, 3, vol.array.shape).astype(np.uint8)
    before, prov_before = seg.array.copy(), seg.provenance.copy()
    for k in range(5):
        n = s.paint(seg, 7, (30.0 + 10 * k, 50.0, 70.0), 8)
        step = s.history.steps()[-1]
        assert step.nbytes <= bytes_per_changed_byte * n * seg.array.itemsize + 200 + 64
    painted = seg.array.copy()
    while s.undo():
        pass
    assert np.array_equal(seg.array, before) and np.array_equal(seg.provenance, prov_before)
    while s.redo():
        pass
    assert np.array_equal(seg.array, painted)
    s.close()


def test_scattered_changes_are_stored_as_indices_and_undo_exactly(session, ct):
    seg = session.new_segmentation(ct, "scattered")
    new = seg.array.copy()
    new[0, 0, 0] = new[-1, -1, -1] = new[10, 20, 30] = 4
    assert session.apply(seg, new, "three voxels") == 3
    assert session.history.steps()[-1].nbytes <= 200 + 64  # not a bit per voxel of the whole grid
    assert session.undo() and not seg.array.any()
    assert session.redo() and np.array_equal(seg.array, new)


def test_provenance_counts_ai_and_hand_edits_and_follows_undo(session, ct):
    ai = np.zeros(ct.array.shape, np.uint8)
    ai[10:20, 40:60, 50:70] = 1
    seg = session.add_ai_segmentation(ct, ai, {1: "liver"}, "abdomen_ct_unet", "0.1")
    assert (seg.provenance[ai > 0] == PROV_MODEL).all()
    before = seg.provenance_summary()[1]
    assert before == {"ai_voxels": int(ai.sum()), "human_voxels": 0}
    n = session.paint(seg, 2, ct.index_to_world((60, 50, 15)), 6)
    summary = seg.provenance_summary()
    assert summary[2]["human_voxels"] == n
    assert summary[1]["ai_voxels"] < before["ai_voxels"]
    session.undo()
    assert seg.provenance_summary() == {1: before}
    kinds = [e["author"]["kind"] for e in session.audit_log()]
    assert kinds[0] == "model" and "human" in kinds


def test_a_model_result_is_adopted_as_an_ai_written_layer(session, ct):
    from ai.engine import SegmentationResult

    labels = np.zeros(ct.array.shape, np.uint8)
    labels[10:20, 40:60, 50:70] = 3
    result = SegmentationResult(ct.with_array(labels, units="label"), {3: "liver"}, model_id="m", model_version="2")
    made = ai_result_segmentation(ct, result)  # as the AI worker thread makes it
    labels[:] = 0  # the layer is a copy: the result's map may be dropped or reused
    seg = session.adopt_ai_result(ct, result, made)
    assert seg is made and seg.uid in session.segmentations and seg.table.names() == {3: "liver"}
    assert seg.provenance_summary() == {3: {"ai_voxels": 10 * 20 * 20, "human_voxels": 0}}
    assert session.audit_log()[-1]["author"] == {"kind": "model", "id": "m", "version": "2"}
    again = session.adopt_ai_result(ct, SegmentationResult(result.labels, {}, model_id="m", model_version="2"))
    assert again is not seg and not again.array.any()  # made here from the (now empty) result


def test_locked_labels_and_threshold_paint(session, ct):
    seg = session.new_segmentation(ct, "rules")
    centre = ct.index_to_world((60, 50, 15))
    session.paint(seg, 1, centre, 6)
    locked = seg.array == 1
    seg.table.ensure(1).locked = True
    n = session.paint(seg, 2, centre, 9)
    assert locked.sum() > 0 and np.array_equal(seg.array == 1, locked)  # no locked voxel painted over
    assert n > 0 and (seg.array == 2).sum() == n  # the rest of the larger sphere was painted
    seg.table.ensure(1).locked = False
    session.paint(seg, 3, centre, 9, intensity_range=(0, 200))
    values = ct.array[seg.array == 3]
    assert values.size and values.min() >= 0 and values.max() <= 200


def test_save_and_open_a_session(session, ct, tmp_path):
    from viewer.core.measurements import Measurement

    seg = session.new_segmentation(ct, "saved", names={1: "liver"})
    session.paint(seg, 1, ct.index_to_world((60, 50, 15)), 9)
    session.measurements.append(Measurement("ruler", [[0, 0, 0], [0, 0, 10]], "r", {"length_mm": 10.0}))
    session.save(tmp_path / "study.radview")
    other = Session(home=tmp_path / "other")
    other.load(tmp_path / "study.radview")
    (loaded,) = other.segmentations.values()
    assert loaded.name == "saved" and loaded.table.names() == {1: "liver"}
    assert np.array_equal(loaded.array, seg.array) and np.array_equal(loaded.provenance, seg.provenance)
    assert other.volumes[0].same_grid(ct) and other.measurements[0].values == {"length_mm": 10.0}
    other.close()


def test_images_without_segmentations_are_released(session, ct, shared_data):
    seg = session.new_segmentation(ct, "kept")
    other = session.add_volume(session.open(shared_data / "ct_abdomen_3mm.nii.gz"))
    third = session.add_volume(session.open(shared_data / "ct_abdomen_3mm.nii.gz"))
    assert session.add_volume(third) is third and len(session.volumes) == 3  # added once
    session.release_unused_volumes(keep=third)
    assert session.volumes == [ct, third] and seg.reference is ct and other not in session.volumes


def test_edit_label_logs_only_what_changed_and_needs_a_name(session, ct):
    seg = session.new_segmentation(ct, "table", names={1: "liver"})
    session.edit_label(seg, 1, name="liver", visible=True)  # nothing changes: nothing to audit
    assert not [e for e in session.audit_log() if e["action"] == "label 1 table edit"]
    session.edit_label(seg, 1, name="liver", locked=True)
    (entry,) = [e for e in session.audit_log() if e["action"] == "label 1 table edit"]
    assert entry["changes"] == {"locked": True} and entry["author"]["kind"] == "human"
    with pytest.raises(ValueError, match="needs a name"):
        session.edit_label(seg, 1, name="  ")
    assert seg.table.labels[1].name == "liver"
