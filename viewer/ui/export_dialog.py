"""File > Export segmentation: choose NIfTI / NRRD (or DICOM SEG for DICOM images) and export in the background.

The labels are written with their image's exact geometry and the segmentation's audit log lands beside
them as ``<name>.audit.json`` (:func:`viewer.core.segmentation_files.export_segmentation`).
"""

from __future__ import annotations

import re

from PySide6.QtWidgets import QFileDialog, QWidget

from viewer.ui.workers import TaskWorker

#: Save-dialog filter -> extension added when the typed name has none.
FILTERS = {"NIfTI (*.nii.gz)": ".nii.gz", "NRRD (*.nrrd)": ".nrrd", "DICOM SEG (*.dcm)": ".dcm"}


def export_filters(image) -> list[str]:
    """Formats offered for a segmentation of ``image``: DICOM SEG only when it was read from DICOM."""
    is_dicom = image is not None and image.meta.get("format") == "dicom"
    return [f for f, ext in FILTERS.items() if ext != ".dcm" or is_dicom]


def with_extension(path: str, chosen_filter: str) -> str:
    """``path`` with the chosen format's extension appended when it has none of the known ones."""
    if any(path.lower().endswith(ext) for ext in (*FILTERS.values(), ".nii", ".mha")):
        return path
    return path + FILTERS.get(chosen_filter, ".nii.gz")


def ask_export_path(parent: QWidget, image, name: str) -> str | None:
    """A save dialog for the segmentation ``name``; None when cancelled."""
    filters = export_filters(image)
    suggested = re.sub(r"[^\w.-]+", "_", name).strip("_") or "segmentation"
    path, chosen = QFileDialog.getSaveFileName(parent, "Export segmentation", suggested + ".nii.gz", ";;".join(filters))
    return with_extension(path, chosen) if path else None


def export_worker(session, seg, path: str, parent=None) -> TaskWorker:
    """A worker (not started: connect its signals, then ``start()``) exporting ``seg`` and its audit JSON to
    ``path``; ``finished_ok`` gets (labels path, audit path). It exports a snapshot taken now, so brush
    strokes made while it runs cannot tear the file."""
    from viewer.core.segmentation_files import export_segmentation, snapshot

    return TaskWorker(export_segmentation, session, snapshot(seg), path, parent=parent)
