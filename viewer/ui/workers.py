"""Background workers: one QThread base (progress, cancel, one-line errors); loading, scanning, task workers."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from viewer.core.errors import Cancelled, RadviewError
from viewer.core.progress import CancelToken

log = logging.getLogger(__name__)
#: Minimum seconds between two "slices loaded" notifications (the GUI redraws on each).
SLICE_SIGNAL_INTERVAL = 0.1


class Worker(QThread):
    """One piece of work off the GUI thread with progress and cancel; never touches widgets.

    Subclasses implement :meth:`work`; its result is emitted with ``finished_ok(object)``. Any error becomes
    one line on ``failed(str)``: typed radview errors name the file and the problem, anything else is logged
    with its traceback. A cancel (:class:`Cancelled` raised by the work) emits ``cancelled()`` and, when the
    class has a :attr:`cancel_message`, ``failed`` with it. Work reports ``progress(fraction, message)``.
    """

    progress = Signal(float, str)
    finished_ok = Signal(object)
    cancelled = Signal()
    failed = Signal(str)
    #: ``failed`` message after a cancel (``{what}`` filled in); None: only ``cancelled()`` is emitted.
    cancel_message: str | None = "{what} cancelled"

    def __init__(self, what: str, parent: QObject | None = None):
        super().__init__(parent)
        self.what = what
        self.cancel_token = CancelToken()

    def cancel(self) -> None:
        """Ask the work to stop; it raises Cancelled at its next check."""
        self.cancel_token.cancel()

    def work(self) -> object:
        """The work itself, run in the thread; its return value goes to ``finished_ok``."""
        raise NotImplementedError

    def run(self) -> None:  # noqa: D401 - QThread entry point
        try:
            result = self.work()
        except Exception as err:  # keep the app up whatever the work raises
            self.report(err, self.what)
        else:
            self.finished_ok.emit(result)

    def report(self, err: Exception, subject: str) -> None:
        """Emit the signals for ``err`` raised while working on ``subject`` (a path, a job)."""
        if isinstance(err, Cancelled):
            self.cancelled.emit()
            if self.cancel_message is not None:
                self.failed.emit(self.cancel_message.format(what=subject))
        elif isinstance(err, RadviewError):
            self.failed.emit(str(err))
        else:
            log.exception("unexpected error in %s", subject)
            self.failed.emit(f"{subject}: unexpected error: {err}")


#: Workers that outlived their window's bounded wait: unparented, silenced and kept referenced.
_DETACHED: list[Worker] = []


def wait_or_detach(worker: Worker, timeout_ms: int) -> bool:
    """Wait at most ``timeout_ms`` for ``worker`` to end; True if it did. Otherwise it is detached: unparented
    and kept referenced, so deleting its parent (a closed window) never destroys a running QThread (Qt aborts
    the process then), and its signals are blocked, so its late result never reaches the closed window's
    views."""
    if worker.wait(timeout_ms):
        return True
    worker.blockSignals(True)
    worker.setParent(None)
    _DETACHED.append(worker)
    return False


class LoadWorker(Worker):
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
    cancel_message = "{what}: loading cancelled"

    def __init__(self, path: str | Path, series=None, parent: QObject | None = None):
        super().__init__(str(path), parent)
        self.path = str(path)
        self.series = series
        self._pending: list[int] = []
        self._last_emit = 0.0

    def _on_slices(self, ks: list[int]) -> None:
        self._pending.extend(ks)
        now = time.monotonic()
        if now - self._last_emit >= SLICE_SIGNAL_INTERVAL:
            self.slices_loaded.emit(self._pending)
            self._pending, self._last_emit = [], now

    def work(self):
        """Scan (unless given a series), then load the chosen series; returns the Volume."""
        from viewer.core.io import load_volume, scan
        from viewer.core.io.dicom_series import SeriesLoader

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
        return vol


class ScanWorker(Worker):
    """Lists the series of several paths in a thread (headers only): ``scanned(path, [SeriesInfo])`` per
    readable path, ``failed(str)`` per path that holds nothing viewable."""

    scanned = Signal(str, object)

    def __init__(self, paths: list[str], parent: QObject | None = None):
        super().__init__("scan", parent)
        self.paths = [str(p) for p in paths]

    def work(self) -> None:
        """Scan each path in turn; a path that fails is reported and the others are still scanned."""
        from viewer.core.io import scan

        for path in self.paths:
            try:
                self.scanned.emit(path, scan(path))
            except Exception as err:  # keep scanning whatever a reader raises
                self.report(err, path)


class TaskWorker(Worker):
    """Runs one core function (export, anonymization) ``fn(*args, **kwargs)`` in a thread.

    With ``with_progress`` the function also gets ``progress=`` (fraction, message) and ``cancel=`` (the
    worker's CancelToken); a cancel emits ``cancelled()`` only.
    """

    cancel_message = None

    def __init__(self, fn: Callable, *args, with_progress: bool = False, parent: QObject | None = None, **kwargs):
        super().__init__(getattr(fn, "__name__", str(fn)), parent)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.with_progress = with_progress

    def work(self):
        """``fn``'s result."""
        kwargs = dict(self.kwargs)
        if self.with_progress:
            kwargs.update(progress=self.progress.emit, cancel=self.cancel_token)
        return self.fn(*self.args, **kwargs)


#: Modules the first open of a study imports (pydicom and its decoders: about 0.2 s of a cold start).
READER_MODULES = ("viewer.core.io", "viewer.core.io.dicom_series", "viewer.core.io.dicom_decode",
                  "viewer.core.io.jpeg2000")


def preload_readers() -> None:
    """Import the study readers and start the decoder processes in a background thread once the window is up,
    so that the first folder the user opens shows its first slice as fast as later ones (an open started
    meanwhile waits on the import lock, never on a half-imported module)."""
    def run() -> None:
        try:
            for name in READER_MODULES:
                importlib.import_module(name)
            from viewer.core.io.decoder_process import start

            start()
        except Exception:  # the open that needs it reports the problem
            log.debug("preloading the study readers failed", exc_info=True)

    threading.Thread(target=run, name="preload-readers", daemon=True).start()
