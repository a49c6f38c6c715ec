"""A terminal progress bar on stderr for the AI commands (the CLI's view of core progress callbacks)."""

from __future__ import annotations

import sys


class ProgressBar:
    """``ProgressBar()(fraction, message)`` redraws one stderr line when it is a terminal."""

    def __init__(self, width: int = 30):
        self.width = width
        self.tty = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        if not self.tty:
            return
        filled = int(round(fraction * self.width))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {message[:40]:40}")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()
