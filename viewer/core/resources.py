"""Where radview's shipped data is: the top-level resources/ folder, installed as the package radview_resources."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

RESOURCE_PACKAGE = "radview_resources"  # resources/ under this name (setup.py), editable or wheel install alike


def resource_path(*parts: str) -> Path:
    """The path of ``resources/<parts...>`` in the installed radview (it may not exist: callers check)."""
    return Path(str(files(RESOURCE_PACKAGE).joinpath(*parts)))
