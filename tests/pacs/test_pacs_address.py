"""Server addresses, AE titles and query filters are checked before any network traffic, one clear error each."""

from __future__ import annotations

import pytest

from viewer.pacs import StudyQuery, parse_address
from viewer.pacs.address import check_aet
from viewer.pacs.errors import PacsAddressError, PacsQueryError


def test_dimse_address_names_called_aet_host_and_port():
    a = parse_address("dicom://ORTHANC@pacs.example.org:4242")
    assert (a.protocol, a.called_aet, a.host, a.port) == ("dimse", "ORTHANC", "pacs.example.org", 4242)
    assert parse_address("dicom://PACS@[::1]:104").host == "::1"


def test_dicomweb_address_keeps_the_service_root():
    a = parse_address("https://pacs:8443/dicom-web/")
    assert (a.protocol, a.host, a.port, a.url) == ("dicomweb", "pacs", 8443, "https://pacs:8443/dicom-web")
    assert parse_address("http://pacs/wado").port == 80


@pytest.mark.parametrize("text, says", [
    ("dicom://pacs:4242", "dicom://AET@HOST:PORT"),
    ("dicom://ORTHANC@pacs", "dicom://AET@HOST:PORT"),
    ("dicom://ORTHANC@pacs:0", "port"),
    ("dicom://ORTHANC@pacs:70000", "port"),
    ("dicom://THIS_AE_TITLE_IS_TOO_LONG@pacs:104", "called AE title"),
    ("dicom://@pacs:104", "called AE title"),
    ("ftp://pacs/dicom", "unknown server address"),
    ("pacs:4242", "unknown server address"),
    ("http://:8042/dicom-web", "http(s)://HOST:PORT/PATH"),
    ("http://pacs:port/dicom-web", "port"),
])
def test_malformed_addresses_are_refused_with_what_is_wrong(text, says):
    with pytest.raises(PacsAddressError) as err:
        parse_address(text)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_own_ae_title_is_checked():
    assert check_aet("RADVIEW") == "RADVIEW"
    for bad in ("", "   ", "A" * 17, "BACK\\SLASH"):
        with pytest.raises(PacsAddressError):
            check_aet(bad)


def test_study_date_filter_takes_a_date_or_a_range():
    assert StudyQuery(study_date="20240315").filters() == {"StudyDate": "20240315"}
    assert StudyQuery(study_date="20240101-20241231").filters()["StudyDate"] == "20240101-20241231"
    assert StudyQuery(study_date="20240101-").filters()["StudyDate"] == "20240101-"
    for bad in ("2024", "2024-03-15", "20241301", "20240101-20230101", "2024010120241231", "-"):
        with pytest.raises(PacsQueryError):
            StudyQuery(study_date=bad)


def test_query_filters_use_dicom_keywords_and_skip_empty_ones():
    q = StudyQuery(patient_id="P1", patient_name="Smith*", modality="ct")
    assert q.filters() == {"PatientID": "P1", "PatientName": "Smith*", "ModalitiesInStudy": "CT"}
    assert StudyQuery().filters() == {}
