"""A real Orthanc PACS for the tests: started on free ports with a temporary configuration, stopped after."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
#: AE title radview calls Orthanc with in the tests, and the one Orthanc knows for C-MOVE destinations.
CLIENT_AET = "RADVIEW"
#: Transfer syntaxes Orthanc accepts over DIMSE: all but RLE Lossless, so a C-STORE of an RLE file is refused.
ACCEPTED_SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
                     "1.2.840.10008.1.2.4.*"]


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on localhost right now."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Orthanc:
    """A running Orthanc: its DIMSE and DICOMweb addresses as radview writes them, and the port of radview's
    C-MOVE storage SCP it knows as ``CLIENT_AET``."""

    dicom_port: int
    http_port: int
    move_port: int
    log: Path
    aet: str = "ORTHANC"

    @property
    def dimse(self) -> str:
        return f"dicom://{self.aet}@127.0.0.1:{self.dicom_port}"

    @property
    def dicomweb(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def rest(self, path: str, data: bytes | None = None, method: str | None = None):
        """Orthanc's own REST API (independent of radview's clients): JSON answer of ``path``."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=30) as rsp:
            body = rsp.read()
        return json.loads(body) if body else None

    def upload(self, path: Path) -> dict:
        """Store one file through the REST API (not through radview)."""
        return self.rest("/instances", path.read_bytes(), "POST")

    def has_instance(self, sop_uid: str) -> bool:
        """Whether Orthanc holds the instance ``sop_uid``."""
        query = {"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}}
        found = self.rest("/tools/find", json.dumps(query).encode(), "POST")
        return bool(found)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/system", timeout=2) as rsp:
            return rsp.status == 200
    except OSError:
        return False


@contextmanager
def running_orthanc(workdir: Path, startup_timeout: float = 60.0) -> Iterator[Orthanc]:
    """Start ``/usr/sbin/Orthanc`` with a configuration in ``workdir`` (storage there too, DICOMweb plugin loaded,
    radview's storage SCP declared for C-MOVE), wait until its REST API answers, stop it afterwards."""
    for needed in (ORTHANC, DICOMWEB_PLUGIN):
        if not needed.exists():
            raise RuntimeError(f"{needed} missing: install the Debian packages orthanc and orthanc-dicomweb (make)")
    dicom_port, http_port, move_port = free_ports(3)
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "radview-tests",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomModalities": {"radview": [CLIENT_AET, "127.0.0.1", move_port]},
        "AcceptedTransferSyntaxes": ACCEPTED_SYNTAXES,
        "StorageCompression": False,
        "ConcurrentJobs": 1,
    }
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=1))
    log = workdir / "orthanc.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(ORTHANC), str(config_path)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _ready(http_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start (exit {proc.poll()}): {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Orthanc(dicom_port, http_port, move_port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
