"""Crash-safe edit journal: every committed change is appended to disk by a background thread.

Layout under ``<home>/journal/<segmentation uid>/``: ``header.json`` (name, reference geometry and
source, label table) and ``deltas.bin``, a sequence of records ``[u32 length][u32 crc32][payload]``
where the payload is an .npz of one delta (box, packed mask, values to write, provenance). Replaying
the records in order rebuilds the label map; undo/redo are journalled as the deltas they apply.
A clean close writes ``closed``; a journal without it is offered for recovery.
"""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import struct
import threading
import zlib
from pathlib import Path

import numpy as np

from viewer.core.errors import JournalError
from viewer.core.history import Delta, compact
from viewer.core.labels import LabelTable, Segmentation
from viewer.core.volume import Volume

log = logging.getLogger(__name__)
#: Seconds between forced flushes to disk (fsync): at most this much committed work is at risk.
FLUSH_INTERVAL_S = 0.5
_RECORD = struct.Struct("<II")


def _encode(delta: Delta, forward: bool) -> bytes:
    buf = io.BytesIO()
    np.savez(
        buf,
        box=np.array([[s.start, s.stop] for s in delta.box], np.int64),
        shape=np.array(delta.shape, np.int64),
        mask=delta.bits,
        values=delta.new if forward else delta.old,
        prov=delta.new_prov if forward else delta.old_prov,
    )
    payload = buf.getvalue()
    return _RECORD.pack(len(payload), zlib.crc32(payload)) + payload


def _apply_record(payload: bytes, array: np.ndarray, provenance: np.ndarray) -> None:
    with np.load(io.BytesIO(payload)) as z:
        box = tuple(slice(int(a), int(b)) for a, b in z["box"])
        shape = tuple(int(v) for v in z["shape"])
        mask = np.unpackbits(z["mask"], count=int(np.prod(shape))).astype(bool).reshape(shape)
        array[box][mask] = z["values"]
        provenance[box][mask] = z["prov"]


class Journal:
    """The on-disk journal of one segmentation, written by a daemon thread (callers never block on I/O)."""

    def __init__(self, root: Path, seg: Segmentation, source: str | None = None):
        self.dir = Path(root) / seg.uid
        self.dir.mkdir(parents=True, exist_ok=True)
        ref = seg.reference
        header = {
            "version": 1, "name": seg.name, "uid": seg.uid, "source": source, "dtype": str(seg.array.dtype),
            "shape": list(seg.array.shape), "spacing": list(ref.spacing), "origin": list(ref.origin),
            "direction": list(np.asarray(ref.direction).ravel()), "table": seg.table.to_json(),
        }
        (self.dir / "header.json").write_text(json.dumps(header))
        self._file = open(self.dir / "deltas.bin", "ab")  # noqa: SIM115 - closed in close()
        if seg.array.any():  # an initial label map (e.g. from a model) is journalled as one record
            from viewer.core.editing import replace_all

            blank = Segmentation(ref, seg.name, np.zeros_like(seg.array), uid=seg.uid,
                                 provenance=np.zeros_like(seg.provenance))
            delta = replace_all(blank, seg.array, 0)
            delta.new_prov = compact(seg.provenance[delta.box][delta.mask])
            self._file.write(_encode(delta, True))
            self._file.flush()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"journal-{seg.uid[:8]}", daemon=True)
        self._thread.start()

    def append(self, delta: Delta, forward: bool = True) -> None:
        """Queue a delta (forward: its new values; backward: its old values, for undo).

        Encoding and writing happen on the journal thread; the caller only enqueues.
        """
        self._queue.put((delta, forward))

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=FLUSH_INTERVAL_S)
            except queue.Empty:
                continue
            batch = [item]
            while item is not None and not self._queue.empty():  # batch what is waiting
                item = self._queue.get_nowait()
                batch.append(item)
            for entry in batch:
                if entry is not None:
                    self._file.write(_encode(*entry))
            self._sync()  # then make it durable
            for _ in batch:
                self._queue.task_done()
            if batch[-1] is None:
                return

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def flush(self) -> None:
        """Block until everything queued is on disk."""
        self._queue.join()

    def close(self, keep: bool = False) -> None:
        """Stop the writer; mark the journal closed (not offered for recovery) unless ``keep``."""
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._file.close()
        if not keep:
            (self.dir / "closed").write_text("closed cleanly\n")


def open_journals(root: Path) -> list[Path]:
    """Journal folders under ``root`` that were not closed cleanly (crash, kill)."""
    if not Path(root).is_dir():
        return []
    return sorted(p for p in Path(root).iterdir() if (p / "header.json").exists() and not (p / "closed").exists())


def replay(folder: Path) -> tuple[Segmentation, list[str]]:
    """Rebuild the segmentation recorded in ``folder``; a damaged tail is dropped with a warning.

    Raises JournalError (naming the file) when the header cannot be read.
    """
    header_path = Path(folder) / "header.json"
    try:
        h = json.loads(header_path.read_text())
        ref = Volume(np.broadcast_to(np.zeros((), np.uint8), tuple(h["shape"])), h["spacing"], h["origin"],
                     np.reshape(h["direction"], (3, 3)), description=h.get("source") or "")
        array = np.zeros(tuple(h["shape"]), np.dtype(h["dtype"]))
        table = LabelTable.from_json(h["table"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise JournalError(f"journal header is damaged ({err})", header_path) from err
    provenance = np.zeros(array.shape, np.uint8)
    warnings = []
    data = (Path(folder) / "deltas.bin").read_bytes() if (Path(folder) / "deltas.bin").exists() else b""
    pos = n = 0
    while pos < len(data):
        if pos + _RECORD.size > len(data):
            warnings.append(f"{folder / 'deltas.bin'}: truncated record after {n} edits; later edits lost")
            break
        length, crc = _RECORD.unpack_from(data, pos)
        payload = data[pos + _RECORD.size: pos + _RECORD.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            warnings.append(f"{folder / 'deltas.bin'}: damaged record after {n} edits; later edits lost")
            break
        try:
            _apply_record(payload, array, provenance)
        except (ValueError, KeyError, OSError) as err:
            warnings.append(f"{folder / 'deltas.bin'}: unreadable record {n} ({err}); later edits lost")
            break
        pos += _RECORD.size + length
        n += 1
    for label in np.unique(array):
        if label:
            table.ensure(int(label))
    return Segmentation(ref, h["name"], array, table, uid=h["uid"], provenance=provenance,
                        source=h.get("source")), warnings
