"""File > Send to PACS: send a file (e.g. the exported DICOM SEG) or a folder to a server, with each instance's
status as it comes back."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from viewer.ui.job_widgets import dicom_path_row, job_layout
from viewer.ui.pacs_dialog import PacsJobDialog
from viewer.ui.workers import Worker


class StoreWorker(Worker):
    """Stores files with a PACS client in a thread; ``status(StoreStatus)`` per instance as it is known,
    ``finished_ok`` with the list of all statuses."""

    status = Signal(object)
    cancel_message = None

    def __init__(self, client, paths: list[str], parent: QObject | None = None):
        super().__init__("store", parent)
        self.client, self.paths = client, paths

    def work(self) -> list:
        return self.client.store(self.paths, progress=self.progress.emit, cancel=self.cancel_token,
                                 on_status=self.status.emit)


class SendToPacsDialog(PacsJobDialog):
    """Pick a DICOM file or folder and a server, Send, and see one row per instance (state, message, file, UID)."""

    def __init__(self, parent: QWidget | None = None, path: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Send to PACS")
        self.path_edit = QLineEdit(path)
        self.path_edit.setPlaceholderText("DICOM file (e.g. the exported segmentation SEG.dcm) or folder")
        form = QFormLayout()
        form.addRow("Send", dicom_path_row(self.path_edit, "to send"))
        form.addRow("Server / own AE title", self.server_row)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["State", "Message", "File", "SOP Instance UID"])
        self.table.horizontalHeader().setStretchLastSection(True)
        job_layout(self, form, [self.send_button, self.cancel_button], self.progress, self.status, self.table)
        self.statuses: list = []
        self.resize(860, 420)

    def send(self) -> StoreWorker | None:
        """Start storing in the background; None (and a message) when the inputs are not usable."""
        from viewer.core.errors import RadviewError

        path = self.path_edit.text().strip()
        if not path:
            self.show_error("choose a DICOM file or folder to send")
            return None
        try:
            client = self.server_row.client()
        except RadviewError as err:
            self.show_error(str(err))
            return None
        self.table.setRowCount(0)
        self.statuses = []
        self.worker = StoreWorker(client, [path], self)
        self.worker.status.connect(self._add_row)
        self.worker.progress.connect(self.show_progress)
        self.worker.finished_ok.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.show_status("sending...")
        self._set_running(True)
        self.worker.start()
        return self.worker

    def _add_row(self, status) -> None:
        self.statuses.append(status)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate((status.state.upper(), status.message, status.path.name, status.sop_instance_uid)):
            item = QTableWidgetItem(text)
            item.setToolTip(str(status.path) if col == 2 else text)
            self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()

    def _on_done(self, statuses: list) -> None:
        self._set_running(False)
        failed = [s for s in statuses if not s.ok]
        stored = sum(s.state in ("stored", "warning") for s in statuses)
        self.progress.setValue(1000)
        if failed:
            self.show_error(f"{len(failed)} of {stored + len(failed)} instances not stored")
        else:
            self.show_status(f"{stored} instances stored")

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.show_error(message)

    def _set_running(self, running: bool) -> None:
        self.send_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
