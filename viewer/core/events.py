"""A tiny observer: models emit plain Python events; render/ui adapters subscribe (no Qt in core)."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any


class Event:
    """A list of callbacks called with the emitted arguments.

    Bound methods are held weakly, so a closed view does not keep its model alive (nor the reverse).
    """

    def __init__(self) -> None:
        self._callbacks: list[Any] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Subscribe ``callback``; returns it so this can be used as a decorator."""
        if inspect.ismethod(callback):
            ref = weakref.WeakMethod(callback)
        else:
            ref = lambda c=callback: c  # noqa: E731 - functions and builtins are held strongly
        self._callbacks.append(ref)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Unsubscribe ``callback`` (no error if it was not connected)."""
        self._callbacks = [r for r in self._callbacks if r() not in (None, callback)]

    def emit(self, *args: Any, **kwargs: Any) -> None:
        """Call every live subscriber in connection order."""
        alive = []
        for ref in list(self._callbacks):
            cb = ref()
            if cb is not None:
                alive.append(ref)
                cb(*args, **kwargs)
        self._callbacks = alive
