"""PACS test fixtures: one real Orthanc per session, and real DICOM studies to put on it (generated series in
Explicit VR Little Endian and JPEG 2000, a DICOM SEG made by `radview export-seg`, pydicom's test files)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless

from tests.pacs.orthanc import running_orthanc

#: pydicom's real test files put on the server: (name, transfer syntax) Explicit VR LE CT, MR, JPEG 2000 NM.
PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm")


@dataclass
class TestStudy:
    """A generated study on disk: its UIDs, its series folders and every file (SEG included)."""

    study_uid: str
    ct_dir: Path
    j2k_dir: Path
    seg: Path
    patient_id: str
    files: list[Path] = field(default_factory=list)

    def series_uid(self, folder: Path) -> str:
        return str(pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True).SeriesInstanceUID)


def make_study(out: Path, key: str, patient_id: str, patient_name: str, study_date: str) -> TestStudy:
    """A CT series (6 slices, Explicit VR LE), the same voxels as a JPEG 2000 lossless series, and a DICOM SEG
    of a box written by ``radview export-seg`` on the first series."""
    from viewer.cli import main
    from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series
    from viewer.core.io.labelmap import save_labelmap
    from viewer.core.volume import Volume

    hu = np.full((6, 32, 32), -100, np.int16)
    hu[1:5, 8:24, 10:22] = 60
    vol = Volume(hu, spacing=(1.5, 1.5, 3.0), modality="CT", units="HU", description="pacs test CT")
    study = DicomStudy(key, patient_name, patient_id, study_date=study_date, study_description=f"{key} study")
    ct = write_dicom_series(vol, out / "ct", study=study, series_number=1, series_description="CT plain")
    j2k = write_dicom_series(vol, out / "j2k", study=study, series_number=2, series_description="CT J2K")
    for path in j2k:
        ds = pydicom.dcmread(path)
        ds.compress(JPEG2000Lossless)
        ds.save_as(path, enforce_file_format=True)
    labels = save_labelmap(vol.with_array((hu > 0).astype(np.uint8), units="label"), out / "labels.nii.gz",
                           names={1: "liver"})
    seg = out / "seg" / "seg.dcm"
    seg.parent.mkdir()
    assert main(["export-seg", str(out / "ct"), str(labels), "--out", str(seg)]) == 0
    return TestStudy(str(pydicom.dcmread(ct[0]).StudyInstanceUID), out / "ct", out / "j2k", seg, patient_id,
                     [*ct, *j2k, seg])


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A real Orthanc (DIMSE + DICOMweb) on free ports for the whole session."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="session")
def seeded(orthanc, tmp_path_factory):
    """The server holding a generated study (2 series + SEG) and pydicom's test files, uploaded through Orthanc's
    REST API (not radview); returns (orthanc, TestStudy, {name: pydicom file})."""
    from pydicom.data import get_testdata_file

    study = make_study(tmp_path_factory.mktemp("seeded"), "radview-pacs-seeded", "PACS-SEED", "Seeded^Patient",
                       "20240315")
    singles = {name: Path(get_testdata_file(name)) for name in PYDICOM_FILES}
    for path in [*study.files, *singles.values()]:
        orthanc.upload(path)
    return orthanc, study, singles


def instance_bytes(path: Path) -> tuple[str, bytes]:
    """(transfer syntax, the data set's bytes after the file meta): what a PACS must give back unchanged. A final
    (FFFC,FFFC) Data Set Trailing Padding is left out: PS3.5 7.8 lets any application drop it, and DCMTK (under
    Orthanc's DIMSE) does (pydicom's CT_small.dcm has one)."""
    from pynetdicom.dsutils import split_dataset

    meta, offset = split_dataset(path)
    data = path.read_bytes()[offset:]
    if 0xFFFCFFFC in pydicom.dcmread(path, stop_before_pixels=False):
        data = data[:data.rindex(b"\xfc\xff\xfc\xff")]
    return str(meta.TransferSyntaxUID), data


def copy_files(files: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, dest / f.name)
    return dest
