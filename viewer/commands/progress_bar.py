"""A terminal progress bar on stderr for the AI commands (the CLI's view of core progress callbacks)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from viewer.core.progress import CancelToken


class ProgressBar:
    """``ProgressBar()(fraction, message)`` redraws one line of ``stream`` (default stderr) when it is a
    terminal; :meth:`end_line` ends a line left open (before a message such as "cancelled")."""

    def __init__(self, width: int = 30, stream=None):
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.open = False  # a bar is drawn and its line not ended

    def __call__(self, fraction: float, message: str) -> None:
        if not self.tty:
            return
        filled = int(round(fraction * self.width))
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {message[:40]:40}")
        self.open = fraction < 1.0
        if not self.open:
            self.stream.write("\n")
        self.stream.flush()

    def end_line(self) -> None:
        """Finish the bar's line if one is open, so the next message starts on a new line."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


@contextmanager
def terminal_job() -> Iterator[tuple[ProgressBar, CancelToken]]:
    """A progress bar and cancel token for one long core/ai call: Ctrl-C cancels the token (worker threads
    stop) and re-raises; the bar's line is ended however the call ends, so "radview: cancelled" or an
    error starts on its own line."""
    cancel, bar = CancelToken(), ProgressBar()
    try:
        yield bar, cancel
    except KeyboardInterrupt:
        cancel.cancel()
        raise
    finally:
        bar.end_line()
