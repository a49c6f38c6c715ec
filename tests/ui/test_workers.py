"""The one worker base (viewer.ui.workers.Worker) in real threads: results, typed and unexpected errors, cancel,
and each worker's own cancel message; the GUI thread is never the one working."""

from __future__ import annotations

import threading

import pytest

from viewer.core.errors import CorruptFileError
from viewer.ui.ai_panel import AiWorker
from viewer.ui.workers import LoadWorker, ScanWorker, TaskWorker

pytestmark = pytest.mark.gui


def _outcome(qtbot, worker) -> dict:
    """Run ``worker`` to its end; every signal it emitted, by name, with its arguments."""
    seen: dict[str, list] = {}
    for name in ("finished_ok", "failed", "cancelled", "progress"):
        getattr(worker, name).connect(lambda *args, name=name: seen.setdefault(name, []).append(args))
    with qtbot.waitSignal(worker.finished, timeout=30000):
        worker.start()
    qtbot.wait(20)  # queued signals delivered
    return seen


def test_a_task_result_arrives_from_another_thread(qtbot):
    threads = []

    def fn(a, b, progress, cancel):
        threads.append(threading.current_thread())
        progress(0.5, "half")
        return a + b

    seen = _outcome(qtbot, TaskWorker(fn, 2, b=3, with_progress=True))
    assert seen == {"progress": [(0.5, "half")], "finished_ok": [(5,)]}
    assert threads and threads[0] is not threading.main_thread()


def test_typed_errors_name_the_file_and_unexpected_ones_name_the_work(qtbot):
    def corrupt():
        raise CorruptFileError("truncated pixel data", "/data/x.dcm")

    def broken():
        raise ValueError("boom")

    assert _outcome(qtbot, TaskWorker(corrupt))["failed"] == [(str(CorruptFileError("truncated pixel data",
                                                                                       "/data/x.dcm")),)]
    assert _outcome(qtbot, TaskWorker(broken)) == {"failed": [("broken: unexpected error: boom",)]}


def test_cancel_messages_per_worker(qtbot):
    def job(progress, cancel):
        cancel.cancel()  # as if the user pressed Cancel while a job that cannot stop midway ran
        return "result"

    seen = _outcome(qtbot, AiWorker("running m", job))
    assert seen == {"cancelled": [()], "failed": [("running m cancelled; nothing was created",)]}

    def stops(progress, cancel):
        cancel.cancel()
        cancel.raise_if_cancelled()

    assert _outcome(qtbot, TaskWorker(stops, with_progress=True)) == {"cancelled": [()]}  # no error shown

def test_a_cancelled_load_says_so_and_names_the_path(qtbot, demo_study):
    load = LoadWorker(demo_study.ct_dir)
    load.cancel()  # before the slices are read
    seen = _outcome(qtbot, load)
    assert seen["cancelled"] == [()] and seen["failed"] == [(f"{demo_study.ct_dir}: loading cancelled",)]
    assert "finished_ok" not in seen


def test_a_scan_reports_each_unreadable_path_and_goes_on(qtbot, demo_study, tmp_path):
    missing = tmp_path / "missing"
    worker = ScanWorker([str(missing), str(demo_study.ct_dir)])
    scanned = []
    worker.scanned.connect(lambda path, found: scanned.append((path, len(found))))
    seen = _outcome(qtbot, worker)
    assert scanned == [(str(demo_study.ct_dir), 1)]
    assert len(seen["failed"]) == 1 and str(missing) in seen["failed"][0][0]
