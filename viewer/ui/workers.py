"""Background loading: reads images off the GUI thread and reports geometry, slices, progress, errors."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from viewer.core.errors import Cancelled, RadviewError
from viewer.core.progress import CancelToken

log = logging.getLogger(__name__)
#: Minimum seconds between two "slices loaded" notifications (the GUI redraws on each).
SLICE_SIGNAL_INTERVAL = 0.1


class LoadWorker(QThread):
    """Loads one path (DICOM series or image file) in a thread; never touches widgets.

    Signals: ``geometry_ready(Volume)`` as soon as headers are read (voxels still zero for DICOM),
    ``slices_loaded(list)`` as slices land, ``progress(float, str)``, ``finished_ok(Volume)``,
    ``failed(str)`` with the one-line error naming the file.
    """

    geometry_ready = Signal(object)
    slices_loaded = Signal(object)
    progress = Signal(float, str)
    finished_ok = Signal(object)
    failed = Signal(str)

    def __init__(self, path: str | Path, series_uid: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.path = str(path)
        self.series_uid = series_uid
        self.cancel_token = CancelToken()
        self._pending: list[int] = []
        self._last_emit = 0.0

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def _on_slices(self, ks: list[int]) -> None:
        self._pending.extend(ks)
        now = time.monotonic()
        if now - self._last_emit >= SLICE_SIGNAL_INTERVAL:
            self.slices_loaded.emit(self._pending)
            self._pending, self._last_emit = [], now

    def run(self) -> None:  # noqa: D401 - QThread entry point
        from viewer.core.io import load_volume, open_series, scan

        try:
            found = scan(self.path)
            chosen = next((s for s in found if s.series_uid == self.series_uid), found[0])
            if len(found) > 1 and self.series_uid is None:
                log.info("%s holds %d series; opening the first (%s)", self.path, len(found), chosen.description)
            if chosen.headers:
                loader = open_series(self.path, chosen.series_uid)
                self.geometry_ready.emit(loader.volume)
                vol = loader.load(progress=self.progress.emit, cancel=self.cancel_token, on_slices=self._on_slices)
                if self._pending:
                    self.slices_loaded.emit(self._pending)
            else:
                vol = load_volume(chosen.files[0], progress=self.progress.emit, cancel=self.cancel_token)
                self.geometry_ready.emit(vol)
            self.finished_ok.emit(vol)
        except Cancelled:
            self.failed.emit(f"{self.path}: loading cancelled")
        except RadviewError as err:
            self.failed.emit(str(err))
        except Exception as err:  # keep the app up whatever a reader raises; log the traceback
            log.exception("unexpected error loading %s", self.path)
            self.failed.emit(f"{self.path}: unexpected error: {err}")
