"""SeriesInfo: one series found by a scan (a DICOM series or one NIfTI/NRRD/MHA file), free of pydicom."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SeriesInfo:
    """A series found by :func:`viewer.core.io.scan` (or one non-DICOM image file)."""

    series_uid: str
    modality: str
    description: str
    n_files: int
    patient_name: str = ""
    patient_id: str = ""
    study_uid: str = ""
    study_description: str = ""
    study_date: str = ""
    series_number: int | None = None
    files: list[Path] = field(default_factory=list)
    #: each file's viewer.core.io.dicom_headers.DicomHeader (not imported here: that module imports this one
    #: and pydicom); empty for a NIfTI/NRRD/MHA file
    headers: list = field(default_factory=list, repr=False)
    #: slices of a NIfTI/NRRD/MHA file, from its header (0: unknown)
    file_slices: int = 0

    @property
    def n_slices(self) -> int:
        """Number of image slices (frames for multi-frame objects)."""
        if self.headers:
            return sum(h.n_frames for h in self.headers)
        return self.file_slices or self.n_files
