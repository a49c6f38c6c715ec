"""Files to store: the DICOM instances under the given files/folders, their UIDs and transfer syntax, and the
status each one ends with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from viewer.core.io.dicom_headers import iter_files

#: Data set attributes a PACS files an instance under; without them it cannot be stored.
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class Instance:
    """One DICOM file to store. ``problem`` says why it cannot be sent (empty when it can)."""

    path: Path
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    transfer_syntax: str = ""
    problem: str = ""


@dataclass(frozen=True)
class StoreStatus:
    """How storing one file ended: ``state`` is 'stored', 'warning' (stored, the server noted something),
    'failed' or 'skipped' (not a DICOM file inside a given folder)."""

    path: Path
    state: str
    message: str
    sop_instance_uid: str = ""

    @property
    def ok(self) -> bool:
        """True unless the file was meant to be stored and was not."""
        return self.state != "failed"

    def line(self) -> str:
        """One line for the terminal: ``STATE path [UID]: message`` (no message when it only repeats the state)."""
        uid = f" [{self.sop_instance_uid}]" if self.sop_instance_uid else ""
        message = "" if self.message == self.state else f": {self.message}"
        return f"{self.state.upper():8} {self.path}{uid}{message}"


def read_instance(path: Path) -> Instance:
    """The UIDs and transfer syntax of the DICOM file ``path`` (headers only); ``problem`` set when it is not a
    DICOM file or its data set lacks a UID a PACS needs (e.g. files whose only UIDs are in the file meta)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError) as err:
        return Instance(path, problem=f"not a readable DICOM file ({err})")
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    sop = str(ds.get("SOPInstanceUID") or "")
    missing = [k for k in REQUIRED_UIDS if not str(ds.get(k) or "").strip()]
    if missing:
        return Instance(path, sop_instance_uid=sop or str(getattr(meta, "MediaStorageSOPInstanceUID", "") or ""),
                        problem=f"the data set has no {', '.join(missing)}: a PACS cannot file it, not sent")
    if not syntax:
        return Instance(path, sop_instance_uid=sop, problem="no file meta Transfer Syntax UID, not sent")
    return Instance(path, str(ds.SOPClassUID), sop, syntax)


def collect_instances(paths: list[str | os.PathLike]) -> tuple[list[Instance], list[StoreStatus]]:
    """The instances under ``paths`` (files, or folders walked recursively) and the statuses already known: a
    named file that cannot be stored fails, a non-DICOM file found in a folder is skipped."""
    instances, statuses = [], []
    for given in map(Path, paths):
        if not given.exists():
            statuses.append(StoreStatus(given, "failed", "no such file or folder"))
            continue
        for path in iter_files(given):
            inst = read_instance(path)
            if not inst.problem:
                instances.append(inst)
            elif given.is_dir() and not inst.sop_instance_uid:
                statuses.append(StoreStatus(path, "skipped", inst.problem))
            else:
                statuses.append(StoreStatus(path, "failed", inst.problem, inst.sop_instance_uid))
    return instances, statuses
