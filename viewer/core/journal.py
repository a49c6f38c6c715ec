"""Crash-safe edit journal: every committed change is appended to disk by a background thread.

Each Journal writes its own folder ``<home>/journal/<journal id>/`` (one per segmentation and process,
so a segmentation reopened from a saved session gets a fresh live journal): ``deltas.bin``, a sequence
of self-delimiting records ``[magic "RVJ2"][u32 length][u32 crc32][payload]``, and ``header.json``
(name, segmentation uid, reference geometry and source), written once the segmentation's initial label
map is on disk. A payload is one kind byte and its body:

- ``F``: the whole label map and provenance (zlib), the state the journal started from;
- ``D``: one delta (.npz: box, packed mask, values written with their dtype, so labels past 255
  come back as uint16, provenance);
- ``M``: metadata as JSON: name, label table, hand removals per label and new audit entries.

Replaying the records in order rebuilds the segmentation; undo/redo are journalled as the deltas they
apply. A damaged record is skipped (with a warning naming the file) and the records after it, found by
their magic and checksum, are still replayed. The writer holds a POSIX lock on ``deltas.bin``, so a
journal another running radview writes is not taken for a crashed one. A clean close writes ``closed``
and deletes the folder; folders left ``closed`` (recovered, declined) are deleted by :func:`clean_closed`.
A journal whose header cannot be read is moved into ``<home>/journal/damaged/`` by :func:`set_aside`: kept for a
person to inspect, no longer offered (or reported) at each start.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import queue
import shutil
import struct
import threading
import time
import uuid
import zlib
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no liveness check between processes
    fcntl = None

from viewer.core.errors import JournalError
from viewer.core.history import Delta
from viewer.core.labels import LabelTable, Segmentation
from viewer.core.volume import Volume

log = logging.getLogger(__name__)
#: Seconds between forced flushes to disk (fsync): at most this much committed work is at risk.
FLUSH_INTERVAL_S = 0.5
#: A folder without header.json older than this is debris of a crash during a journal's first write.
ORPHAN_AGE_S = 3600.0
FORMAT_VERSION = 2
#: where journals that cannot be replayed are kept (set_aside), under the journal root
DAMAGED_DIR = "damaged"
MAGIC = b"RVJ2"
_RECORD = struct.Struct("<II")
_STOP, _SYNC = object(), object()


def _record(kind: bytes, body: bytes) -> bytes:
    payload = kind + body
    return MAGIC + _RECORD.pack(len(payload), zlib.crc32(payload)) + payload


def _encode_delta(delta: Delta, forward: bool) -> bytes:
    buf = io.BytesIO()
    values, prov = delta.values(forward)
    np.savez(
        buf,
        box=np.array([[s.start, s.stop] for s in delta.box], np.int64),
        shape=np.array(delta.shape, np.int64),
        mask=delta.packed_mask,
        values=values,
        prov=prov,
    )
    return _record(b"D", buf.getvalue())


def _encode_full(array: np.ndarray, provenance: np.ndarray) -> bytes:
    """The whole map: ``[u8 dtype length][dtype][u32 compressed size][zlib labels][zlib provenance]``.
    zlib reads the arrays in place (no copy) and releases the GIL while it compresses."""
    labels = zlib.compress(memoryview(np.ascontiguousarray(array)).cast("B"), 1)
    prov = zlib.compress(memoryview(np.ascontiguousarray(provenance)).cast("B"), 1)
    dtype = array.dtype.str.encode()
    return _record(b"F", bytes([len(dtype)]) + dtype + struct.pack("<I", len(labels)) + labels + prov)


class _State:
    """The segmentation being rebuilt by :func:`replay`."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        self.array = np.zeros(shape, dtype)
        self.provenance = np.zeros(shape, np.uint8)
        self.meta: dict = {}
        self.audit: list[dict] = []

    def apply(self, payload: bytes) -> None:
        kind, body = payload[:1], payload[1:]
        if kind == b"D":
            self._apply_delta(body)
        elif kind == b"F":
            self._apply_full(body)
        elif kind == b"M":
            meta = json.loads(body)
            self.audit.extend(meta.pop("audit", []))
            self.meta.update(meta)
        else:
            raise ValueError(f"unknown record kind {kind!r}")

    def _apply_delta(self, body: bytes) -> None:
        with np.load(io.BytesIO(body)) as z:
            box = tuple(slice(int(a), int(b)) for a, b in z["box"])
            shape = tuple(int(v) for v in z["shape"])
            mask = np.unpackbits(z["mask"], count=int(np.prod(shape))).astype(bool).reshape(shape)
            values = z["values"]
            if values.dtype.itemsize > self.array.dtype.itemsize:  # the map was promoted to uint16 here
                self.array = self.array.astype(values.dtype)
            self.array[box][mask] = values
            self.provenance[box][mask] = z["prov"]

    def _apply_full(self, body: bytes) -> None:
        n = body[0]
        dtype = np.dtype(body[1:1 + n].decode())
        (size,) = struct.unpack_from("<I", body, 1 + n)
        start = 5 + n
        labels = np.frombuffer(zlib.decompress(body[start:start + size]), dtype)
        prov = np.frombuffer(zlib.decompress(body[start + size:]), np.uint8)
        self.array = labels.reshape(self.array.shape).copy()
        self.provenance = prov.reshape(self.array.shape).copy()


