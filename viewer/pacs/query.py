"""Study queries and their answers: the filters of a find, and the studies with their series a PACS lists."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime

from pydicom.dataset import Dataset

from viewer.pacs.errors import PacsQueryError


def check_study_date(value: str) -> str:
    """``value`` if it is ``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD`` (either end may be left open) of real
    dates; raises :class:`PacsQueryError` otherwise."""
    parts = value.split("-")
    if len(parts) > 2 or not any(parts) or any(p and not re.fullmatch(r"\d{8}", p) for p in parts):
        raise PacsQueryError(f"study date {value!r} is not YYYYMMDD or YYYYMMDD-YYYYMMDD")
    for part in filter(None, parts):
        try:
            datetime.strptime(part, "%Y%m%d")
        except ValueError:
            raise PacsQueryError(f"study date {value!r}: {part} is not a date") from None
    if all(parts) and len(parts) == 2 and parts[0] > parts[1]:
        raise PacsQueryError(f"study date range {value!r} ends before it starts")
    return value


@dataclass(frozen=True)
class StudyQuery:
    """Filters of a study search; empty ones match everything. ``patient_name`` takes DICOM wildcards (``*``,
    ``?``); ``modality`` matches ModalitiesInStudy; ``study_date`` is YYYYMMDD or YYYYMMDD-YYYYMMDD."""

    patient_id: str = ""
    patient_name: str = ""
    modality: str = ""
    study_date: str = ""

    def __post_init__(self) -> None:
        if self.study_date:
            check_study_date(self.study_date)

    def filters(self) -> dict[str, str]:
        """The non-empty filters as DICOM keyword -> value."""
        keys = {"PatientID": self.patient_id, "PatientName": self.patient_name,
                "ModalitiesInStudy": self.modality.upper(), "StudyDate": self.study_date}
        return {k: v for k, v in keys.items() if v}


@dataclass
class Series:
    """One series of a study as the PACS lists it (``NumberOfSeriesRelatedInstances`` None when not told)."""

    SeriesInstanceUID: str
    Modality: str = ""
    SeriesDescription: str = ""
    SeriesNumber: int | None = None
    NumberOfSeriesRelatedInstances: int | None = None

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Series:
        """The series described by a C-FIND identifier or a QIDO-RS result."""
        return cls(_text(ds, "SeriesInstanceUID"), _text(ds, "Modality"), _text(ds, "SeriesDescription"),
                   _int(ds, "SeriesNumber"), _int(ds, "NumberOfSeriesRelatedInstances"))


def in_series_order(series: list[Series]) -> list[Series]:
    """``series`` sorted by SeriesNumber (unnumbered last), then UID."""
    return sorted(series, key=lambda s: (s.SeriesNumber is None, s.SeriesNumber or 0, s.SeriesInstanceUID))


@dataclass
class Study:
    """One study as the PACS lists it, with its series (filled by a series-level find)."""

    StudyInstanceUID: str
    PatientID: str = ""
    PatientName: str = ""
    StudyDate: str = ""
    StudyDescription: str = ""
    ModalitiesInStudy: list[str] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Study:
        """The study described by a C-FIND identifier or a QIDO-RS result (series not filled)."""
        modalities = ds.get("ModalitiesInStudy") or []
        modalities = [modalities] if isinstance(modalities, str) else [str(m) for m in modalities]
        return cls(_text(ds, "StudyInstanceUID"), _text(ds, "PatientID"), _text(ds, "PatientName"),
                   _text(ds, "StudyDate"), _text(ds, "StudyDescription"), [m for m in modalities if m])

    def to_json(self) -> dict:
        """The study as the JSON of ``radview pacs find --json``."""
        return asdict(self)


#: Attributes asked for (returned) by the study-level and series-level finds.
STUDY_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyDescription", "ModalitiesInStudy")
SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber",
                 "NumberOfSeriesRelatedInstances")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        return int(str(ds.get(keyword)).strip())
    except (TypeError, ValueError):
        return None
