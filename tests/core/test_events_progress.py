"""The core observer and cancel token: the contracts every long operation and view adapter rely on."""

import gc

import pytest

from viewer.core.errors import Cancelled, MixedSeriesError
from viewer.core.events import Event
from viewer.core.progress import CancelToken


def test_event_calls_subscribers_and_disconnects():
    ev, seen = Event(), []
    cb = seen.append
    ev.connect(cb)
    ev.emit(1)
    ev.disconnect(cb)
    ev.emit(2)
    assert seen == [1]


def test_event_holds_bound_methods_weakly():
    class View:
        def __init__(self):
            self.n = 0

        def on(self):
            self.n += 1

    ev, view = Event(), View()
    ev.connect(view.on)
    ev.emit()
    assert view.n == 1
    del view
    gc.collect()
    ev.emit()  # must not raise on a dead subscriber
    assert ev._callbacks == []


def test_cancel_token_raises_cancelled():
    token = CancelToken()
    token.raise_if_cancelled()
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()


def test_errors_are_one_line_naming_the_file():
    err = MixedSeriesError("3 series found", "/data/x", series=["a", "b", "c"])
    assert str(err) == "/data/x: 3 series found"
    assert err.series == ["a", "b", "c"]
