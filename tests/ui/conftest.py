"""GUI fixtures: a real main window under Xvfb that the fixture closes, failing on leaked windows."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter


@pytest.fixture
def viewer(qtbot):
    """The radview main window, shown; closed (and checked for leaked top-level windows) afterwards."""
    from PySide6.QtWidgets import QApplication

    from viewer.ui.main_window import MainWindow

    before = {id(w) for w in QApplication.topLevelWidgets() if w.isVisible()}
    window = MainWindow()
    window.show_error_dialogs = False
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()
    leaked = [w for w in QApplication.topLevelWidgets() if w.isVisible() and id(w) not in before]
    assert not leaked, f"windows left open: {leaked}"


@pytest.fixture
def open_and_wait(qtbot):
    """Open a path in the window and wait until it is fully loaded; returns the Volume."""

    def run(window, path, timeout=30000):
        with qtbot.waitSignal(window.load_finished, timeout=timeout) as blocker:
            window.open_path(str(path))
        return blocker.args[0]

    return run


@pytest.fixture
def export_and_wait(qtbot, monkeypatch):
    """Export the window's segmentation to a path and wait for it; returns the (labels, audit) paths its worker
    finished with. The result is recorded by a slot connected before the worker starts, so a quick export
    cannot finish before the test listens."""
    from viewer.ui import export_dialog

    made = export_dialog.export_worker

    def run(window, path, timeout=60000):
        results = []

        def recorded(*args, **kwargs):
            worker = made(*args, **kwargs)
            worker.finished_ok.connect(results.append)
            return worker

        monkeypatch.setattr(export_dialog, "export_worker", recorded)
        worker = window.export_segmentation(str(path))
        qtbot.waitUntil(lambda: bool(results) and not worker.isRunning(), timeout=timeout)
        return results[0]

    return run


def view_pixels(view) -> np.ndarray:
    """The rendered RGB pixels (rows top to bottom) of an MprView or Volume3DView."""
    view.vtk.render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(view.vtk.GetRenderWindow())
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    img = grab.GetOutput()
    w, h, _ = img.GetDimensions()
    return vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, 3)[::-1].astype(np.int16)


@contextmanager
def ai_job(qtbot, panel, signal, timeout: int):
    """Like ``qtbot.waitSignal(signal)`` for a job the AI ``panel`` runs in the block, but a job that fails instead
    (the panel's ``failed``) fails the test at once with its message, not after ``timeout`` ms of waiting.
    Yields an object whose ``args`` are the signal's arguments once the block has ended."""
    got, failures = [], []
    result = SimpleNamespace(args=None)

    def succeeded(*args):
        got.append(list(args))

    signal.connect(succeeded)
    panel.failed.connect(failures.append)
    try:
        yield result
        qtbot.waitUntil(lambda: bool(got or failures), timeout=timeout)
    finally:
        signal.disconnect(succeeded)
        panel.failed.disconnect(failures.append)
    assert not failures, f"the job failed: {failures[0]}"
    result.args = got[0]
