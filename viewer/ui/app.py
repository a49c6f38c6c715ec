"""Start the GUI: `radview [PATH ...] [--demo] [--screenshot PNG]`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)
#: Seconds a --screenshot run may take to load before giving up.
SCREENSHOT_TIMEOUT_S = 120


def grab_window(window, out: str | Path) -> Path:
    """Save what the screen shows of ``window`` (VTK's OpenGL content included) as PNG."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for view in (*window.views.values(), window.view3d):
        if view.isVisible():
            view.vtk.render()
    QApplication.processEvents()
    pixmap = window.screen().grabWindow(window.winId())
    if not pixmap.save(str(out)):
        raise OSError(f"cannot write screenshot {out}")
    return out


def _once(signal, slot) -> None:
    """Connect ``slot`` to ``signal`` for its next emission only."""
    def call(*args):
        signal.disconnect(call)
        slot(*args)

    signal.connect(call)


def start_window(paths: list[str], demo: bool = False, screenshot: str | None = None):
    """Create and show the main window and start opening ``paths`` (with ``demo``: the demo CT, PET and MR
    first, the demo labels on the CT). Interactive starts offer crash recovery; --screenshot runs never
    ask anything. Returns the window."""
    from viewer.ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    if screenshot:
        window.show_error_dialogs = False
    if demo:
        from viewer.core.phantom import demo_study_dir

        study = demo_study_dir()
        paths = [str(study.ct_dir), str(study.pet_dir), str(study.mr), *paths]
        labels = str(study.labels)
        _once(window.load_finished, lambda _vol: window.open_labels(labels) if window.state.labels is None else None)
    QTimer.singleShot(0, lambda: window.start(list(paths), recover=not screenshot))
    return window


def run_gui(paths: list[str], demo: bool = False, screenshot: str | None = None) -> int:
    """Open the main window on ``paths`` (or the demo study); with ``screenshot`` save a grab and exit."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("radview")
    window = start_window(paths, demo, screenshot)
    result = {"code": 0}
    if screenshot:
        def finish(ok: bool) -> None:
            QTimer.singleShot(300, lambda: _shoot(ok))

        def _shoot(ok: bool) -> None:
            window.wait_for_scans()  # every given path listed in the study browser
            grab_window(window, screenshot)
            result["code"] = 0 if ok else 2
            window.close()
            app.quit()

        window.load_finished.connect(lambda _vol: finish(True))
        window.load_failed.connect(lambda msg: (print(f"radview: error: {msg}", file=sys.stderr), finish(False)))
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, lambda: finish(False))
        if not paths and not demo:
            QTimer.singleShot(200, lambda: finish(True))
    app.exec()
    return result["code"]
