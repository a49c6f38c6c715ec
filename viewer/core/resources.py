"""Where radview's shipped data is: the top-level resources/ folder, installed as the package radview_resources."""

from __future__ import annotations

from pathlib import Path

import radview_resources  # resources/ under this name (setup.py), editable or wheel install alike

RESOURCES_DIR = Path(radview_resources.__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """The path of ``resources/<parts...>`` in the installed radview (it may not exist: callers check)."""
    return RESOURCES_DIR.joinpath(*parts)
