"""Study browser: patient / study / series rows (modality, slices, description) from viewer.core.io.scan."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

COLUMNS = ("Patient / study / series", "Modality", "Slices", "Description")


class StudyBrowser(QTreeWidget):
    """Tree of the series found in opened paths; double-click a series to open it (``series_activated``)."""

    series_activated = Signal(str, str)  # path, series uid

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderLabels(list(COLUMNS))
        self.setColumnWidth(0, 220)
        self.itemDoubleClicked.connect(self._on_double_click)
        self._patients: dict[str, QTreeWidgetItem] = {}
        self._studies: dict[tuple[str, str], QTreeWidgetItem] = {}

    def add_series(self, path: str, series_list) -> None:
        """Add the SeriesInfo entries found under ``path``."""
        for s in series_list:
            pkey = s.patient_id or s.patient_name or "(no patient)"
            patient = self._patients.get(pkey)
            if patient is None:
                patient = QTreeWidgetItem(self, [f"{s.patient_name or '(anonymous)'} [{s.patient_id}]", "", "", ""])
                self._patients[pkey] = patient
            skey = (pkey, s.study_uid or s.study_date or path)
            study = self._studies.get(skey)
            if study is None:
                study = QTreeWidgetItem(patient, [s.study_description or s.study_date or "study", "", "", ""])
                self._studies[skey] = study
            item = QTreeWidgetItem(study, [f"series {s.series_number or ''}".strip(), s.modality,
                                           str(s.n_slices), s.description])
            item.setData(0, 0x0100, (path, s.series_uid))  # Qt.UserRole
            patient.setExpanded(True)
            study.setExpanded(True)

    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        data = item.data(0, 0x0100)
        if data:
            self.series_activated.emit(*data)
