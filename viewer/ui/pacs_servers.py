"""The PACS servers the user worked with, radview's own AE title and the retrieve folder, kept in QSettings."""

from __future__ import annotations

from pathlib import Path

from viewer.ui.recent_files import settings

MAX_SERVERS = 20


def pacs_servers() -> list[str]:
    """Server addresses, most recently used first."""
    value = settings().value("pacs/servers", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in value or []]


def remember_server(address: str) -> list[str]:
    """Put ``address`` first in the list (deduplicated, at most MAX_SERVERS); returns the list."""
    items = [address] + [a for a in pacs_servers() if a != address]
    s = settings()
    s.setValue("pacs/servers", items[:MAX_SERVERS])
    s.sync()
    return items[:MAX_SERVERS]


def own_aet() -> str:
    """radview's calling AE title (RADVIEW unless changed)."""
    from viewer.pacs import DEFAULT_AET

    return str(settings().value("pacs/aet", DEFAULT_AET) or DEFAULT_AET)


def set_own_aet(aet: str) -> None:
    s = settings()
    s.setValue("pacs/aet", aet)
    s.sync()


def retrieve_folder() -> str:
    """Where retrieved studies go (default: ``pacs`` in radview's state folder, RADVIEW_HOME when set)."""
    from viewer.core.session import default_home

    return str(settings().value("pacs/retrieve_folder", "") or Path(default_home()) / "pacs")


def set_retrieve_folder(folder: str) -> None:
    s = settings()
    s.setValue("pacs/retrieve_folder", folder)
    s.sync()
