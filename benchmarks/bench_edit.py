"""Editing speed and undo memory on a 512x512x300 label map: radview's sparse deltas vs full-copy undo.

Measures a 10 mm-radius 3D brush dab (ms), undo of a step (ms), history bytes per changed voxel (over
background and over a mix of three labels and provenances), and the caller-side time of handing a whole
initial label map to the journal. The peer is the naive undo many tools use: a full copy of
the label map per step (np.copy), timed in the same run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.core.journal import Journal  # noqa: E402
from viewer.core.labels import Segmentation  # noqa: E402
from viewer.core.session import Session  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402

N_DABS = 60


def pct(values, q):
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 3)


def mixed_history_ratio(vol: Volume, home: str) -> float:
    """Worst history bytes per changed byte of 20 dabs over random labels 0-2 with random provenance."""
    rng = np.random.default_rng(1)
    s = Session(home=home)
    seg = s.new_segmentation(vol, "mixed", labels=rng.integers(0, 3, vol.array.shape).astype(np.uint8))
    seg.provenance[:] = rng.integers(0, 3, vol.array.shape).astype(np.uint8)
    ratios = []
    for k in range(20):
        n = s.paint(seg, 7, vol.index_to_world((100 + 12 * k, 256, 150)), 10.0)
        ratios.append(s.history.steps()[-1].nbytes / (n * seg.array.itemsize))
    s.close()
    return round(max(ratios), 3)


def journal_handoff_ms(vol: Volume, home: str) -> float:
    """Caller-side time of starting a journal on a full 512x512x300 label map (written by its thread)."""
    labels = np.zeros(vol.array.shape, np.uint8)
    labels[50:250, 100:400, 100:400] = 1
    labels[100:200, 150:300, 150:300] = 2
    seg = Segmentation(vol, "initial", labels)
    t = time.perf_counter()
    journal = Journal(Path(home), seg)
    elapsed = time.perf_counter() - t
    journal.close()
    return round(elapsed * 1000, 3)


def main() -> int:
    vol = Volume(np.zeros((300, 512, 512), np.int16), spacing=(0.7, 0.7, 1.0), modality="CT", units="HU")
    with tempfile.TemporaryDirectory() as home:
        s = Session(home=home)
        seg = s.new_segmentation(vol, "bench")
        rng = np.random.default_rng(0)
        centres = [vol.index_to_world((rng.integers(40, 470), rng.integers(40, 470), rng.integers(20, 280)))
                   for _ in range(N_DABS)]
        dab, changed = [], 0
        for c in centres:
            t = time.perf_counter()
            changed += s.paint(seg, 1, c, 10.0)
            dab.append(time.perf_counter() - t)
        history_bytes = s.history.nbytes
        undo = []
        for _ in range(N_DABS):
            t = time.perf_counter()
            s.undo()
            undo.append(time.perf_counter() - t)
        assert not seg.array.any()
        s.close()
        mixed_ratio = mixed_history_ratio(vol, home)
        handoff_ms = journal_handoff_ms(vol, home)
    # peer: full-copy undo (copy the label map before each dab)
    arr = np.zeros((300, 512, 512), np.uint8)
    copies, copy_t = [], []
    for _ in range(5):
        t = time.perf_counter()
        copies.append(arr.copy())
        copy_t.append(time.perf_counter() - t)
    full_copy_bytes_per_step = arr.nbytes
    result = {
        "benchmark": "edit",
        "grid": [512, 512, 300],
        "brush": "3D sphere, radius 10 mm, spacing 0.7x0.7x1.0 mm",
        "dabs": N_DABS,
        "brush_ms_median": pct(dab, 50), "brush_ms_p95": pct(dab, 95), "brush_ms_max": pct(dab, 100),
        "undo_ms_median": pct(undo, 50), "undo_ms_p95": pct(undo, 95),
        "changed_voxels": changed,
        "history_bytes": history_bytes,
        "history_bytes_per_changed_voxel": round(history_bytes / changed, 3),
        "history_bytes_per_changed_byte_over_mixed_labels_max": mixed_ratio,
        "initial_map_journal_handoff_ms": handoff_ms,
        "peer": "full-copy undo (np.copy of the label map per step)",
        "peer_copy_ms_median": pct(copy_t, 50),
        "peer_bytes_per_step": full_copy_bytes_per_step,
        "memory_ratio_peer_over_radview": round(full_copy_bytes_per_step * N_DABS / history_bytes, 1),
        "goals": {"brush_ms": 10, "undo_ms": 10, "history_bytes_per_changed_voxel": "<= 2 (+ constant per step)"},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
