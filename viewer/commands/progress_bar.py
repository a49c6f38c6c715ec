"""A terminal progress bar on stderr for the AI commands (the CLI's view of core progress callbacks)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from viewer.core.progress import CancelToken


class ProgressBar:
    """``ProgressBar()(fraction, message)`` redraws one line of ``stream`` (default stderr) when it is a
    terminal; :meth:`end_line` ends a line left open (before a message such as "cancelled"); :meth:`note` writes
    a line that stays (on a terminal or not)."""

    def __init__(self, width: int = 30, stream=None):
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.open = False  # a bar is drawn and its line not ended
        self.drawn = 0  # characters of the bar last drawn

    def __call__(self, fraction: float, message: str) -> None:
        if not self.tty:
            return
        filled = int(round(fraction * self.width))
        drawn = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {message[:40]:40}"
        self.stream.write("\r" + drawn)
        self.drawn = len(drawn)
        self.open = fraction < 1.0
        if not self.open:
            self.stream.write("\n")
        self.stream.flush()

    def note(self, line: str) -> None:
        """Write ``line`` on a line of its own: on a terminal in place of the bar, which its next update draws
        again below, and also when ``stream`` is not a terminal (a log file, CI), where the bar itself is silent."""
        if self.open:  # blank the bar's line: the note takes it
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.open = False
        self.stream.write(line + "\n")
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


class _NoteHandler(logging.Handler):
    """Log records as :meth:`ProgressBar.note` lines."""

    def __init__(self, bar: ProgressBar):
        super().__init__(logging.INFO)
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.bar.note(message if record.levelno < logging.WARNING else f"{record.levelname} {record.name}: {message}")


@contextmanager
def logged_as_notes(bar: ProgressBar, logger_name: str) -> Iterator[None]:
    """Inside the block, ``logger_name``'s records from INFO up are written as ``bar``'s notes, and only there
    (e.g. one line per training epoch, which a log file would otherwise never show); a logger already at INFO or
    below (``--debug``) reaches the console through logging itself and is left alone."""
    logger = logging.getLogger(logger_name)
    if logger.isEnabledFor(logging.INFO):
        yield
        return
    handler, level, propagate = _NoteHandler(bar), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextmanager
def training_job() -> Iterator[tuple[ProgressBar, CancelToken]]:
    """:func:`terminal_job` for a training run (train, finetune), whose loop's epoch lines become notes."""
    with terminal_job() as (bar, cancel), logged_as_notes(bar, "ai.training.loop"):
        yield bar, cancel
