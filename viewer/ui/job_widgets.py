"""The widgets every background job shows (a Cancel button, a progress bar 0-1000 and a status line), the
path row of a job that reads a DICOM file or folder, and the dialog layout that puts them together."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def job_widgets(on_cancel: Callable[[], None]) -> tuple[QPushButton, QProgressBar, QLabel]:
    """(Cancel button wired to ``on_cancel``, disabled until a job runs; progress bar; word-wrapped status)."""
    cancel = QPushButton("Cancel")
    cancel.clicked.connect(on_cancel)
    cancel.setEnabled(False)
    progress = QProgressBar()
    progress.setRange(0, 1000)
    status = QLabel("")
    status.setWordWrap(True)
    return cancel, progress, status


def dicom_path_row(edit: QLineEdit, what: str) -> QHBoxLayout:
    """``edit`` with "File..." and "Folder..." buttons that fill it; ``what`` titles the file dialogs."""
    file_button, folder_button = QPushButton("File..."), QPushButton("Folder...")

    def choose_file() -> None:
        path, _ = QFileDialog.getOpenFileName(edit.window(), f"DICOM file {what}", "", "DICOM (*.dcm);;All files (*)")
        if path:
            edit.setText(path)

    def choose_folder() -> None:
        path = QFileDialog.getExistingDirectory(edit.window(), f"DICOM folder {what}")
        if path:
            edit.setText(path)

    file_button.clicked.connect(choose_file)
    folder_button.clicked.connect(choose_folder)
    row = QHBoxLayout()
    for w in (edit, file_button, folder_button):
        row.addWidget(w)
    return row


def job_layout(dialog: QWidget, form: QFormLayout, buttons: list[QPushButton], progress: QProgressBar,
               status: QLabel, body: QWidget) -> QVBoxLayout:
    """``dialog``'s layout: the form, the buttons in a row, the progress bar, the status line and ``body`` (which
    takes the spare height)."""
    row = QHBoxLayout()
    for b in buttons:
        row.addWidget(b)
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    layout.addLayout(row)
    layout.addWidget(progress)
    layout.addWidget(status)
    layout.addWidget(body, 1)
    return layout
