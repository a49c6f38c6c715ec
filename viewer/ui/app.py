"""Start the GUI: `radview [PATH ...] [--demo] [--screenshot PNG]`; the demo opens fused (PET in SUV over CT)."""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)
#: Seconds a --screenshot run may take to load before giving up.
SCREENSHOT_TIMEOUT_S = 120
#: How the demo shows its PET over the CT: hot over SUV 0-10 (lesions yellow, not white), nothing below SUV 2.5.
DEMO_FUSION = {"colormap": "hot", "window": (0.0, 10.0), "threshold": 2.5, "opacity": 0.7, "blend": "alpha"}


def grab_window(window, out: str | Path) -> Path:
    """Save what the screen shows of ``window`` (VTK's OpenGL content included) as PNG."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for view in (*window.views.values(), window.view3d, window.fusion_control.moving_view):
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


def show_demo_fused(window, study, on_done=None) -> None:
    """Once the demo CT is shown: its labels as outlines, the demo PET (which carries a known offset) loaded
    as the moving volume, registered to the CT (rigid, in the background, ~2 s), the result accepted and shown
    in SUV (DEMO_FUSION) with the cursor on the liver lesion. ``on_done(ok)`` is called at the end."""
    import json

    from viewer.core.labels import LABEL_OPACITY_META

    done = on_done or (lambda ok: None)
    if window.state.labels is None and window.open_labels(str(study.labels)) is not None:
        outlines = window.state.labels.with_array(window.state.labels.array)
        outlines.meta[LABEL_OPACITY_META] = dict.fromkeys(outlines.meta.get(LABEL_OPACITY_META, {}), 0.0)
        window.state.set_labels(outlines)  # organ and lesion contours; the colour inside is the PET's
    control, panel = window.fusion_control, window.registration_panel

    def registered(_result) -> None:
        panel.accept()
        window.fusion.set_display(**DEMO_FUSION)
        lesion = json.loads(study.truth.read_text())["lesions"][0]["center_mm"]
        window.state.set_cursor(lesion)
        window.statusBar().showMessage("demo: PET registered to CT (rigid) and fused in SUV; Fusion and "
                                       "Registration docks on the right, View > Layout side-by-side")
        done(True)

    def failed(message: str) -> None:
        log.error("demo fusion: %s", message)
        done(False)

    _once(control.fused, lambda _vol: panel.run("rigid"))
    _once(panel.registered, registered)
    _once(control.failed, failed)
    control.load_moving(str(study.pet_dir))


def start_window(paths: list[str], demo: bool = False, screenshot: str | None = None, on_demo_ready=None):
    """Create and show the main window and start opening ``paths`` (with ``demo``: the demo CT, PET and MR
    first, the CT shown with the PET fused and registered over it, see :func:`show_demo_fused`, which calls
    ``on_demo_ready(ok)``). Interactive starts offer crash recovery; --screenshot runs never ask anything.
    Returns the window."""
    from viewer.ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    if screenshot:
        window.show_error_dialogs = False
    if demo:
        from viewer.core.phantom import demo_study_dir

        study = demo_study_dir()
        paths = [str(study.ct_dir), str(study.pet_dir), str(study.mr), *paths]
        _once(window.load_finished, lambda _vol: show_demo_fused(window, study, on_demo_ready))
    QTimer.singleShot(0, lambda: window.start(list(paths), recover=not screenshot))
    return window


def run_gui(paths: list[str], demo: bool = False, screenshot: str | None = None) -> int:
    """Open the main window on ``paths`` (or the demo study); with ``screenshot`` save a grab and exit (the
    demo once its PET is registered and fused, otherwise once the first path is loaded)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("radview")
    result = {"code": 0, "shot": False}

    def finish(ok: bool) -> None:
        if screenshot and not result["shot"]:
            result["shot"] = True
            QTimer.singleShot(300, lambda: _shoot(ok))

    def _shoot(ok: bool) -> None:
        window.wait_for_scans()  # every given path listed in the study browser
        grab_window(window, screenshot)
        result["code"] = 0 if ok else 2
        window.close()
        app.quit()

    window = start_window(paths, demo, screenshot, on_demo_ready=finish)
    if not screenshot:  # a person closes it: ask about unsaved edits (a screenshot run keeps them for recovery)
        from viewer.ui.main_window import ask_unsaved_dialog

        window.ask_unsaved = partial(ask_unsaved_dialog, window)
    if screenshot:
        if not demo:
            window.load_finished.connect(lambda _vol: finish(True))
        window.load_failed.connect(lambda msg: (print(f"radview: error: {msg}", file=sys.stderr), finish(False)))
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, lambda: finish(False))
        if not paths and not demo:
            QTimer.singleShot(200, lambda: finish(True))
    app.exec()
    return result["code"]
