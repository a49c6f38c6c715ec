"""DIMSE client (pynetdicom): C-FIND, C-GET or C-MOVE to radview's own storage SCP, C-STORE."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, build_role, evt
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from viewer.core.errors import Cancelled
from viewer.core.progress import CancelToken
from viewer.pacs.address import ServerAddress
from viewer.pacs.client import DEFAULT_TIMEOUT, NOT_SENT_CANCELLED, PacsClient
from viewer.pacs.errors import AssociationRejectedError, PacsError, PacsUnreachableError, RetrieveError
from viewer.pacs.instances import Instance, StoreStatus
from viewer.pacs.query import SERIES_FIELDS, STUDY_FIELDS, Series, Study, StudyQuery, in_series_order
from viewer.pacs.staging import StagingFolder

# C-STORE sends each file's bytes from disk as they are (no decode / re-encode): "pixels and headers as stored".
_config.STORE_SEND_CHUNKED_DATASET = True

#: A peer accepts at most 128 presentation contexts per association.
MAX_CONTEXTS = 128
#: Transfer syntaxes offered, one presentation context each, for every SOP class a C-GET receives, so the
#: server can send each instance in the syntax it stores it in (most likely first: cut when contexts run out).
RECEIVE_SYNTAXES = [
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112",
    "1.2.840.10008.1.2.2",
]
_UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
_PENDING = (0xFF00, 0xFF01)


def _status_text(status: Dataset) -> str:
    """``0xA700`` plus the status' ErrorComment when the peer sent one."""
    comment = str(status.get("ErrorComment") or "").strip()
    return f"0x{int(status.Status):04X}" + (f" ({comment})" if comment else "")


