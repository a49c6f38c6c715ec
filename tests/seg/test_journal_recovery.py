"""Recovery restores everything a crash could lose: uint16 labels, reopened sessions, metadata, hand removals."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from viewer.core.audit import segment_algorithms
from viewer.core.errors import JournalError
from viewer.core.journal import ORPHAN_AGE_S, Journal, replay
from viewer.core.labels import Segmentation
from viewer.core.session import Session
from viewer.core.volume import Volume


def _sigkill_child(script: str, *args) -> str:
    """Run ``script`` in a fresh Python; it prints one line, then kills itself with SIGKILL."""
    code = script + "\nprint(result, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.strip()


def test_labels_past_255_recover_as_uint16(tmp_path, ct):
    crashed = Session(home=tmp_path)  # never closed: as after a crash
    seg = crashed.new_segmentation(ct, "many")
    centre = ct.index_to_world(np.array(ct.size) // 2)
    crashed.paint(seg, 5, centre + [20, 0, 0], 5)
    crashed.paint(seg, 300, centre, 8)  # promotes the map to uint16
    crashed.paint(seg, 7, centre + [0, 20, 0], 5)
    initial = crashed.new_segmentation(ct, "many from a file", labels=seg.array)  # journalled whole, uint16
    crashed.flush()
    recovered = {r.name: r for r in Session(home=tmp_path).recover()}
    for original in (seg, initial):
        rec = recovered[original.name]
        assert rec.array.dtype == np.uint16 and np.array_equal(rec.array, original.array)
        assert (rec.array == 300).sum() > 0 and np.array_equal(rec.provenance, original.provenance)


REOPEN_CHILD = """
import os, signal, sys
import numpy as np
import pytest
from viewer.core.session import Session
s = Session(home=sys.argv[1])
s.load(sys.argv[2])
(seg,) = s.segmentations.values()
s.paint(seg, label=2, center_mm=seg.reference.index_to_world((70, 50, 15)), radius_mm=6)
s.flush()
np.save(sys.argv[3], seg.array)
result = "painted"
"""


def test_a_reopened_saved_session_is_recovered_after_sigkill(tmp_path, shared_data):
    home, folder = tmp_path / "home", tmp_path / "saved"
    a = Session(home=home)
    vol = a.open(shared_data / "ct_abdomen_3mm.nii.gz")
    seg = a.new_segmentation(vol, "A-seg", names={1: "liver"})
    a.paint(seg, 1, vol.index_to_world((60, 50, 15)), 9)
    a.save(folder)
    a.close()
    expected = tmp_path / "expected.npy"
    assert _sigkill_child(REOPEN_CHILD, home, folder, expected) == "painted"
    (rec,) = Session(home=home).recover()
    want = np.load(expected)
    assert rec.name == "A-seg" and np.array_equal(rec.array, want) and {1, 2} <= set(np.unique(want))
    assert rec.table.names()[1] == "liver"


def test_erasing_an_ai_label_by_hand_counts_as_a_hand_edit(session, ct):
    ai = np.zeros(ct.array.shape, np.uint8)
    ai[10:20, 40:60, 50:70] = 5
    seg = session.add_ai_segmentation(ct, ai, {5: "liver"}, "abdomen-unet", "1.2")
    assert segment_algorithms(session, seg)[5]["algorithm_type"] == "AUTOMATIC"
    n = session.erase(seg, ct.index_to_world((60, 50, 15)), 6)
    summary = seg.provenance_summary()[5]
    assert n > 0 and summary == {"ai_voxels": int(ai.sum()) // 5 - n, "human_voxels": 0, "human_removed": n}
    algorithm = segment_algorithms(session, seg)[5]
    assert algorithm == {"algorithm_type": "SEMIAUTOMATIC", "name": "abdomen-unet", "version": "1.2"}
    session.undo()  # the removal is taken back
    assert "human_removed" not in seg.provenance_summary()[5]
    assert segment_algorithms(session, seg)[5]["algorithm_type"] == "AUTOMATIC"
    session.redo()
    assert seg.provenance_summary()[5]["human_removed"] == n


def test_overwriting_an_ai_label_counts_as_its_hand_removal(session, ct):
    ai = np.zeros(ct.array.shape, np.uint8)
    ai[10:20, 40:60, 50:70] = 5
    seg = session.add_ai_segmentation(ct, ai, {5: "liver"}, "m", "1")
    n = session.paint(seg, 2, ct.index_to_world((60, 50, 15)), 6)
    assert seg.provenance_summary()[5]["human_removed"] == n


def test_recovery_restores_model_identity_audit_and_label_table_edits(tmp_path, ct):
    crashed = Session(home=tmp_path, user="dr_a")
    ai = np.zeros(ct.array.shape, np.uint8)
    ai[10:20, 40:60, 50:70] = 5
    ai[5:8, 10:20, 10:20] = 1
    seg = crashed.add_ai_segmentation(ct, ai, {5: "liver", 1: "spleen"}, "abdomen-unet", "1.2")
    seg.table.labels[1].name = "renamed_spleen"  # changed in the table directly, not via edit_label
    crashed.edit_label(seg, 5, color=(1, 2, 3))
    n = crashed.erase(seg, ct.index_to_world((60, 50, 15)), 6)
    crashed.flush()

    s = Session(home=tmp_path)
    (rec,) = s.recover()
    assert rec.table.names() == {1: "renamed_spleen", 5: "liver"} and rec.table.labels[5].color == (1, 2, 3)
    adopted = s.adopt_recovered(ct, rec)
    assert adopted.provenance_summary()[5]["human_removed"] == n
    algorithms = segment_algorithms(s, adopted)
    assert algorithms[1] == {"algorithm_type": "AUTOMATIC", "name": "abdomen-unet", "version": "1.2"}
    assert algorithms[5]["algorithm_type"] == "SEMIAUTOMATIC"
    actions = [e["action"] for e in s.audit_log()]
    assert actions[0] == "model output" and "label 5 table edit" in actions
    assert any(a.startswith("erase") for a in actions) and actions[-1] == "recovered after a crash"
    s.close()


def _big_labels() -> np.ndarray:
    lab = np.zeros((300, 512, 512), np.uint8)
    lab[50:250, 100:400, 100:400] = 1
    lab[100:200, 150:300, 150:300] = 2
    return lab


def test_an_initial_label_map_is_journalled_whole_by_the_journal_thread(tmp_path):
    """The caller only hands the map over (its time: benchmarks/bench_edit.py, initial_map_journal_handoff_ms)."""
    vol = Volume(np.zeros((300, 512, 512), np.int16), (0.8, 0.8, 1.0))
    seg = Segmentation(vol, "big", _big_labels())
    seg.provenance[...] = seg.array != 0
    journal = Journal(tmp_path, seg, None)
    journal.flush()
    rec, warnings = replay(journal.dir)
    assert not warnings and np.array_equal(rec.array, seg.array) and np.array_equal(rec.provenance, seg.provenance)
    journal.close()


BIG_CHILD = """
import os, signal, sys
import numpy as np
import pytest
from viewer.core.session import Session
from viewer.core.volume import Volume
from tests.seg.test_journal_recovery import _big_labels
s = Session(home=sys.argv[1])
vol = Volume(np.zeros((300, 512, 512), np.int16), (0.8, 0.8, 1.0))
seg = s.add_ai_segmentation(vol, _big_labels(), {1: "body", 2: "organ"}, "m", "1")
s.paint(seg, 3, (200.0, 200.0, 150.0), 10)
s.flush()
result = int((seg.array == 3).sum())
"""


def test_an_initial_label_map_is_recovered_after_sigkill_once_flushed(tmp_path):
    painted = int(_sigkill_child(BIG_CHILD, tmp_path))
    (rec,) = Session(home=tmp_path).recover()
    expected = _big_labels()
    three = rec.array == 3
    assert three.sum() == painted > 0
    assert np.array_equal(rec.array[~three], expected[~three])
    assert rec.table.names() == {1: "body", 2: "organ", 3: "label_3"}


def test_closed_journals_are_deleted_and_unclosed_ones_kept(tmp_path, ct):
    crashed = Session(home=tmp_path)
    kept = crashed.new_segmentation(ct, "crashed")
    crashed.paint(kept, 1, ct.index_to_world((60, 50, 15)), 5)
    crashed.flush()
    s = Session(home=tmp_path)
    seg = s.new_segmentation(ct, "closed")
    s.paint(seg, 1, ct.index_to_world((60, 50, 15)), 5)
    s.flush()
    folder = s.journal_folder(seg)
    s.close()
    assert not folder.exists()
    assert crashed.journal_folder(kept).is_dir()
    declined = Session(home=tmp_path)
    declined.discard_recovery()  # the user declined: the journal is closed ...
    assert crashed.journal_folder(kept).is_dir()
    Session(home=tmp_path)  # ... and deleted at the next start
    assert not crashed.journal_folder(kept).exists()


def test_a_journal_that_cannot_be_written_is_a_journal_error_not_a_hang(tmp_path, ct):
    (tmp_path / "journal").write_text("a file where the journal folder should be")
    s = Session(home=tmp_path)
    seg = s.new_segmentation(ct, "unwritable")
    assert s.paint(seg, 1, ct.index_to_world((60, 50, 15)), 5) > 0  # editing goes on
    with pytest.raises(JournalError, match="cannot write the journal") as err:
        s.flush()
    assert str(s.journal_folder(seg)) in str(err.value)
    s.close()


def test_debris_of_a_crash_before_the_header_is_deleted_only_when_old(tmp_path):
    old, fresh = tmp_path / "journal" / "old-debris", tmp_path / "journal" / "fresh"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "deltas.bin").write_bytes(b"RVJ2")
    os.utime(old, (time.time() - 2 * ORPHAN_AGE_S,) * 2)
    Session(home=tmp_path)
    assert not old.exists() and fresh.is_dir()  # a fresh one may be a journal still writing its first map


def test_hand_removals_are_saved_with_the_session(tmp_path, ct):
    a = Session(home=tmp_path / "home")
    ai = np.zeros(ct.array.shape, np.uint8)
    ai[10:20, 40:60, 50:70] = 5
    seg = a.add_ai_segmentation(ct, ai, {5: "liver"}, "abdomen-unet", "1.2")
    n = a.erase(seg, ct.index_to_world((60, 50, 15)), 6)
    a.save(tmp_path / "saved")
    a.close()
    b = Session(home=tmp_path / "home")
    b.load(tmp_path / "saved")
    (loaded,) = b.segmentations.values()
    assert loaded.provenance_summary()[5]["human_removed"] == n
    assert segment_algorithms(b, loaded)[5]["algorithm_type"] == "SEMIAUTOMATIC"
    b.close()


LIVE_CHILD = """
import sys, time
from viewer.core.session import Session
s = Session(home=sys.argv[1])
vol = s.open(sys.argv[2])
seg = s.new_segmentation(vol, "still editing")
s.paint(seg, 1, vol.index_to_world((60, 50, 15)), 5)
s.flush()
print("painted", flush=True)
time.sleep(60)
"""


def test_a_journal_another_running_radview_writes_is_not_offered(tmp_path, shared_data):
    ct_path = shared_data / "ct_abdomen_3mm.nii.gz"
    proc = subprocess.Popen([sys.executable, "-c", LIVE_CHILD, str(tmp_path), str(ct_path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "painted"
        other = Session(home=tmp_path)
        assert other.recover() == []
        other.discard_recovery()  # declining does not close the other window's journal
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (rec,) = Session(home=tmp_path).recover()
    assert rec.name == "still editing" and rec.array.any()
