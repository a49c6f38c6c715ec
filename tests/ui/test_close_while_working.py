"""Closing the main window while background work runs: workers are cancelled and waited for, nothing crashes."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def slow_loader(monkeypatch):
    """DICOM slices decode 50 ms slower each, so a 100-slice load is still running when the window closes."""
    from viewer.core.io.dicom_series import SeriesLoader

    real = SeriesLoader._load_task
    monkeypatch.setattr(SeriesLoader, "_load_task", lambda self, ks: (time.sleep(0.05), real(self, ks))[1])


def test_closing_while_loading_cancels_and_waits_for_the_load(qtbot, demo_study, open_and_wait, slow_loader):
    from PySide6.QtWidgets import QApplication

    from viewer.ui.main_window import MainWindow

    window = MainWindow()
    window.show_error_dialogs = False
    window.show()
    qtbot.waitExposed(window)
    shown = open_and_wait(window, demo_study.pet_dir)  # something to go back to: a cancelled load restores it
    with qtbot.waitSignal(window.state.slices_loaded, timeout=30000):
        worker = window.open_path(str(demo_study.ct_dir))
    assert worker.isRunning() and window.state.volume is not shown
    started = time.perf_counter()
    assert window.close()
    assert worker.isFinished() and time.perf_counter() - started < 5  # cancelled, not left to finish 100 slices
    assert worker.cancel_token.cancelled
    for _ in range(20):  # the cancelled load's queued signals would now reach finalized VTK views
        QApplication.processEvents()
        qtbot.wait(10)
    window.deleteLater()
    qtbot.wait(50)  # the window and its worker threads are destroyed: the process is still here


def test_closing_while_an_ai_job_runs_cancels_it(viewer, qtbot, open_and_wait, demo_study):
    from viewer.ui.ai_panel import AiWorker

    open_and_wait(viewer, demo_study.ct_dir)
    started = []

    def job(progress, cancel):  # a job that runs until cancelled, as long inferences do
        started.append(True)
        while True:
            cancel.raise_if_cancelled()
            time.sleep(0.01)

    worker = AiWorker("slow job", job, viewer.ai_panel)
    worker.start()
    qtbot.waitUntil(lambda: bool(started), timeout=5000)
    assert viewer.stop_workers() == [] and worker.isFinished()


def test_a_worker_that_outlives_the_wait_is_detached_and_silenced(viewer, qtbot):
    from viewer.ui.workers import TaskWorker, wait_or_detach

    worker = TaskWorker(time.sleep, 0.5, parent=viewer)  # ignores cancel, like a job that cannot stop midway
    results = []
    worker.finished_ok.connect(results.append)
    worker.start()
    assert not wait_or_detach(worker, 10)
    assert worker.parent() is None and worker.isRunning()  # deleting the window cannot destroy it now
    assert worker.wait(5000)
    qtbot.wait(50)
    assert results == []  # its late result does not reach the (closed) window
