"""The widgets every background job shows: a Cancel button, a progress bar (0-1000) and a status line."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton


def job_widgets(on_cancel: Callable[[], None]) -> tuple[QPushButton, QProgressBar, QLabel]:
    """(Cancel button wired to ``on_cancel``, disabled until a job runs; progress bar; word-wrapped status)."""
    cancel = QPushButton("Cancel")
    cancel.clicked.connect(on_cancel)
    cancel.setEnabled(False)
    progress = QProgressBar()
    progress.setRange(0, 1000)
    status = QLabel("")
    status.setWordWrap(True)
    return cancel, progress, status
