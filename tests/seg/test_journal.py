"""Crash safety: a SIGKILLed editing process loses nothing that was journalled; damage is contained."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from viewer.core.errors import JournalError
from viewer.core.journal import DAMAGED_DIR, MAGIC, clean_closed, replay
from viewer.core.session import Session

DABS = [(60 + 3 * t, 50, 15) for t in range(12)]

CHILD = textwrap.dedent(
    """
    import sys, time
    from viewer.core.session import Session
    s = Session(home=sys.argv[1])
    vol = s.open(sys.argv[2])
    seg = s.new_segmentation(vol, "crash test")
    for i, j, k in {dabs}:
        s.paint(seg, label=1 + i % 2, center_mm=vol.index_to_world((i, j, k)), radius_mm=5)
    s.undo()
    print("painted", flush=True)
    time.sleep(60)
    """
)


def _expected(ct_path, tmp_path):
    s = Session(home=tmp_path / "reference")
    vol = s.open(ct_path)
    seg = s.new_segmentation(vol, "reference")
    for i, j, k in DABS:
        s.paint(seg, label=1 + i % 2, center_mm=vol.index_to_world((i, j, k)), radius_mm=5)
    s.undo()
    s.close()
    return seg.array


def test_sigkill_mid_session_recovers_every_committed_edit(shared_data, tmp_path):
    home = tmp_path / "home"
    ct_path = shared_data / "ct_abdomen_3mm.nii.gz"
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(dabs=DABS), str(home), str(ct_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "painted"
    time.sleep(2.0)  # the journal writer flushes at least every 0.5 s
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    recovered = Session(home=home).recover()
    assert len(recovered) == 1 and recovered[0].name == "crash test"
    assert np.array_equal(recovered[0].array, _expected(ct_path, tmp_path))


def test_clean_close_is_not_offered_for_recovery(shared_data, tmp_path):
    s = Session(home=tmp_path)
    seg = s.new_segmentation(s.open(shared_data / "ct_abdomen_3mm.nii.gz"), "x")
    s.paint(seg, 1, seg.reference.index_to_world((60, 50, 15)), 5)
    s.close()
    assert Session(home=tmp_path).recover() == []


def _crashed_session(home, shared_data, name):
    s = Session(home=home)
    vol = s.open(shared_data / "ct_abdomen_3mm.nii.gz")
    seg = s.new_segmentation(vol, name)
    for t in range(3):
        s.paint(seg, 1, vol.index_to_world((40 + 10 * t, 50, 15)), 5)
    s.flush()
    return s, seg


def test_truncated_tail_keeps_the_edits_before_it(shared_data, tmp_path):
    s, seg = _crashed_session(tmp_path, shared_data, "tail")
    deltas = s.journal_folder(seg) / "deltas.bin"
    data = deltas.read_bytes()
    deltas.write_bytes(data[:_delta_records(data)[-1] + 20])  # the third dab's record is cut short
    recovered = Session(home=tmp_path)
    (seg2,) = recovered.recover()
    assert 0 < (seg2.array > 0).sum() < (seg.array > 0).sum()  # the first two dabs survive, the third is lost
    assert any("truncated" in w or "damaged" in w for w in recovered.recovery_warnings)


def _delta_records(data: bytes) -> list[int]:
    """Byte offsets of the delta records of a journal."""
    starts = [i for i in range(len(data)) if data.startswith(MAGIC, i)]
    return [i for i in starts if data[i + len(MAGIC) + 8: i + len(MAGIC) + 9] == b"D"]


def test_flipped_byte_mid_journal_loses_only_that_record(shared_data, tmp_path):
    s, seg = _crashed_session(tmp_path, shared_data, "flip")
    deltas = s.journal_folder(seg) / "deltas.bin"
    data = bytearray(deltas.read_bytes())
    second = _delta_records(bytes(data))[1]
    data[second + 40] ^= 0xFF  # inside the second dab's record
    deltas.write_bytes(bytes(data))
    recovered = Session(home=tmp_path)
    (seg2,) = recovered.recover()
    first = s.history.steps()[1].deltas[0]
    lost = np.zeros(seg.array.shape, bool)
    lost[first.box][first.mask] = True
    assert np.array_equal(seg2.array[~lost], seg.array[~lost])  # the first and third dabs survive
    assert (seg2.array[lost] == 0).any()  # only the second dab is lost
    (warning,) = recovered.recovery_warnings
    assert str(deltas) in warning and "later records recovered" in warning


def test_corrupt_header_is_a_journal_error_and_others_still_recover(shared_data, tmp_path):
    crashed, bad = _crashed_session(tmp_path, shared_data, "bad")
    _, good = _crashed_session(tmp_path, shared_data, "good")
    (crashed.journal_folder(bad) / "header.json").write_text("{not json")
    s = Session(home=tmp_path)
    recovered = s.recover()
    assert [r.name for r in recovered] == ["good"]
    assert np.array_equal(recovered[0].array, good.array)
    (err,) = s.recovery_errors
    assert isinstance(err, JournalError) and "header.json" in str(err)
    # the damaged journal is kept aside, byte for byte, and not reported again at the next start
    kept = crashed.journal_dir / DAMAGED_DIR / crashed.journal_folder(bad).name
    assert str(kept) in str(err) and (kept / "header.json").read_text() == "{not json"
    assert (kept / "deltas.bin").stat().st_size > 0
    s.discard_recovery()
    clean_closed(s.journal_dir)
    again = Session(home=tmp_path)
    assert again.recover() == [] and again.recovery_errors == [] and kept.is_dir()


def test_every_dab_of_a_stroke_is_journalled(shared_data, tmp_path):
    """Dabs are appended by the journal's thread (the caller's time per dab: benchmarks/bench_edit.py)."""
    s = Session(home=tmp_path)
    vol = s.open(shared_data / "ct_abdomen_3mm.nii.gz")
    seg = s.new_segmentation(vol, "stroke")
    for t in range(20):
        s.paint(seg, 1 + t % 3, vol.index_to_world((30 + 3 * t, 50, 15)), 8)
    s.flush()
    replayed, warnings = replay(s.journal_folder(seg))
    assert warnings == [] and np.array_equal(replayed.array, seg.array)
    assert np.array_equal(replayed.provenance, seg.provenance)
    s.close()
