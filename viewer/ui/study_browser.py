"""Study browser: patient / study / series rows (modality, slices, description) from viewer.core.io.scan."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QStyle, QTreeWidget, QTreeWidgetItem

from viewer.core.io.image_files import IMAGE_FORMATS, image_extension

COLUMNS = ("Patient / study / series", "Modality", "Slices", "Description")
MODALITY_COLUMN = COLUMNS.index("Modality")
VOLUME_ROLE = Qt.UserRole + 1  # a row of an image made in the session: the id of its Volume


def _image_file(series) -> Path | None:
    """The NIfTI/NRRD/MHA file of a series that is one such file (None for DICOM)."""
    files = series.files
    return Path(files[0]) if len(files) == 1 and image_extension(Path(files[0])) else None


def _unknown_modality(path: Path) -> tuple[str, str]:
    """(cell text, tooltip) of an image file's modality before it is loaded: not known, not 'OT'."""
    fmt = IMAGE_FORMATS[image_extension(path)]  # these formats do not record the modality
    text = f"? ({fmt})"
    return text, f"{text}: {fmt} files do not record the modality: it is inferred from the values once loaded"


def _row(parent, *texts: str) -> QTreeWidgetItem:
    """A row under ``parent`` with ``texts`` in its first columns, each cell's full text as its tooltip."""
    item = QTreeWidgetItem(parent, [*texts, *[""] * (len(COLUMNS) - len(texts))])
    for col, text in enumerate(texts):
        item.setToolTip(col, text)
    return item


def _group_row(parent, text: str) -> QTreeWidgetItem:
    """A patient or study row: its text spans all columns, so a long name does not widen the series column."""
    item = _row(parent, text)
    item.setFirstColumnSpanned(True)
    return item


