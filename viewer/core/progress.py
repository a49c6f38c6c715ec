"""Progress reporting and cancellation shared by every long operation (load, inference, export)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from viewer.core.errors import Cancelled

#: ``progress(fraction, message)``: fraction in [0, 1]; called from the worker thread.
ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """Default progress callback: ignore."""


class CancelToken:
    """Thread-safe cancellation flag checked by long-running core/ai functions."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the operation to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled()
