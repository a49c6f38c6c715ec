"""File > Open from PACS: pick a server, query studies, retrieve a study or one series in the background (progress,
Cancel) and open it in the main window."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.ui.job_widgets import job_widgets
from viewer.ui.pacs_servers import (
    own_aet,
    pacs_servers,
    remember_server,
    retrieve_folder,
    set_own_aet,
    set_retrieve_folder,
)
from viewer.ui.workers import TaskWorker

#: Series modalities that are not images: retrieved with the study, opened as segmentations or not at all.
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "SR", "PR", "KO", "RTPLAN", "REG", "DOC"}
COLUMNS = ("Patient ID", "Patient name", "Date", "Modality", "Description", "Instances", "UID")


class PacsServerRow(QWidget):
    """Server address (editable combo of the remembered ones) and radview's own AE title."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.server = QComboBox()
        self.server.setEditable(True)
        self.server.addItems(pacs_servers())
        self.server.setMinimumWidth(320)
        self.server.lineEdit().setPlaceholderText("dicom://AET@HOST:PORT or http(s)://HOST:PORT/PATH")
        self.aet = QLineEdit(own_aet())
        self.aet.setMaximumWidth(140)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.server, 1)
        row.addWidget(self.aet)

    def client(self):
        """A client for the chosen server (raises the address errors); remembers the server and AE title."""
        from viewer.pacs import connect

        address, aet = self.server.currentText().strip(), self.aet.text().strip()
        client = connect(address, aet=aet)
        remember_server(address)
        set_own_aet(aet)
        return client