class StudyBrowser(QTreeWidget):
    """Tree of the series found in opened paths; double-click a series to open it (``series_activated``
    with the path and its SeriesInfo, so it loads without scanning again). Images made in the session (a
    synthetic CT) are listed under their patient and study too; double-clicking one shows it again
    (``volume_activated``)."""

    series_activated = Signal(str, object)  # path, SeriesInfo
    volume_activated = Signal(object)  # a Volume made in this session

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderLabels(list(COLUMNS))
        for col, title in enumerate(COLUMNS):
            self.headerItem().setToolTip(col, title)
        header = self.header()
        header.setStretchLastSection(False)  # stretching would cut a long description to the dock's width
        header.setMinimumSectionSize(24)
        # every column as wide as its header and its longest text, so none is cut; a wider table scrolls sideways
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        self.setTextElideMode(Qt.ElideMiddle)
        self.itemDoubleClicked.connect(self._on_double_click)
        self._patients: dict[str, QTreeWidgetItem] = {}
        self._studies: dict[tuple[str, str], QTreeWidgetItem] = {}
        self._series: set[str] = set()
        self._file_rows: dict[Path, QTreeWidgetItem] = {}  # image file (resolved) -> its row
        self._damaged: QTreeWidgetItem | None = None  # 'Damaged files' row, made when a scan leaves one out
        self._damaged_files: set[str] = set()
        self._volumes: dict[int, object] = {}  # id -> Volume made in this session (add_volume)

    def sizeHintForColumn(self, column: int) -> int:  # Qt override: the header asks it for ResizeToContents
        """Widths follow the contents; the first column also leaves room for the patient / study rows that span
        all columns, so their text is not cut when it is wider than all columns together."""
        hint = super().sizeHintForColumn(column)
        if column != 0:
            return hint
        header = self.header()
        others = sum(max(QTreeWidget.sizeHintForColumn(self, c), header.sectionSizeHint(c))
                     for c in range(1, self.columnCount()))
        margin = 2 * (self.style().pixelMetric(QStyle.PM_FocusFrameHMargin, None, self) + 1)
        indent = self.indentation()
        first = indent if self.rootIsDecorated() else 0
        widest = max((first + indent * depth + self.fontMetrics().horizontalAdvance(row.text(0)) + margin
                      for depth, rows in enumerate((self._patients.values(), self._studies.values())) for row in rows),
                     default=0)
        return max(hint, widest - others)

    def add_series(self, path: str, series_list) -> None:
        """Add the SeriesInfo entries found under ``path`` (series already listed are skipped)."""
        for s in series_list:
            if s.series_uid in self._series:
                continue
            self._series.add(s.series_uid)
            study = self._study_row(s.patient_name, s.patient_id, s.study_uid or s.study_date or path,
                                    s.study_description or s.study_date)
            item = _row(study, f"series {s.series_number or ''}".strip(), s.modality, str(s.n_slices), s.description)
            item.setData(0, Qt.UserRole, (path, s))
            image_file = _image_file(s)
            if image_file is not None:
                self._set_modality(item, *_unknown_modality(image_file))
                self._file_rows[image_file.resolve()] = item
        self._add_damaged(getattr(series_list, "damaged", ()))

    def _study_row(self, patient_name: str, patient_id: str, study_key: str, study_text: str) -> QTreeWidgetItem:
        """The row of a study under its patient's row, both made (and expanded) when first needed."""
        pkey = patient_id or patient_name or "(no patient)"
        patient = self._patients.get(pkey)
        if patient is None:
            patient = _group_row(self, f"{patient_name or '(anonymous)'} [{patient_id}]")
            self._patients[pkey] = patient
        study = self._studies.get((pkey, study_key))
        if study is None:
            study = _group_row(patient, study_text or "study")
            self._studies[(pkey, study_key)] = study
        patient.setExpanded(True)
        study.setExpanded(True)
        return study

    def add_volume(self, vol) -> None:
        """List an image made in this session (not read from a file, e.g. a synthetic CT) under the patient and
        study it was made from; a synthetic one says so in its first column, with its statement as tooltip.
        Images read from files are listed by :meth:`add_series` and skipped here, as is one already listed."""
        if vol.meta.get("files") or vol.meta.get("source_path") or id(vol) in self._volumes:
            return
        self._volumes[id(vol)] = vol
        meta = vol.meta
        study = self._study_row(meta.get("patient_name", ""), meta.get("patient_id", ""),
                                meta.get("study_uid") or meta.get("study_date") or "made in this session",
                                meta.get("study_description") or meta.get("study_date") or "made in this session")
        kind = "SYNTHETIC" if vol.synthetic else "made in this session"
        item = _row(study, kind, vol.modality, str(vol.array.shape[0]), vol.description)
        item.setData(0, VOLUME_ROLE, id(vol))
        if vol.synthetic:
            item.setIcon(0, self.style().standardIcon(QStyle.SP_MessageBoxWarning))
            item.setToolTip(0, f"{vol.synthetic}: not an acquired image")

    def _add_damaged(self, damaged) -> None:
        """A warning row per DICOM file the scan left out as damaged (viewer.core.io.ScanResult.damaged):
        its name, and the problem in the Description column (full path and problem as tooltip)."""
        icon = self.style().standardIcon(QStyle.SP_MessageBoxWarning)
        for err in damaged:
            if err.path in self._damaged_files:
                continue
            self._damaged_files.add(err.path)
            if self._damaged is None:
                self._damaged = _group_row(self, "Damaged files (left out)")
                self._damaged.setIcon(0, icon)
            item = _row(self._damaged, Path(err.path).name, "", "", err.problem)
            item.setIcon(0, icon)
            item.setToolTip(0, str(err))
            self._damaged.setExpanded(True)

    def damaged_rows(self) -> list[dict[str, str]]:
        """Every damaged-file warning row as {'file', 'problem'}."""
        rows = self._damaged
        return [{"file": rows.child(i).text(0), "problem": rows.child(i).text(3)}
                for i in range(rows.childCount())] if rows is not None else []

    def show_loaded(self, vol) -> None:
        """Show the modality the loader inferred for a loaded NIfTI/NRRD/MHA file in its row."""
        files = vol.meta.get("files") or []
        item = self._file_rows.get(Path(files[0]).resolve()) if len(files) == 1 else None
        if item is not None:
            note = "; ".join(vol.warnings) or "modality not recorded in the file"
            self._set_modality(item, vol.modality, f"{vol.modality}, inferred when loaded ({note})")

    @staticmethod
    def _set_modality(item: QTreeWidgetItem, text: str, tooltip: str) -> None:
        item.setText(MODALITY_COLUMN, text)
        item.setToolTip(MODALITY_COLUMN, tooltip)

    def series_rows(self) -> list[dict[str, str]]:
        """Every listed series as {'patient', 'study', 'series', 'modality', 'slices', 'description'}."""
        rows = []
        for p in range(self.topLevelItemCount()):
            patient = self.topLevelItem(p)
            for s in range(patient.childCount()):
                study = patient.child(s)
                for i in range(study.childCount()):
                    item = study.child(i)
                    rows.append({"patient": patient.text(0), "study": study.text(0), "series": item.text(0),
                                 "modality": item.text(1), "slices": item.text(2), "description": item.text(3)})
        return rows

    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        data = item.data(0, Qt.UserRole)
        if data:
            self.series_activated.emit(*data)
        elif item.data(0, VOLUME_ROLE) in self._volumes:
            self.volume_activated.emit(self._volumes[item.data(0, VOLUME_ROLE)])
