"""One PACS client interface (find / retrieve / store) with its DIMSE and DICOMweb implementations behind
:func:`connect`."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.pacs.address import DEFAULT_AET, ServerAddress, check_aet, parse_address
from viewer.pacs.errors import RetrieveError, UnknownStudyError
from viewer.pacs.instances import Instance, StoreStatus, collect_instances
from viewer.pacs.query import Series, Study, StudyQuery, in_series_order
from viewer.pacs.staging import StagingFolder, safe_name

#: Status message of the instances a cancelled store did not send.
NOT_SENT_CANCELLED = "cancelled before it was sent"
#: Seconds to wait for a connection or an answer before reporting the server unreachable.
DEFAULT_TIMEOUT = 10.0


@dataclass
class RetrieveResult:
    """What a retrieve wrote: each series' folder (``DIR/<SeriesInstanceUID>``) and every file."""

    study_uid: str
    series_folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


class PacsClient(ABC):
    """Find studies, retrieve a study or series into a folder, store files, on one server.

    Every method raises the typed errors of :mod:`viewer.pacs.errors` (one line naming the server); long ones
    take ``progress(fraction, message)`` and a :class:`CancelToken`.
    """

    def __init__(self, address: ServerAddress, aet: str = DEFAULT_AET, timeout: float = DEFAULT_TIMEOUT):
        self.address = address
        self.aet = check_aet(aet, "own AE title")
        self.timeout = timeout

    # ------------------------------------------------------------------ queries
    @abstractmethod
    def find_studies(self, query: StudyQuery) -> list[Study]:
        """The studies matching ``query`` (their ``series`` left empty)."""

    def find_series(self, study_uid: str) -> list[Series]:
        """The series of one study in series-number order (empty when the server has no such study)."""
        return in_series_order(self._find_series(study_uid))

    @abstractmethod
    def _find_series(self, study_uid: str) -> list[Series]:
        """The series of one study as the server lists them."""

    def find(self, query: StudyQuery) -> list[Study]:
        """The studies matching ``query``, each with its series (one series-level find per study)."""
        studies = self.find_studies(query)
        for study in studies:
            study.series = self.find_series(study.StudyInstanceUID)
        return studies

    # ------------------------------------------------------------------ retrieve
    def retrieve(self, study_uid: str, out_dir: str | os.PathLike, series_uid: str | None = None,
                 progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> RetrieveResult:
        """Retrieve a study (or only ``series_uid`` of it) into ``out_dir`` as ``<SeriesInstanceUID>/<SOPInstance
        UID>.dcm``, each file as the server stores it (transfer syntax, pixels, data set bytes).

        Files land in a staging folder first (:mod:`viewer.pacs.staging`) and move into ``out_dir`` only when
        every instance arrived: after an error or a cancel ``out_dir`` holds nothing of this retrieve.
        Raises :class:`UnknownStudyError` for a study or series the server does not have, :class:`RetrieveError`
        when instances fail, :class:`viewer.core.errors.Cancelled` when cancelled.
        """
        cancel = cancel or CancelToken()
        series = self.find_series(study_uid)
        if not series:
            raise UnknownStudyError(f"no study {study_uid} on the server", self.address)
        if series_uid:
            series = [s for s in series if s.SeriesInstanceUID == series_uid]
            if not series:
                raise UnknownStudyError(f"study {study_uid} has no series {series_uid}", self.address)
        counts = [s.NumberOfSeriesRelatedInstances for s in series]
        expected = None if None in counts else sum(counts)
        with StagingFolder(out_dir, series_uid or study_uid, expected, progress or no_progress) as staging:
            for s in series:
                cancel.raise_if_cancelled()
                self._retrieve_series(study_uid, s, staging, cancel)
            cancel.raise_if_cancelled()
            if expected is not None and staging.count < expected:
                raise RetrieveError(f"received {staging.count} of {expected} instances of {study_uid}; "
                                    "nothing was kept", self.address)
            files = staging.commit()
        folders = [Path(out_dir) / safe_name(s.SeriesInstanceUID) for s in series]
        return RetrieveResult(study_uid, [f for f in folders if f.is_dir()], files)

    @abstractmethod
    def _retrieve_series(self, study_uid: str, series: Series, staging: StagingFolder, cancel: CancelToken) -> None:
        """Receive every instance of one series into ``staging`` (raise on failures, check ``cancel``)."""

    # ------------------------------------------------------------------ store
    def store(self, paths: list[str | os.PathLike], progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None,
              on_status: Callable[[StoreStatus], None] | None = None) -> list[StoreStatus]:
        """Store the DICOM files under ``paths`` (files or folders), each sent as it is on disk; returns one
        :class:`StoreStatus` per file, also passed to ``on_status`` as soon as it is known. Files that cannot
        be stored are reported and the others still sent."""
        progress, cancel = progress or no_progress, cancel or CancelToken()
        instances, statuses = collect_instances(paths)
        total = len(instances)
        for status in statuses:
            if on_status:
                on_status(status)

        done = 0

        def report(status: StoreStatus) -> None:
            nonlocal done
            done += 1
            statuses.append(status)
            if on_status:
                on_status(status)
            progress(done / total, f"stored {done}/{total} instances")

        if instances:
            self._store_instances(instances, report, cancel)
        return statuses

    @abstractmethod
    def _store_instances(self, instances: list[Instance], report: Callable[[StoreStatus], None],
                         cancel: CancelToken) -> None:
        """Send ``instances``, calling ``report`` once per instance with how it ended (after a cancel, the ones
        not sent yet fail with :data:`NOT_SENT_CANCELLED`)."""


def connect(address: str | ServerAddress, aet: str = DEFAULT_AET, timeout: float = DEFAULT_TIMEOUT,
            move_port: int | None = None) -> PacsClient:
    """A client for ``address`` (``dicom://AET@HOST:PORT`` or ``http(s)://HOST:PORT/PATH``) calling as ``aet``.

    With ``move_port`` (DIMSE only) retrieves use C-MOVE to radview's own storage SCP listening on that port
    (the PACS must know ``aet`` at this host and port); otherwise C-GET.
    """
    addr = address if isinstance(address, ServerAddress) else parse_address(address)
    if addr.protocol == "dimse":
        from viewer.pacs.dimse import DimseClient

        return DimseClient(addr, aet, timeout, move_port=move_port)
    from viewer.pacs.dicomweb import DicomWebClient

    return DicomWebClient(addr, aet, timeout)
