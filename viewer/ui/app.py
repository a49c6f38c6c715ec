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


def run_gui(paths: list[str], demo: bool = False, screenshot: str | None = None) -> int:
    """Open the main window on ``paths`` (or the demo study); with ``screenshot`` save a grab and exit."""
    from viewer.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("radview")
    window = MainWindow()
    window.show()
    labels = None
    if demo:
        from viewer.core.phantom import demo_study_dir

        study = demo_study_dir()
        paths = [str(study.ct_dir), *paths]
        labels = str(study.labels)
    if labels:
        window.load_finished.connect(lambda _vol: window.open_labels(labels) if window.state.labels is None else None)
    result = {"code": 0}
    if screenshot:
        window.show_error_dialogs = False

        def finish(ok: bool) -> None:
            QTimer.singleShot(300, lambda: _shoot(ok))

        def _shoot(ok: bool) -> None:
            grab_window(window, screenshot)
            result["code"] = 0 if ok else 2
            window.close()
            app.quit()

        window.load_finished.connect(lambda _vol: finish(True))
        window.load_failed.connect(lambda msg: (print(f"radview: error: {msg}", file=sys.stderr), finish(False)))
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, lambda: finish(False))
        if not paths:
            QTimer.singleShot(200, lambda: finish(True))
    if paths:
        QTimer.singleShot(0, lambda: window.open_path(paths[0]))
    elif not screenshot:
        QTimer.singleShot(0, window.offer_recovery)
    app.exec()
    return result["code"]
