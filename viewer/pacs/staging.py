"""Retrieve staging: received instances land in ``DIR/.partial-<uid>/`` and move into DIR only when all arrived.

A retrieve that fails or is cancelled deletes its staging folder, so DIR is left as it was. A process killed
mid-retrieve leaves the hidden staging folder with a note inside (:data:`NOTE_NAME`) saying what it is; the next
retrieve of the same study or series replaces it.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

from viewer.core.progress import ProgressCallback, no_progress

NOTE_NAME = "RETRIEVE-INCOMPLETE.txt"


def safe_name(uid: str) -> str:
    """``uid`` usable as a file name (UIDs are digits and dots; anything else becomes ``_``)."""
    return re.sub(r"[^0-9A-Za-z.-]", "_", uid.strip()) or "unknown"


class StagingFolder:
    """Where one retrieve writes; a context manager that discards everything unless :meth:`commit` ran.

    After commit the instances are ``DIR/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``. :meth:`add` is thread-safe
    (a C-MOVE's storage SCP writes from its own threads) and reports progress over ``expected`` instances.
    """

    def __init__(self, out_dir: str | os.PathLike, uid: str, expected: int | None = None,
                 progress: ProgressCallback | None = None):
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / f".partial-{safe_name(uid)}"
        self.uid = uid
        self.expected = expected
        self.progress = progress or no_progress
        self.staged: dict[tuple[str, str], None] = {}  # (series, instance) in arrival order, each once
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """Instances received so far."""
        return len(self.staged)

    def __enter__(self) -> StagingFolder:
        if self.root.exists():
            shutil.rmtree(self.root)  # left by a retrieve that was killed
        self.root.mkdir(parents=True)
        (self.root / NOTE_NAME).write_text(
            f"Incomplete retrieve of {self.uid} started {time.strftime('%Y-%m-%d %H:%M:%S')} by radview.\n"
            "The files here were still arriving when the retrieve stopped; delete this folder or retrieve again.\n")
        self.progress(0.0, f"retrieving {self.expected or '?'} instances")
        return self

    def add(self, series_uid: str, sop_uid: str, data: bytes) -> None:
        """Write one received instance (``data``: the whole DICOM file, preamble and file meta included)."""
        folder = self.root / safe_name(series_uid)
        with self._lock:
            folder.mkdir(exist_ok=True)
            (folder / f"{safe_name(sop_uid)}.dcm").write_bytes(data)
            self.staged[safe_name(series_uid), safe_name(sop_uid)] = None
            n = len(self.staged)
        total = self.expected
        self.progress(min(n / total, 1.0) if total else 0.0, f"received {n}/{total or '?'} instances")

    def commit(self) -> list[Path]:
        """Move the received instances into DIR (replacing files of the same names); returns their paths."""
        out = []
        for series, sop in self.staged:
            target = self.out_dir / series / f"{sop}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.root / series / f"{sop}.dcm", target)
            out.append(target)
        shutil.rmtree(self.root)
        return out

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.root.exists() and exc_type is not None:
            shutil.rmtree(self.root, ignore_errors=True)
