"""A QThread that runs one core function (export, anonymization) off the GUI thread with progress and cancel."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal

from viewer.core.errors import Cancelled, RadviewError
from viewer.core.progress import CancelToken

log = logging.getLogger(__name__)


class TaskWorker(QThread):
    """Runs ``fn(*args, **kwargs)`` in a thread; never touches widgets.

    With ``with_progress`` the function also gets ``progress=`` (fraction, message) and ``cancel=`` (a
    CancelToken). Signals: ``progress(float, str)``, ``finished_ok(result)``, ``cancelled()``, ``failed(str)``
    with the one-line error (typed radview errors name the file and the problem).
    """

    progress = Signal(float, str)
    finished_ok = Signal(object)
    cancelled = Signal()
    failed = Signal(str)

    def __init__(self, fn: Callable, *args, with_progress: bool = False, parent: QObject | None = None, **kwargs):
        super().__init__(parent)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.with_progress = with_progress
        self.cancel_token = CancelToken()

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def run(self) -> None:  # noqa: D401 - QThread entry point
        kwargs = dict(self.kwargs)
        if self.with_progress:
            kwargs.update(progress=self.progress.emit, cancel=self.cancel_token)
        try:
            result = self.fn(*self.args, **kwargs)
        except Cancelled:
            self.cancelled.emit()
        except RadviewError as err:
            self.failed.emit(str(err))
        except Exception as err:  # keep the app up whatever the task raises; log the traceback
            log.exception("unexpected error in %s", getattr(self.fn, "__name__", self.fn))
            self.failed.emit(f"unexpected error: {err}")
        else:
            self.finished_ok.emit(result)
