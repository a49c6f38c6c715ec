"""Typed PACS errors: each is one line naming the server (or file) and the problem."""

from __future__ import annotations

from viewer.core.errors import RadviewError


class PacsError(RadviewError):
    """A PACS operation failed; ``path`` is the server address (or the file concerned)."""


class PacsAddressError(PacsError):
    """A server address or AE title is malformed (not ``dicom://AET@HOST:PORT`` or ``http(s)://HOST:PORT/PATH``)."""


class PacsQueryError(PacsError):
    """A query filter is malformed (e.g. a study date that is not YYYYMMDD or YYYYMMDD-YYYYMMDD)."""


class PacsUnreachableError(PacsError):
    """The server cannot be reached: connection refused, timed out, unknown host."""


class AssociationRejectedError(PacsError):
    """The DICOM server refused the association (e.g. it does not know the called or calling AE title)."""


class UnknownStudyError(PacsError):
    """The server has no study (or series) with the requested UID."""


class RetrieveError(PacsError):
    """A retrieve did not deliver every instance; nothing of it was kept in the output folder."""

