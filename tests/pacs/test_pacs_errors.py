"""Each PACS failure is one typed error, one line naming the server: unreachable (refused, silent), association
rejected, unknown study or series, a destination the server refuses, and a store of files a PACS cannot file."""

from __future__ import annotations

import socket

import pytest

from tests.pacs.orthanc import free_ports
from viewer.pacs import connect
from viewer.pacs.errors import (
    AssociationRejectedError,
    PacsError,
    PacsUnreachableError,
    RetrieveError,
    UnknownStudyError,
)
from viewer.pacs.query import StudyQuery


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.parametrize("template", ["dicom://ORTHANC@127.0.0.1:{port}", "http://127.0.0.1:{port}/dicom-web"])
def test_connection_refused(template, tmp_path):
    address = template.format(port=free_ports(1)[0])
    with pytest.raises(PacsUnreachableError) as err:
        connect(address).find(StudyQuery())
    assert one_line(err).startswith(address) and "connection refused" in str(err.value)


@pytest.mark.parametrize("template", ["dicom://ORTHANC@127.0.0.1:{port}", "http://127.0.0.1:{port}/dicom-web"])
def test_silent_server_times_out(template):
    with socket.socket() as silent:  # accepts the connection (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        with pytest.raises(PacsUnreachableError) as err:
            connect(template.format(port=silent.getsockname()[1]), timeout=1.0).find(StudyQuery())
    assert "within 1 s" in one_line(err)


def test_wrong_called_aet_is_rejected(orthanc):
    with pytest.raises(AssociationRejectedError) as err:
        connect(f"dicom://NOTORTHANC@127.0.0.1:{orthanc.dicom_port}").find(StudyQuery())
    assert "association rejected: Called AE title not recognised (called AE title 'NOTORTHANC'" in one_line(err)


def test_unknown_calling_aet_is_told(orthanc):
    with pytest.raises(PacsError) as err:
        connect(orthanc.dimse, aet="STRANGER").find(StudyQuery())
    assert "the server aborted the C-FIND (does it accept requests from AE title 'STRANGER'?)" in one_line(err)


def test_wrong_dicomweb_root(orthanc):
    with pytest.raises(PacsError) as err:
        connect(f"http://127.0.0.1:{orthanc.http_port}/not-dicom-web").find(StudyQuery())
    assert "HTTP 404 (is the DICOMweb root right?)" in one_line(err)


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_unknown_study_and_series(seeded, protocol, tmp_path):
    server, study, _ = seeded
    c = connect(getattr(server, protocol))
    with pytest.raises(UnknownStudyError) as err:
        c.retrieve("1.2.3.4.5.6.7", tmp_path)
    assert "no study 1.2.3.4.5.6.7 on the server" in one_line(err)
    with pytest.raises(UnknownStudyError) as err:
        c.retrieve(study.study_uid, tmp_path, series_uid="1.2.3.999")
    assert f"study {study.study_uid} has no series 1.2.3.999" in one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_c_move_to_a_port_nobody_listens_on_fails_and_keeps_nothing(seeded, tmp_path):
    """Orthanc knows RADVIEW at move_port; here radview listens elsewhere, so every sub-operation fails."""
    server, study, _ = seeded
    other = free_ports(1)[0]
    with pytest.raises(RetrieveError) as err:
        connect(server.dimse, move_port=other, timeout=5).retrieve(study.study_uid, tmp_path)
    assert "C-MOVE" in one_line(err) and "nothing was kept" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_instance_in_a_transfer_syntax_the_server_refuses_fails_alone(orthanc, pydicom_file, tmp_path):
    """The test Orthanc accepts no RLE Lossless over DIMSE: that file fails, naming why; the others are stored."""
    rle, good = pydicom_file("MR_small_RLE.dcm"), pydicom_file("CT_small.dcm")
    result = connect(orthanc.dimse).store([rle, good])
    assert [(s.path, s.state) for s in result] == [(rle, "failed"), (good, "stored")]
    assert result[0].message == "the server accepts no MR Image Storage in RLE Lossless"
