"""PACS server addresses: ``dicom://AET@HOST:PORT`` (DIMSE) or ``http(s)://HOST:PORT/PATH`` (DICOMweb)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from viewer.pacs.errors import PacsAddressError

#: radview's own AE title unless ``--aet`` says otherwise.
DEFAULT_AET = "RADVIEW"
_DICOM = re.compile(r"^dicom://(?P<aet>[^@]*)@(?P<host>\[[^\]]+\]|[^:/@\[\]]+):(?P<port>\d+)/?$", re.IGNORECASE)


def check_aet(aet: str, what: str = "AE title") -> str:
    """``aet`` if it is a valid DICOM AE title (1-16 characters, no backslash or control characters, not only
    spaces); raises :class:`PacsAddressError` otherwise."""
    if not aet.strip() or len(aet) > 16 or "\\" in aet or any(ord(c) < 32 or ord(c) > 126 for c in aet):
        raise PacsAddressError(f"invalid {what} {aet!r}: 1 to 16 ASCII characters, no backslash")
    return aet


@dataclass(frozen=True)
class ServerAddress:
    """Where a PACS listens. ``protocol`` is 'dimse' (``called_aet``, ``host``, ``port``) or 'dicomweb' (``url``,
    its service root); ``text`` is the address as the user wrote it."""

    text: str
    protocol: str
    host: str
    port: int
    called_aet: str = ""
    url: str = ""

    def __str__(self) -> str:
        return self.text


def parse_address(text: str) -> ServerAddress:
    """Parse ``dicom://AET@HOST:PORT`` or ``http(s)://HOST:PORT/PATH``; raises :class:`PacsAddressError` naming
    what is wrong."""
    text = text.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme == "dicom":
        m = _DICOM.match(text)
        if not m:
            raise PacsAddressError("a DICOM server is written dicom://AET@HOST:PORT (e.g. dicom://ORTHANC@pacs:4242)",
                                   text)
        port = _port(m["port"], text)
        called = check_aet(m["aet"], "called AE title")
        return ServerAddress(text, "dimse", m["host"].strip("[]"), port, called_aet=called)
    if scheme in ("http", "https"):
        parts = urlsplit(text)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise PacsAddressError("the port is not a number from 1 to 65535", text) from None
        if not parts.hostname or parts.query or parts.fragment:
            raise PacsAddressError("a DICOMweb server is written http(s)://HOST:PORT/PATH "
                                   "(e.g. http://pacs:8042/dicom-web)", text)
        return ServerAddress(text, "dicomweb", parts.hostname, _port(str(port), text), url=text.rstrip("/"))
    raise PacsAddressError("unknown server address: use dicom://AET@HOST:PORT (DIMSE) or "
                           "http(s)://HOST:PORT/PATH (DICOMweb)", text)


def _port(value: str, text: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise PacsAddressError("the port is not a number from 1 to 65535", text)
    return port