class DimseClient(PacsClient):
    """A DICOM server reached over DIMSE (study root query/retrieve). ``move_port``: retrieve with C-MOVE to a
    storage SCP radview starts on that port for the retrieve (the server must know our AE title there)."""

    def __init__(self, address: ServerAddress, aet: str, timeout: float = DEFAULT_TIMEOUT,
                 move_port: int | None = None):
        super().__init__(address, aet, timeout)
        self.move_port = move_port

    # ------------------------------------------------------------------ association
    def _ae(self) -> AE:
        ae = AE(ae_title=self.aet)
        ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        return ae

    @contextmanager
    def _association(self, contexts: list[tuple[str, list[str]]], roles: list | None = None,
                     handlers: list | None = None) -> Iterator:
        """An established association proposing ``contexts`` (abstract syntax, [transfer syntaxes]); released
        (or already aborted) at the end. Raises :class:`PacsUnreachableError` or :class:`AssociationRejectedError`."""
        ae = self._ae()
        for abstract, syntaxes in contexts:
            ae.add_requested_context(abstract, syntaxes)
        a = self.address
        started = time.monotonic()
        rejections: list[A_ASSOCIATE_RJ] = []

        def keep_rejection(event) -> None:
            if isinstance(event.pdu, A_ASSOCIATE_RJ):
                rejections.append(event.pdu)

        assoc = ae.associate(a.host, a.port, ae_title=a.called_aet, ext_neg=roles or [],
                             evt_handlers=[*(handlers or []), (evt.EVT_PDU_RECV, keep_rejection)])
        if not assoc.is_established:
            raise self._not_associated(assoc, rejections, time.monotonic() - started)
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
            ae.shutdown()

    def _not_associated(self, assoc, rejections: list[A_ASSOCIATE_RJ], waited: float) -> PacsError:
        """The error telling why an association attempt failed: rejected (with the peer's reason), unreachable
        (the socket error: refused, timed out, unknown host), silent (no answer within the timeout) or closed by
        the peer.

        ``rejections`` are the A-ASSOCIATE-RJ PDUs received: when the peer closes its socket right after
        rejecting, pynetdicom may abort the association before it handles the reject, so ``assoc.is_rejected``
        alone misses it (seen under load)."""
        a = self.address
        if assoc.is_rejected or rejections:
            reason = rejections[0].reason_str if rejections else getattr(assoc.acceptor.primitive, "reason_str",
                                                                           "no reason given")
            return AssociationRejectedError(
                f"association rejected: {reason} (called AE title {a.called_aet!r}, calling {self.aet!r})", a)
        try:
            socket.create_connection((a.host, a.port), timeout=self.timeout).close()
        except OSError as err:
            why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err)).lower()
            return PacsUnreachableError(f"cannot reach {a.host}:{a.port} ({why})", a)
        if waited >= self.timeout:
            return PacsUnreachableError(f"cannot reach {a.host}:{a.port} (no answer to the association request "
                                        f"within {self.timeout:g} s)", a)
        return PacsUnreachableError(f"{a.host}:{a.port} closed the connection without accepting an association "
                                    "(not a DICOM server?)", a)

    def _no_answer(self, what: str, error: type[PacsError], since: float) -> PacsError:
        """The error for a request left without a response ``since`` (monotonic time of the last answer or the
        request): it timed out, or the server aborted it sooner (e.g. it refuses requests from our AE title)."""
        if time.monotonic() - since < self.timeout:
            return error(f"the server aborted the {what} (does it accept requests from AE title {self.aet!r}?)",
                         self.address)
        return error(f"no answer to the {what} within {self.timeout:g} s", self.address)

    # ------------------------------------------------------------------ find
    def _find_association(self) -> AbstractContextManager:
        """An association for C-FINDs (study root)."""
        return self._association([(StudyRootQueryRetrieveInformationModelFind, _UNCOMPRESSED)])

    def _find(self, query: Dataset, assoc=None) -> list[Dataset]:
        """The identifiers a C-FIND of ``query`` returns, on ``assoc`` or on an association of its own."""
        if assoc is None:
            with self._find_association() as own:
                return self._find(query, own)
        model = StudyRootQueryRetrieveInformationModelFind
        out = []
        since = time.monotonic()
        for status, identifier in assoc.send_c_find(query, model):
            if "Status" not in status:
                raise self._no_answer("C-FIND", PacsError, since)
            since = time.monotonic()
            if status.Status in _PENDING:
                out.append(identifier)
            elif status.Status != 0:
                raise PacsError(f"C-FIND failed with status {_status_text(status)}", self.address)
        return out

    def find(self, query: StudyQuery) -> list[Study]:
        """The matching studies with their series, all found on one association."""
        with self._find_association() as assoc:
            studies = self.find_studies(query, assoc)
            for study in studies:
                study.series = in_series_order(self._find_series(study.StudyInstanceUID, assoc))
        return studies

    def find_studies(self, query: StudyQuery, assoc=None) -> list[Study]:
        ds = _query_dataset("STUDY", STUDY_FIELDS, query.filters())
        return [Study.from_dataset(d) for d in self._find(ds, assoc)]

    def _find_series(self, study_uid: str, assoc=None) -> list[Series]:
        ds = _query_dataset("SERIES", SERIES_FIELDS, {"StudyInstanceUID": study_uid})
        return [Series.from_dataset(d) for d in self._find(ds, assoc)]

    def _sop_classes(self, study_uid: str, series_uid: str) -> list[str]:
        """The SOP classes of a series' instances (an image-level find)."""
        ds = _query_dataset("IMAGE", ("SOPInstanceUID", "SOPClassUID"),
                            {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid})
        return sorted({str(d.SOPClassUID) for d in self._find(ds) if d.get("SOPClassUID")})

    # ------------------------------------------------------------------ retrieve
    def _retrieve_series(self, study_uid: str, series: Series, staging: StagingFolder, cancel: CancelToken) -> None:
        def on_store(event) -> int:
            try:
                staging.add(series.SeriesInstanceUID, event.request.AffectedSOPInstanceUID, event.encoded_dataset())
            except OSError:
                return 0xA700  # out of resources: the disk refused the file
            return 0x0000

        query = _query_dataset("SERIES", (), {"StudyInstanceUID": study_uid,
                                              "SeriesInstanceUID": series.SeriesInstanceUID})
        if self.move_port is not None:
            self._move(query, on_store, cancel)
        else:
            classes = self._sop_classes(study_uid, series.SeriesInstanceUID)
            if not classes:
                raise RetrieveError(f"the server lists no instances of series {series.SeriesInstanceUID}", self.address)
            self._get(query, classes, on_store, cancel)

    def _get(self, query: Dataset, classes: list[str], on_store: Callable, cancel: CancelToken) -> None:
        """C-GET ``query``, receiving instances of ``classes`` in any of RECEIVE_SYNTAXES (as stored)."""
        model = StudyRootQueryRetrieveInformationModelGet
        per_class = max(1, min(len(RECEIVE_SYNTAXES), (MAX_CONTEXTS - 1) // len(classes)))
        contexts = [(model, _UNCOMPRESSED)] + [(c, [ts]) for c in classes for ts in RECEIVE_SYNTAXES[:per_class]]
        roles = [build_role(c, scp_role=True) for c in classes]
        with self._association(contexts[:MAX_CONTEXTS], roles, [(evt.EVT_C_STORE, on_store)]) as assoc:
            if not any(cx.abstract_syntax == model for cx in assoc.accepted_contexts):
                raise RetrieveError("the server does not offer C-GET; retrieve with C-MOVE instead (--move-port PORT,"
                                    f" with {self.aet} at this host and PORT known to the server)", self.address)
            self._follow(assoc, assoc.send_c_get(query, model), cancel, "C-GET")

    def _move(self, query: Dataset, on_store: Callable, cancel: CancelToken) -> None:
        """C-MOVE ``query`` to our own AE title, received by a storage SCP on ``move_port`` for the duration."""
        scp = self._ae()
        for cx in AllStoragePresentationContexts:
            scp.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        try:
            server = scp.start_server(("", self.move_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        except OSError as err:
            raise PacsError(f"cannot receive on port {self.move_port} for C-MOVE: {err.strerror or err}",
                            self.address) from None
        model = StudyRootQueryRetrieveInformationModelMove
        try:
            with self._association([(model, _UNCOMPRESSED)]) as assoc:
                self._follow(assoc, assoc.send_c_move(query, self.aet, model), cancel, "C-MOVE")
        finally:
            server.shutdown()

    def _follow(self, assoc, responses, cancel: CancelToken, what: str) -> None:
        """Read a C-GET/C-MOVE's responses to the end; aborts the association on cancel (raises Cancelled) and
        raises :class:`RetrieveError` when the server reports failed sub-operations or stops answering."""
        since = time.monotonic()
        for status, _identifier in responses:
            if cancel.cancelled:
                assoc.abort()
                raise Cancelled(f"{what} cancelled")
            if "Status" not in status:
                raise self._no_answer(what, RetrieveError, since)
            since = time.monotonic()
            code = int(status.Status)
            if code in _PENDING:
                continue
            failed = int(status.get("NumberOfFailedSuboperations") or 0)
            if code == 0 and not failed:
                return
            if code == 0xA801:
                raise RetrieveError(f"{what} refused: the server does not know the destination AE title {self.aet!r}",
                                    self.address)
            detail = f"{failed} instances failed" if failed else "failed"
            raise RetrieveError(f"{what} {detail}, status {_status_text(status)}; nothing was kept", self.address)
        raise RetrieveError(f"the {what} ended without a final status", self.address)

    # ------------------------------------------------------------------ store
    def _store_instances(self, instances: list[Instance], report: Callable[[StoreStatus], None],
                         cancel: CancelToken) -> None:
        pairs = list(dict.fromkeys((i.sop_class_uid, i.transfer_syntax) for i in instances))
        for start in range(0, len(pairs), MAX_CONTEXTS):
            batch = set(pairs[start:start + MAX_CONTEXTS])
            todo = [i for i in instances if (i.sop_class_uid, i.transfer_syntax) in batch]
            with self._association([(c, [ts]) for c, ts in batch]) as assoc:
                for n, inst in enumerate(todo):
                    if cancel.cancelled:
                        for rest in todo[n:]:
                            report(StoreStatus(rest.path, "failed", NOT_SENT_CANCELLED, rest.sop_instance_uid))
                        return
                    report(self._store_one(assoc, inst))

    def _store_one(self, assoc, inst: Instance) -> StoreStatus:
        """C-STORE one file as it is on disk; its status."""
        def status(state: str, message: str) -> StoreStatus:
            return StoreStatus(inst.path, state, message, inst.sop_instance_uid)

        if not assoc.is_established:
            return status("failed", "not sent: the association ended")
        try:
            rsp = assoc.send_c_store(inst.path)
        except ValueError:
            return status("failed", f"the server accepts no {UID(inst.sop_class_uid).name} in "
                                    f"{UID(inst.transfer_syntax).name}")
        if "Status" not in rsp:
            return status("failed", "no answer (timed out or connection lost)")
        code = int(rsp.Status)
        if code == 0:
            return status("stored", "stored")
        if code in (0xB000, 0xB006, 0xB007):
            return status("warning", f"stored with warning {_status_text(rsp)}")
        return status("failed", f"refused by the server, status {_status_text(rsp)}")


def _query_dataset(level: str, fields: tuple[str, ...], filters: dict[str, str]) -> Dataset:
    """A C-FIND/GET/MOVE identifier: ``level``, every field asked for (empty), the filters' values."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in fields:
        setattr(ds, keyword, "")
    for keyword, value in filters.items():
        setattr(ds, keyword, value)
    return ds
