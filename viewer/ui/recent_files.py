"""Recently opened paths, stored in QSettings (an INI file under RADVIEW_HOME when it is set)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 10


def settings() -> QSettings:
    """The application's settings store."""
    home = os.environ.get("RADVIEW_HOME")
    if home:
        return QSettings(str(Path(home) / "settings.ini"), QSettings.IniFormat)
    return QSettings("radview", "radview")


def recent_files() -> list[str]:
    value = settings().value("recent_files", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in value or []]


def add_recent_file(path: str) -> list[str]:
    """Put ``path`` first in the list (deduplicated, at most MAX_RECENT); returns the list."""
    path = str(Path(path).resolve())
    items = [path] + [p for p in recent_files() if p != path]
    items = items[:MAX_RECENT]
    s = settings()
    s.setValue("recent_files", items)
    s.sync()
    return items
