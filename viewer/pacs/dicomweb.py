"""DICOMweb client (dicomweb-client): QIDO-RS find, WADO-RS retrieve as stored, STOW-RS store."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from viewer.core.progress import CancelToken
from viewer.pacs.address import ServerAddress
from viewer.pacs.client import DEFAULT_TIMEOUT, NOT_SENT_CANCELLED, PacsClient
from viewer.pacs.errors import PacsError, PacsUnreachableError, RetrieveError
from viewer.pacs.instances import Instance, StoreStatus
from viewer.pacs.query import SERIES_FIELDS, STUDY_FIELDS, Series, Study, StudyQuery
from viewer.pacs.staging import StagingFolder

#: WADO-RS media type asking for every instance in the transfer syntax the server stores it in.
AS_STORED = (("application/dicom", "*"),)


class _LiteralWildcards(requests.Session):
    """Sends the QIDO-RS wildcards ``*`` and ``?`` unescaped in query strings (RFC 3986 allows both there): some
    servers, Orthanc 1.10's DICOMweb plugin among them, do not percent-decode query values, so ``Smith%2A`` would
    match nothing. (``^`` cannot be sent raw, urllib3 escapes it: on such a server write ``Smith?John``.)"""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        base, sep, query = prepared.url.partition("?")
        if sep:
            prepared.url = base + sep + query.replace("%2A", "*").replace("%3F", "?")
        return prepared


class DicomWebClient(PacsClient):
    """A DICOMweb service (QIDO-RS, WADO-RS, STOW-RS) at ``address.url``."""

    def __init__(self, address: ServerAddress, aet: str, timeout: float = DEFAULT_TIMEOUT):
        super().__init__(address, aet, timeout)
        self.web = DICOMwebClient(address.url, session=_LiteralWildcards(), timeout=timeout)
        # no silent retries: an unreachable server is reported after one timeout, not after 5 and 30 s of back-off
        self.web.set_http_retry_params(retry=False)

    @contextmanager
    def _http(self, what: str) -> Iterator[None]:
        """Turn the HTTP layer's exceptions during ``what`` into one-line PACS errors."""
        a = self.address
        try:
            yield
        except requests.exceptions.ConnectionError as err:
            why = "timed out" if isinstance(err, requests.exceptions.ConnectTimeout) else "connection refused"
            if "Name or service not known" in str(err) or "Failed to resolve" in str(err):
                why = "unknown host"
            raise PacsUnreachableError(f"cannot reach {a.host}:{a.port} ({why})", a) from None
        except requests.exceptions.Timeout:
            raise PacsUnreachableError(f"{a.host}:{a.port} did not answer the {what} within {self.timeout:g} s",
                                       a) from None
        except requests.exceptions.HTTPError as err:
            code = err.response.status_code if err.response is not None else "?"
            hint = " (is the DICOMweb root right?)" if code == 404 else ""
            raise PacsError(f"{what} failed: HTTP {code}{hint}", a) from None

    # ------------------------------------------------------------------ find
    def find_studies(self, query: StudyQuery) -> list[Study]:
        with self._http("study search (QIDO-RS)"):
            # one request: paging with offset (get_remaining) loops forever on servers that ignore the offset
            # with some filters (Orthanc 1.10 with ModalitiesInStudy)
            found = self.web.search_for_studies(fields=list(STUDY_FIELDS), search_filters=query.filters())
        return [Study.from_dataset(Dataset.from_json(d)) for d in found]

    def _find_series(self, study_uid: str) -> list[Series]:
        with self._http("series search (QIDO-RS)"):
            found = self.web.search_for_series(study_uid, fields=list(SERIES_FIELDS))
        return [Series.from_dataset(Dataset.from_json(d)) for d in found]

    # ------------------------------------------------------------------ retrieve
    def _retrieve_series(self, study_uid: str, series: Series, staging: StagingFolder, cancel: CancelToken) -> None:
        with self._http(f"retrieve of series {series.SeriesInstanceUID} (WADO-RS)"):
            try:
                for ds in self.web.iter_series(study_uid, series.SeriesInstanceUID, media_types=AS_STORED):
                    cancel.raise_if_cancelled()
                    staging.add(series.SeriesInstanceUID, str(ds.SOPInstanceUID), _encoded(ds))
            except (ValueError, pydicom.errors.InvalidDicomError) as err:
                raise RetrieveError(f"the server sent an unreadable part: {err}", self.address) from None

    # ------------------------------------------------------------------ store
    def _store_instances(self, instances: list[Instance], report: Callable[[StoreStatus], None],
                         cancel: CancelToken) -> None:
        for n, inst in enumerate(instances):
            if cancel.cancelled:
                for rest in instances[n:]:
                    report(StoreStatus(rest.path, "failed", NOT_SENT_CANCELLED, rest.sop_instance_uid))
                return
            report(self._store_one(inst))

    def _store_one(self, inst: Instance) -> StoreStatus:
        """STOW-RS one file (its data set as read, written back unchanged); its status from the response."""
        def status(state: str, message: str) -> StoreStatus:
            return StoreStatus(inst.path, state, message, inst.sop_instance_uid)

        ds = pydicom.dcmread(inst.path)
        try:
            with self._http("store (STOW-RS)"):
                rsp = self.web.store_instances([ds])
        except PacsUnreachableError:
            raise
        except PacsError as err:
            return status("failed", err.problem)
        failed = [item for item in rsp.get("FailedSOPSequence") or []
                  if str(item.get("ReferencedSOPInstanceUID", "")) == inst.sop_instance_uid]
        if failed:
            reason = failed[0].get("FailureReason")
            return status("failed", f"refused by the server, reason {int(reason):#06x}" if reason is not None
                          else "refused by the server")
        stored = [item for item in rsp.get("ReferencedSOPSequence") or []
                  if str(item.get("ReferencedSOPInstanceUID", "")) == inst.sop_instance_uid]
        if not stored:
            return status("failed", "the server did not acknowledge the instance")
        warning = stored[0].get("WarningReason")
        return status("warning", f"stored with warning {int(warning):#06x}") if warning is not None \
            else status("stored", "stored")


def _encoded(ds: pydicom.Dataset) -> bytes:
    """The DICOM file of a data set read from the server, written back exactly as read (preamble, file meta,
    transfer syntax and element bytes kept)."""
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=False)
    return out.getvalue()