class Journal:
    """The on-disk journal of one segmentation, written by a daemon thread (callers never block on I/O).

    Unless ``initial`` is False (a new, empty segmentation), the label map it starts from is handed to the
    thread too: it compresses ``seg.array`` in place rather than a copy, which is safe because every voxel
    changed after the journal starts is also written by a later delta record, and replaying records
    overwrites with absolute values.
    """

    def __init__(self, root: Path, seg: Segmentation, source: str | None = None, *, initial: bool = True):
        self.dir = Path(root) / f"{seg.uid}-{uuid.uuid4().hex[:8]}"
        self._seg = seg
        self._header = {
            "version": FORMAT_VERSION, "name": seg.name, "uid": seg.uid, "source": source,
            "dtype": str(seg.array.dtype), "shape": list(seg.array.shape), "spacing": list(seg.reference.spacing),
            "origin": list(seg.reference.origin), "direction": list(np.asarray(seg.reference.direction).ravel()),
            "created": time.time(),
        }
        self._initial = initial
        self._meta_written: dict[str, str] = {}
        self._file = None
        #: why writing failed (JournalError naming the file), None while the journal is healthy
        self.error: JournalError | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"journal-{seg.uid[:8]}", daemon=True)
        self._thread.start()

    def append(self, delta: Delta, forward: bool = True) -> None:
        """Queue a delta (forward: its new values; backward: its old values, for undo).

        Encoding and writing happen on the journal thread; the caller only enqueues.
        """
        self._queue.put((delta, forward))

    def append_audit(self, entry: dict) -> None:
        """Queue an audit entry about this segmentation (written with any change of its name or label table)."""
        self._queue.put(entry)

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.dir / "deltas.bin", "wb")  # noqa: SIM115 - closed in close()
        if fcntl is not None:  # other processes see the journal is live, not to recover
            fcntl.lockf(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seg = self._seg
        array = seg.array
        if self._initial and array.any():
            self._file.write(_encode_full(array, seg.provenance))
        self._write_meta([])
        self._sync()
        tmp = self.dir / "header.json.tmp"
        tmp.write_text(json.dumps(self._header))
        os.replace(tmp, self.dir / "header.json")  # from now on the folder is offered for recovery

    def _run(self) -> None:
        self._guarded(self._start)
        while True:
            try:
                batch = [self._queue.get(timeout=FLUSH_INTERVAL_S)]
            except queue.Empty:
                self._guarded(self._write_batch, [])  # label-table edits made directly
                continue
            while batch[-1] is not _STOP and not self._queue.empty():  # batch what is waiting
                batch.append(self._queue.get_nowait())
            self._guarded(self._write_batch, batch)
            for _ in batch:
                self._queue.task_done()
            if batch[-1] is _STOP:
                return

    def _guarded(self, write, *args) -> None:
        """Run ``write`` unless writing already failed; a failure (disk full, folder removed) is kept in
        ``error`` (raised by Session.flush) and the thread goes on consuming, so flush() never hangs."""
        if self.error is not None:
            return
        try:
            write(*args)
        except (OSError, ValueError) as err:
            self.error = JournalError(f"cannot write the journal ({err}); later edits are not crash-safe",
                                      self.dir / "deltas.bin")
            log.error("%s", self.error)

    def _write_batch(self, batch: list) -> None:
        audit = []
        for entry in batch:
            if isinstance(entry, tuple):
                self._file.write(_encode_delta(*entry))
            elif isinstance(entry, dict):
                audit.append(entry)
        if self._write_meta(audit) or batch:
            self._sync()  # then make it durable

    def _meta_parts(self) -> dict[str, str] | None:
        """The segmentation's name, label table and hand removals as JSON (None if the GUI thread kept
        changing the table while it was read)."""
        seg = self._seg
        for _ in range(3):
            try:
                return {"name": json.dumps(seg.name), "table": json.dumps(seg.table.to_json()),
                        "hand_removed": json.dumps(dict(seg.hand_removed))}
            except RuntimeError:
                continue
        return None

    def _write_meta(self, audit: list[dict]) -> bool:
        """Write an ``M`` record with the audit entries and the parts of name / label table / hand removals
        that changed since the last one; False when there was nothing to write."""
        parts = self._meta_parts() or {}
        changed = {k: v for k, v in parts.items() if self._meta_written.get(k) != v}
        if not audit and not changed:
            return False
        meta = {k: json.loads(v) for k, v in changed.items()}
        meta["audit"] = audit
        self._file.write(_record(b"M", json.dumps(meta, default=str).encode()))
        self._meta_written.update(changed)
        return True

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def flush(self) -> None:
        """Block until everything queued (and the current label table) is on disk."""
        self._queue.put(_SYNC)
        self._queue.join()

    def close(self, keep: bool = False) -> None:
        """Stop the writer; the journal is marked closed and deleted (nothing to recover), or with ``keep``
        left on disk, unlocked, to be offered for recovery at the next start as after a crash."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            log.error("journal %s: the writer did not finish; kept for recovery", self.dir)
            return
        if self._file is not None:
            self._file.close()
        if keep:
            return
        if self.dir.is_dir():
            mark_closed(self.dir, "closed cleanly")
            shutil.rmtree(self.dir, ignore_errors=True)


def mark_closed(folder: Path, why: str) -> None:
    """Mark a journal folder as handled: it is no longer offered for recovery and may be deleted."""
    (Path(folder) / "closed").write_text(why + "\n")


def set_aside(folder: Path) -> Path:
    """Move a journal folder that cannot be replayed into DAMAGED_DIR beside it; returns its new path. It is
    kept as it was (nothing is deleted) and no longer offered for recovery."""
    folder = Path(folder)
    target = folder.parent / DAMAGED_DIR / folder.name
    target.parent.mkdir(exist_ok=True)
    folder.rename(target)
    return target


def _locked_by_another_process(folder: Path) -> bool:
    """Whether a live radview process holds the folder's journal (its writer keeps a POSIX lock on
    deltas.bin, which the system releases when the process dies, even by SIGKILL)."""
    if fcntl is None:
        return False
    try:
        with open(Path(folder) / "deltas.bin", "rb") as f:
            fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.lockf(f, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError as err:
        return err.errno in (errno.EACCES, errno.EAGAIN)
    return False


def open_journals(root: Path, exclude: set[Path] = frozenset()) -> list[Path]:
    """Journal folders under ``root`` that were not closed cleanly (crash, kill), other than ``exclude``
    (this session's live journals) and those another running radview is still writing."""
    if not Path(root).is_dir():
        return []
    return sorted(p for p in Path(root).iterdir()
                  if p not in exclude and (p / "header.json").exists() and not (p / "closed").exists()
                  and not _locked_by_another_process(p))


def clean_closed(root: Path) -> list[Path]:
    """Delete the journal folders marked closed (and debris of a crash before a journal's header was
    written, older than ORPHAN_AGE_S); never a recoverable one. Returns the folders deleted."""
    if not Path(root).is_dir():
        return []
    gone = []
    now = time.time()
    for folder in Path(root).iterdir():
        if folder.name == DAMAGED_DIR:
            continue
        closed = (folder / "closed").exists()
        orphan = not (folder / "header.json").exists() and now - folder.stat().st_mtime > ORPHAN_AGE_S
        if folder.is_dir() and (closed or orphan):
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def _records(data: bytes, version: int):
    """The payload (bytes) of each intact record and a problem (str) for each damaged stretch."""
    if version == 1:  # [length][crc][npz delta], not self-delimiting: stop at the first damage
        pos = 0
        while pos < len(data):
            length, crc = _RECORD.unpack_from(data, pos) if pos + _RECORD.size <= len(data) else (-1, 0)
            payload = data[pos + _RECORD.size: pos + _RECORD.size + length]
            if length < 0 or len(payload) < length or zlib.crc32(payload) != crc:
                yield "truncated or damaged record; later edits lost"
                return
            yield b"D" + payload
            pos += _RECORD.size + length
        return
    pos = 0
    while pos < len(data):
        head = pos + len(MAGIC) + _RECORD.size
        if data[pos:pos + len(MAGIC)] == MAGIC and head <= len(data):
            length, crc = _RECORD.unpack_from(data, pos + len(MAGIC))
            payload = data[head:head + length]
            if len(payload) == length and zlib.crc32(payload) == crc:
                yield payload
                pos = head + length
                continue
        nxt = data.find(MAGIC, pos + 1)
        if nxt < 0:
            yield f"truncated or damaged record at byte {pos}; the edits after it are lost"
            return
        yield f"damaged record at byte {pos}; skipped {nxt - pos} bytes, later records recovered"
        pos = nxt


def replay(folder: Path) -> tuple[Segmentation, list[str]]:
    """Rebuild the segmentation recorded in ``folder``; damaged records are skipped with a warning.

    The result carries ``recovered_from`` (the folder) and ``recovered_audit`` (its audit entries).
    Raises JournalError (naming the file) when the header cannot be read.
    """
    folder = Path(folder)
    header_path = folder / "header.json"
    try:
        h = json.loads(header_path.read_text())
        ref = Volume(np.broadcast_to(np.zeros((), np.uint8), tuple(h["shape"])), h["spacing"], h["origin"],
                     np.reshape(h["direction"], (3, 3)), description=h.get("source") or "")
        state = _State(tuple(h["shape"]), np.dtype(h["dtype"]))
        table = LabelTable.from_json(h.get("table", []))
        version = int(h.get("version", 1))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise JournalError(f"journal header is damaged ({err})", header_path) from err
    deltas = folder / "deltas.bin"
    data = deltas.read_bytes() if deltas.exists() else b""
    warnings = []
    n = 0
    for item in _records(data, version):
        if isinstance(item, str):
            warnings.append(f"{deltas}: after {n} records: {item}")
            continue
        try:
            state.apply(item)
            n += 1
        except (ValueError, KeyError, OSError, zlib.error) as err:
            warnings.append(f"{deltas}: unreadable record {n} ({err}); skipped")
    if "table" in state.meta:
        table = LabelTable.from_json(state.meta["table"])
    for label in np.unique(state.array):
        if label:
            table.ensure(int(label))
    seg = Segmentation(ref, state.meta.get("name", h["name"]), state.array, table, uid=h["uid"],
                       provenance=state.provenance, source=h.get("source"))
    seg.hand_removed.update({int(k): int(v) for k, v in state.meta.get("hand_removed", {}).items()})
    seg.recovered_from = folder
    seg.recovered_audit = state.audit
    return seg, warnings
