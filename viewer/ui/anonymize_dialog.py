"""Anonymize dialog: de-identify a DICOM file or folder into an output folder (PS3.15 Annex E basic profile)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from viewer.ui.job_widgets import dicom_path_row, job_layout, job_widgets
from viewer.ui.workers import TaskWorker


def report_text(report) -> str:
    """A person-readable summary of an :class:`viewer.core.io.anonymize.AnonymizeReport`."""
    lines = [f"Wrote {len(report.files_written)} files to {report.out_dir}",
             f"UIDs remapped: {report.uid_map_size}"]
    if report.burned_in:
        lines.append(f"Burned-in annotation flagged (BurnedInAnnotation YES) in {len(report.burned_in)} files: "
                     "text in the pixels is NOT removed, check them before sharing:")
        lines += [f"  {p}" for p in report.burned_in]
    else:
        lines.append("Burned-in annotation: no file flagged")
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)} files:")
        lines += [f"  {p}: {why}" for p, why in report.skipped]
    lines += [f"Warning: {w}" for w in report.warnings if not w.endswith("may remain in the pixels")]
    return "\n".join(lines)


class AnonymizeDialog(QDialog):
    """Choose the input (file or folder) and the output folder, run in the background, show the report.

    ``run()`` starts the worker; ``finished`` results land in ``report`` and the text box; errors are
    shown in the dialog (the application stays up).
    """

    def __init__(self, parent: QWidget | None = None, input_path: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Anonymize DICOM")
        self.input_edit = QLineEdit(input_path)
        self.output_edit = QLineEdit()
        self.name_edit = QLineEdit("ANON")
        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("a per-run pseudonym of the original ID")
        out_button = QPushButton("...")
        out_button.clicked.connect(self._choose_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_edit)
        out_row.addWidget(out_button)
        form = QFormLayout()
        form.addRow("DICOM input", dicom_path_row(self.input_edit, "to anonymize"))
        form.addRow("Output folder", out_row)
        form.addRow("Patient's name", self.name_edit)
        form.addRow("Patient ID", self.id_edit)
        self.run_button = QPushButton("Anonymize")
        self.run_button.clicked.connect(self.run)
        self.cancel_button, self.progress, self.status = job_widgets(self.cancel)
        self.result_text = QPlainTextEdit()
        self.result_text.setReadOnly(True)
        job_layout(self, form, [self.run_button, self.cancel_button], self.progress, self.status, self.result_text)
        self.worker: TaskWorker | None = None
        self.report = None
        self.resize(640, 420)

    def _choose_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.output_edit.setText(path)

    def run(self) -> TaskWorker | None:
        """Start anonymizing in the background; None (and a message) when the inputs are incomplete."""
        from viewer.core.io.anonymize import anonymize

        src, out = self.input_edit.text().strip(), self.output_edit.text().strip()
        if not src or not out:
            self._show_error("choose a DICOM input and an output folder")
            return None
        if Path(out).resolve() == Path(src).resolve():
            self._show_error("the output folder must differ from the input")
            return None
        self.report = None
        self.result_text.clear()
        self.status.setText("anonymizing...")
        self.status.setStyleSheet("")
        self.worker = TaskWorker(anonymize, src, out, with_progress=True, parent=self,
                                 patient_name=self.name_edit.text().strip() or "ANON",
                                 patient_id=self.id_edit.text().strip() or None)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished_ok.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self._set_running(True)
        self.worker.start()
        return self.worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(message)

    def _on_done(self, report) -> None:
        self._set_running(False)
        self.report = report
        self.progress.setValue(1000)
        flagged = f", {len(report.burned_in)} with burned-in annotation" if report.burned_in else ""
        self.status.setText(f"done: {len(report.files_written)} files, {report.uid_map_size} UIDs remapped{flagged}")
        self.result_text.setPlainText(report_text(report))

    def _on_cancelled(self) -> None:
        self._set_running(False)
        self.status.setText("cancelled: the files written so far were deleted")

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.status.setText(f"Error: {message}")
        self.status.setStyleSheet("color: #c00000")

    def done(self, result: int) -> None:  # noqa: D401 - QDialog API: closing waits for a running worker
        if self.worker is not None and self.worker.isRunning():
            self.worker.cancel()
            self.worker.wait(10000)
        super().done(result)
