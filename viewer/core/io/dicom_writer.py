"""Write a Volume as a DICOM image series (one file per slice): CT in HU, PET in BQML with SUV tags."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

from viewer.core.errors import UnsupportedFormatError
from viewer.core.io.suv import F18_HALF_LIFE_S
from viewer.core.progress import ProgressCallback, no_progress
from viewer.core.volume import SYNTHETIC_PREFIX, Volume

SOP_CLASSES = {"CT": CTImageStorage, "PT": PositronEmissionTomographyImageStorage, "MR": MRImageStorage}


@dataclass(frozen=True)
class DicomStudy:
    """Patient/study attributes shared by the series of one study; ``key`` seeds deterministic UIDs."""

    key: str
    patient_name: str
    patient_id: str
    study_date: str = "20260101"
    study_time: str = "093000"
    study_description: str = ""
    patient_weight_kg: float = 75.0
    #: PET: injected F-18 activity (Bq) and injection time (HHMMSS on study_date).
    injected_dose_bq: float = 3.7e8
    injection_time: str = "090000"

    @classmethod
    def demo(cls) -> DicomStudy:
        return cls("radview-demo-v1", "Demo^Phantom", "RADVIEW-DEMO", study_description="radview demo study")

    def uid(self, *parts: object) -> str:
        """A deterministic UID for ``parts`` within this study."""
        return generate_uid(entropy_srcs=[self.key, *map(str, parts)])


def _ds(value: float) -> str:
    """A DS string (<= 16 characters) for ``value``."""
    for digits in range(12, 3, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot format {value} as DS")


def decayed_dose(study: DicomStudy, series_time: str) -> float:
    """The injected F-18 dose (Bq) decay-corrected from injection to ``series_time`` (HHMMSS)."""
    start = datetime.strptime(study.study_date + study.injection_time, "%Y%m%d%H%M%S")
    elapsed = (datetime.strptime(study.study_date + series_time, "%Y%m%d%H%M%S") - start).total_seconds()
    return study.injected_dose_bq * 2.0 ** (-elapsed / F18_HALF_LIFE_S)


def _pet_tags(ds: pydicom.Dataset, study: DicomStudy) -> None:
    """Fill the PET units and radiopharmaceutical tags (BQML, decay corrected to series START)."""
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY", "NORM"]
    ds.PatientWeight = _ds(study.patient_weight_kg)
    info = pydicom.Dataset()
    info.Radiopharmaceutical = "Fluorodeoxyglucose"
    info.RadiopharmaceuticalStartTime = study.injection_time
    info.RadiopharmaceuticalStartDateTime = study.study_date + study.injection_time
    info.RadionuclideTotalDose = _ds(study.injected_dose_bq)
    info.RadionuclideHalfLife = _ds(F18_HALF_LIFE_S)
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "C-111A1", "SRT", "^18^Fluorine"
    info.RadionuclideCodeSequence = Sequence([code])
    ds.RadiopharmaceuticalInformationSequence = Sequence([info])


def _synthetic_tags(ds: pydicom.Dataset, statement: str) -> None:
    """Mark a slice of a synthetic volume as such: ImageType DERIVED\\SECONDARY, DerivationDescription = the
    statement, SeriesDescription beginning with it (LO: 64 characters)."""
    ds.ImageType = ["DERIVED", "SECONDARY", *ds.ImageType[2:]]
    ds.DerivationDescription = statement[:1024]
    if not str(ds.SeriesDescription).upper().startswith(SYNTHETIC_PREFIX):
        ds.SeriesDescription = f"{statement} - {ds.SeriesDescription}"
    ds.SeriesDescription = str(ds.SeriesDescription)[:64]


def _stored_slices(vol: Volume, modality: str, dose_at_scan: float | None, study: DicomStudy):
    """Yield (stored uint16/int16 slice, slope, intercept) for each z."""
    for k in range(vol.array.shape[0]):
        plane = vol.array[k]
        if modality == "PT":
            # Bq/mL = SUV * dose(t) / weight[g]; uint16 with a per-slice slope, as scanners write
            bqml = plane.astype(np.float64) * dose_at_scan / (study.patient_weight_kg * 1000.0)
            top = float(bqml.max())
            slope = float(_ds(top / 65535.0)) if top > 0 else 1.0
            yield np.clip(np.rint(bqml / slope), 0, 65535).astype(np.uint16), slope, 0.0
        elif modality == "CT":
            yield (plane.astype(np.int32) + 1024).clip(0, 4095).astype(np.uint16), 1.0, -1024.0
        else:
            yield np.clip(np.rint(plane), -32768, 32767).astype(np.int16), 1.0, 0.0


def write_dicom_series(
    vol: Volume,
    out_dir: str | Path,
    *,
    study: DicomStudy,
    series_number: int = 1,
    series_description: str | None = None,
    series_time: str | None = None,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Write ``vol`` (modality CT, PT or MR) as a series of single-frame DICOM files.

    Explicit VR Little Endian; geometry from the Volume (ImagePositionPatient per slice,
    ImageOrientationPatient from the direction's first two columns; the third must be their
    cross product). File names are hashes of the SOP Instance UIDs, so they do not sort in slice
    order. Deterministic: the same inputs give the same bytes.
    A synthetic volume (``Volume.synthetic``) is written DERIVED\\SECONDARY with its statement as
    DerivationDescription and at the start of SeriesDescription.
    """
    modality = vol.modality
    if modality not in SOP_CLASSES:
        raise UnsupportedFormatError(f"cannot write modality {modality} as DICOM images")
    d = vol.direction
    if not np.allclose(np.cross(d[:, 0], d[:, 1]), d[:, 2], atol=1e-6):
        raise ValueError("direction is left-handed: slices must stack along row x column")
    progress = progress or no_progress
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    series_time = series_time or ("100000" if modality == "PT" else "093500")
    series_uid = study.uid("series", series_number)
    frame_uid = study.uid("frame-of-reference")
    dose = decayed_dose(study, series_time) if modality == "PT" else None
    files = []
    n = vol.array.shape[0]
    for k, (pixels, slope, intercept) in enumerate(_stored_slices(vol, modality, dose, study)):
        sop_uid = study.uid("instance", series_number, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SOP_CLASSES[modality]
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = SOP_CLASSES[modality], sop_uid
        ds.PatientName, ds.PatientID = study.patient_name, study.patient_id
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.StudyInstanceUID, ds.StudyID = study.uid("study"), "1"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.study_date
        ds.StudyTime, ds.SeriesTime = study.study_time, series_time
        ds.ContentTime = (datetime.strptime(series_time, "%H%M%S") + timedelta(seconds=k)).strftime("%H%M%S")
        ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
        ds.StudyDescription = study.study_description
        ds.Modality = modality
        ds.Manufacturer = "radview phantom"
        ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, series_number
        ds.SeriesDescription = series_description or vol.description or f"{modality} series"
        ds.InstanceNumber = k + 1
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
        ds.PatientPosition = "HFS"
        position = vol.index_to_world((0, 0, k))
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in (*d[:, 0], *d[:, 1])]
        ds.PixelSpacing = [_ds(vol.spacing[1]), _ds(vol.spacing[0])]  # row spacing (y), column spacing (x)
        ds.SliceThickness = _ds(vol.spacing[2])
        ds.SliceLocation = _ds(float(position @ d[:, 2]))
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated = 16
        ds.BitsStored = 12 if modality == "CT" else 16  # CT: HU + 1024 in 12 bits, as scanners store it
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
        ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
        if modality == "CT":
            ds.RescaleType = "HU"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.KVP = "120"
            ds.WindowCenter, ds.WindowWidth = "40", "400"
        elif modality == "PT":
            _pet_tags(ds, study)
            ds.AcquisitionDate, ds.AcquisitionTime = study.study_date, series_time  # Type 1 in the PET Image module
            ds.ImageType = ["ORIGINAL", "PRIMARY"]
            ds.SeriesType = ["WHOLE BODY", "IMAGE"]
            ds.ImageIndex = k + 1
            ds.NumberOfSlices = n
        else:
            ds.ImageType = ["ORIGINAL", "PRIMARY"]
            ds.ScanningSequence, ds.SequenceVariant = "SE", "NONE"
        if vol.synthetic:
            _synthetic_tags(ds, vol.synthetic)
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        name = hashlib.sha1(sop_uid.encode()).hexdigest()[:16] + ".dcm"
        path = out / name
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
        progress((k + 1) / n, f"{modality} slice {k + 1}/{n}")
    return files

