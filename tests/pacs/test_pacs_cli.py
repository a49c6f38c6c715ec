"""`radview pacs find|get|store` against the real Orthanc: JSON shape, progress on stderr, one status line per
stored instance, and one error line with a non-zero exit for each failure."""

from __future__ import annotations

import json

import pytest

from tests.pacs.conftest import make_study
from tests.pacs.orthanc import free_ports
from viewer.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["pacs", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_find_json_lists_studies_with_series(seeded, capsys):
    server, study, _ = seeded
    code, out, _ = run(capsys, "find", server.dimse, "--patient-id", "PACS-SEED", "--json")
    assert code == 0
    (s,) = json.loads(out)
    assert s["StudyInstanceUID"] == study.study_uid and s["PatientID"] == "PACS-SEED"
    assert (s["StudyDate"], s["StudyDescription"], sorted(s["ModalitiesInStudy"])) == (
        "20240315", "radview-pacs-seeded study", ["CT", "SEG"])
    assert [(x["Modality"], x["SeriesDescription"], x["NumberOfSeriesRelatedInstances"]) for x in s["series"]] == [
        ("CT", "CT plain", 6), ("CT", "CT J2K", 6), ("SEG", "Segmentation", 1)]
    assert all(x["SeriesInstanceUID"] for x in s["series"])


def test_find_text_over_dicomweb_with_filters(seeded, capsys):
    server, study, _ = seeded
    code, out, err = run(capsys, "find", server.dicomweb, "--patient-name", "Seeded*", "--modality", "SEG",
                         "--study-date", "20240101-20241231")
    assert code == 0 and out.splitlines()[0].startswith(f"{study.study_uid}  PACS-SEED  Seeded^Patient  20240315")
    assert "CT plain" in out and "6 instances" in out and err.strip() == "1 studies"


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_get_reports_progress_on_stderr_and_writes_the_series(seeded, protocol, capsys, tmp_path):
    server, study, _ = seeded
    series = study.series_uid(study.ct_dir)
    code, out, err = run(capsys, "get", getattr(server, protocol), "--study", study.study_uid, "--series", series,
                         "--out", tmp_path)
    assert code == 0 and out.strip() == f"retrieved 6 instances of {study.study_uid} into {tmp_path / series}"
    assert "radview: retrieving 6 instances" in err and "radview: received 6/6 instances" in err
    assert len(list((tmp_path / series).glob("*.dcm"))) == 6


def test_get_by_c_move(seeded, capsys, tmp_path):
    server, study, _ = seeded
    code, out, _ = run(capsys, "get", server.dimse, "--study", study.study_uid, "--out", tmp_path,
                       "--move-port", server.move_port)
    assert code == 0 and out.startswith("retrieved 13 instances")


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_store_prints_one_line_per_instance(orthanc, protocol, capsys, tmp_path):
    study = make_study(tmp_path, f"radview-pacs-cli-{protocol}", "CLI", "Cli^Store", "20220202")
    capsys.readouterr()  # export-seg's own output
    code, out, err = run(capsys, "store", getattr(orthanc, protocol), study.j2k_dir, study.seg)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7 and all(line.startswith("STORED") for line in lines)
    assert any(str(study.seg) in line for line in lines) and "7 stored, 0 failed, 0 skipped" in err


def test_store_of_files_a_pacs_cannot_file_fails_per_instance(orthanc, shared_data, capsys):
    code, out, err = run(capsys, "store", orthanc.dimse, shared_data / "ct_abdomen_dicom")
    lines = out.splitlines()
    assert code == 1 and len(lines) == 20 and all(line.startswith("FAILED") for line in lines)
    assert "the data set has no SOPClassUID, SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID" in lines[0]
    assert err.strip() == "radview: error: 20 of 20 instances not stored (0 stored, 20 failed, 0 skipped)"


@pytest.mark.parametrize("argv, says", [
    (["find", "dicom://ORTHANC@127.0.0.1:{free}"], "cannot reach 127.0.0.1:{free} (connection refused)"),
    (["find", "dicom://WRONG@127.0.0.1:{dicom}"], "association rejected: Called AE title not recognised"),
    (["get", "http://127.0.0.1:{http}/dicom-web", "--study", "9.9.9", "--out", "{tmp}"],
     "no study 9.9.9 on the server"),
    (["find", "dicom://127.0.0.1:104"], "a DICOM server is written dicom://AET@HOST:PORT"),
    (["find", "dicom://ORTHANC@127.0.0.1:{dicom}", "--study-date", "2024"], "study date '2024' is not YYYYMMDD"),
    (["find", "dicom://ORTHANC@127.0.0.1:{dicom}", "--aet", "A_VERY_LONG_AE_TITLE"], "invalid own AE title"),
])
def test_errors_are_one_line_and_exit_2(orthanc, capsys, tmp_path, argv, says):
    values = {"free": free_ports(1)[0], "dicom": orthanc.dicom_port, "http": orthanc.http_port, "tmp": tmp_path / "o"}
    code, out, err = run(capsys, *[a.format(**values) for a in argv])
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("radview: error: ") and says.format(**values) in err
    assert not (tmp_path / "o").exists()
