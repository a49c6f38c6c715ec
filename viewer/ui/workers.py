"""Background loading: scans and reads images off the GUI thread; reports series, geometry, slices, errors."""

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


def _unexpected(path: str, err: Exception) -> str:
    """One-line message for an error no reader anticipated (the traceback goes to the log)."""
    log.exception("unexpected error reading %s", path)
    return f"{path}: unexpected error: {err}"


class LoadWorker(QThread):
    """Loads one path (DICOM series or image file) in a thread; never touches widgets.

    Each header is parsed once: the path is scanned here (unless ``series``, a SeriesInfo from an
    earlier scan, is given) and the chosen series is loaded from that scan's headers.

    Signals: ``scanned(path, [SeriesInfo])`` after the scan, ``geometry_ready(Volume)`` as soon as the
    geometry is known (voxels still zero for DICOM), ``slices_loaded(list)`` as slices land,
    ``progress(float, str)``, ``finished_ok(Volume)``, ``failed(str)`` with the one-line error naming the file.
    """

    scanned = Signal(str, object)
    geometry_ready = Signal(object)
    slices_loaded = Signal(object)
    progress = Signal(float, str)
    finished_ok = Signal(object)
    failed = Signal(str)

    def __init__(self, path: str | Path, series=None, parent: QObject | None = None):
        super().__init__(parent)
        self.path = str(path)
        self.series = series
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
        from viewer.core.io import SeriesLoader, load_volume, scan

        try:
            chosen = self.series
            if chosen is None:
                found = scan(self.path)
                self.scanned.emit(self.path, found)
                chosen = found[0]
                if len(found) > 1:
                    log.info("%s holds %d series; opening the first (%s)", self.path, len(found), chosen.description)
            if chosen.headers:
                loader = SeriesLoader(chosen)
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
        except Exception as err:  # keep the app up whatever a reader raises
            self.failed.emit(_unexpected(self.path, err))


class ScanWorker(QThread):
    """Lists the series of several paths in a thread (headers only): ``scanned(path, [SeriesInfo])`` per
    readable path, ``failed(str)`` per path that holds nothing viewable."""

    scanned = Signal(str, object)
    failed = Signal(str)

    def __init__(self, paths: list[str], parent: QObject | None = None):
        super().__init__(parent)
        self.paths = [str(p) for p in paths]

    def run(self) -> None:  # noqa: D401 - QThread entry point
        from viewer.core.io import scan

        for path in self.paths:
            try:
                self.scanned.emit(path, scan(path))
            except RadviewError as err:
                self.failed.emit(str(err))
            except Exception as err:  # keep the app up whatever a reader raises
                self.failed.emit(_unexpected(path, err))
