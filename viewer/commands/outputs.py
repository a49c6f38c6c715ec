"""Command outputs written under a temporary name beside them and renamed into place: present means complete."""

from __future__ import annotations

import os
from pathlib import Path


def partial_path(path: Path) -> Path:
    """A temporary name beside ``path`` with the same extension (so writers pick the same format)."""
    return path.with_name(f".partial-{os.getpid()}-{path.name}")