class PacsJobDialog(QDialog):
    """Base of the PACS dialogs: a server row, one background job at a time with Cancel, a progress bar and a
    status line (errors in red); closing cancels the job and waits for it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.server_row = PacsServerRow()
        self.cancel_button, self.progress, self.status = job_widgets(self.cancel)
        self.worker = None

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def show_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.show_status(message)

    def show_status(self, message: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(message)

    def show_error(self, message: str) -> None:
        self.status.setText(f"Error: {message}")
        self.status.setStyleSheet("color: #c00000")

    def done(self, result: int) -> None:  # noqa: D401 - QDialog API: closing cancels and waits for the job
        if self.worker is not None and self.worker.isRunning():
            self.worker.cancel()
            self.worker.wait(10000)
        super().done(result)


class OpenFromPacsDialog(PacsJobDialog):
    """Query form, studies/series tree, Retrieve with progress and Cancel.

    ``retrieved(images, segmentations)`` is emitted after a retrieve: the image series folders to open and the
    segmentation files to open on the first image (both lists of paths).
    """

    retrieved = Signal(list, list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.patient_id, self.patient_name = QLineEdit(), QLineEdit()
        self.patient_name.setPlaceholderText("wildcards * and ?")
        self.modality, self.study_date = QLineEdit(), QLineEdit()
        self.modality.setPlaceholderText("e.g. CT")
        self.study_date.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        form = QFormLayout()
        form.addRow("Server / own AE title", self.server_row)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Modality", self.modality)
        form.addRow("Study date", self.study_date)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.folder = QLineEdit(retrieve_folder())
        folder_button = QPushButton("...")
        folder_button.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(folder_button)
        self.retrieve_button = QPushButton("Retrieve and open")
        self.retrieve_button.clicked.connect(self.retrieve)
        buttons = QHBoxLayout()
        for w in (self.search_button, self.retrieve_button, self.cancel_button):
            buttons.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.tree, 1)
        retrieve_form = QFormLayout()
        retrieve_form.addRow("Retrieve into", folder_row)
        layout.addLayout(retrieve_form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.studies: list = []
        self.resize(900, 560)
        self._update_buttons()

    # ------------------------------------------------------------------ search
    def search(self) -> TaskWorker | None:
        """Query the server in the background; the studies and their series fill the tree."""
        from viewer.core.errors import RadviewError
        from viewer.pacs import StudyQuery

        try:
            client = self.server_row.client()
            query = StudyQuery(self.patient_id.text().strip(), self.patient_name.text().strip(),
                               self.modality.text().strip(), self.study_date.text().strip())
        except RadviewError as err:
            self.show_error(str(err))
            return None
        self.tree.clear()
        return self._start(TaskWorker(client.find, query, parent=self), self._on_found, "searching...")

    def _on_found(self, studies: list) -> None:
        self.studies = studies
        for study in studies:
            item = QTreeWidgetItem([study.PatientID, study.PatientName, study.StudyDate,
                                    "/".join(study.ModalitiesInStudy), study.StudyDescription,
                                    str(sum(s.NumberOfSeriesRelatedInstances or 0 for s in study.series)),
                                    study.StudyInstanceUID])
            item.setData(0, Qt.UserRole, (study, None))
            for series in study.series:
                n = series.NumberOfSeriesRelatedInstances
                child = QTreeWidgetItem(["", "", "", series.Modality, series.SeriesDescription,
                                         "?" if n is None else str(n), series.SeriesInstanceUID])
                child.setData(0, Qt.UserRole, (study, series))
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(True)
        for col in range(len(COLUMNS) - 1):
            self.tree.resizeColumnToContents(col)
        self.show_status(f"{len(studies)} studies found")

    # ------------------------------------------------------------------ retrieve
    def selected(self) -> tuple | None:
        """(Study, Series or None for the whole study) of the selected row."""
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.UserRole) if items else None

    def retrieve(self) -> TaskWorker | None:
        """Retrieve the selected study or series into the folder in the background."""
        from viewer.core.errors import RadviewError

        chosen = self.selected()
        if chosen is None:
            self.show_error("select a study or a series")
            return None
        study, series = chosen
        try:
            client = self.server_row.client()
        except RadviewError as err:
            self.show_error(str(err))
            return None
        folder = self.folder.text().strip()
        set_retrieve_folder(folder)
        worker = TaskWorker(client.retrieve, study.StudyInstanceUID, folder, with_progress=True, parent=self,
                            series_uid=series.SeriesInstanceUID if series else None)
        wanted = [series] if series else study.series
        return self._start(worker, lambda result: self._on_retrieved(result, wanted), "retrieving...")

    def _on_retrieved(self, result, series: list) -> None:
        modality = {s.SeriesInstanceUID: s.Modality for s in series}
        images, segmentations = [], []
        for folder in result.series_folders:
            kind = modality.get(folder.name, "")
            if kind == "SEG":
                segmentations += [str(f) for f in sorted(folder.glob("*.dcm"))]
            elif kind not in NON_IMAGE_MODALITIES:
                images.append(str(folder))
        self.show_status(f"retrieved {len(result.files)} instances into {self.folder.text().strip()}")
        self.retrieved.emit(images, segmentations)

    # ------------------------------------------------------------------ jobs
    def _start(self, worker: TaskWorker, on_done, message: str) -> TaskWorker:
        self.worker = worker
        worker.progress.connect(self.show_progress)
        worker.finished_ok.connect(on_done)
        worker.finished_ok.connect(lambda _: self._set_running(False))
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        self.progress.setValue(0)
        self.show_status(message)
        self._set_running(True)
        worker.start()
        return worker

    def _set_running(self, running: bool) -> None:
        self.search_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self._update_buttons(running)

    def _update_buttons(self, running: bool | None = None) -> None:
        running = self.worker is not None and self.worker.isRunning() if running is None else running
        self.retrieve_button.setEnabled(not running and self.selected() is not None)

    def _on_cancelled(self) -> None:
        self._set_running(False)
        self.progress.setValue(0)
        self.show_status("cancelled: nothing of this retrieve was kept")

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.show_error(message)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Retrieve into folder", self.folder.text())
        if folder:
            self.folder.setText(folder)


def open_retrieved(window, images: list[str], segmentations: list[str]):
    """Open retrieved image series in ``window`` (through its usual open path: the first is shown, the others are
    listed in the study browser) and, once the first has loaded, the retrieved segmentations on it; returns the
    load worker (None when no image series came)."""
    if not images:
        window.statusBar().showMessage("retrieved: no image series to open")
        return None
    if segmentations:
        def then_labels(_volume) -> None:
            forget()
            for path in segmentations:
                window.open_labels(path)

        def forget(*_) -> None:  # once: after this load, loaded or not
            window.load_finished.disconnect(then_labels)
            window.load_failed.disconnect(forget)

        window.load_finished.connect(then_labels)
        window.load_failed.connect(forget)
    return window.open_paths(images)
