"""Time from choosing a folder in the real MainWindow until its first slice is rendered (run by bench_load).

Opens the folder with ``MainWindow.open_path`` (what File > Open folder does) and stops the clocks (wall and
the process's CPU time) in the first ``slices_loaded`` notification, which the views handle (and render)
before this script's slot runs. The axial view is then read back from the render window to check the slice
is really on screen. Needs a display (``make bench`` runs under xvfb-run). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from vtkmodules.util.numpy_support import vtk_to_numpy  # noqa: E402
from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter  # noqa: E402

from viewer.ui.main_window import MainWindow  # noqa: E402

TIMEOUT_MS = 60000


def _axial_pixels(window: MainWindow) -> np.ndarray:
    """What the axial view shows now (RGB, as rendered; no re-render)."""
    grab = vtkWindowToImageFilter()
    grab.SetInput(window.views["axial"].vtk.GetRenderWindow())
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    img = grab.GetOutput()
    return vtk_to_numpy(img.GetPointData().GetScalars())


def _open_once(window: MainWindow, folder: Path) -> dict:
    """Open ``folder``, time the first rendered slice, wait for the full load; returns the measurements."""
    seen: dict = {}
    loop = QEventLoop()

    def on_slices(ks) -> None:
        if ks and "first_slice_s" not in seen:
            seen["first_slice_s"] = time.perf_counter() - t0
            seen["first_slice_cpu_s"] = time.process_time() - c0
            pixels = _axial_pixels(window)
            seen["distinct_axial_pixel_values"] = int(np.unique(pixels).size)

    def on_loaded(_vol) -> None:
        seen["loaded_s"] = time.perf_counter() - t0
        loop.quit()

    window.state.slices_loaded.connect(on_slices)
    window.load_finished.connect(on_loaded)
    QTimer.singleShot(TIMEOUT_MS, loop.quit)
    t0, c0 = time.perf_counter(), time.process_time()
    window.open_path(str(folder))
    loop.exec()
    window.state.slices_loaded.disconnect(on_slices)
    window.load_finished.disconnect(on_loaded)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    window.show_error_dialogs = False
    window.resize(1400, 900)
    window.show()
    # let the window map, lay out and finish its idle start-up work (preloading the readers) before the clock
    # starts: a user takes longer than this second to choose a folder
    for _ in range(100):
        app.processEvents()
        time.sleep(0.01)
    runs = [_open_once(window, args.folder) for _ in range(1 + args.repeats)]
    window.close()
    window.deleteLater()
    app.processEvents()
    ok = all("first_slice_s" in r and "loaded_s" in r for r in runs)
    print(json.dumps({
        "gui_first_slice_first_open_s": round(runs[0].get("first_slice_s", float("nan")), 4),
        "gui_first_slice_s": round(min(r.get("first_slice_s", float("inf")) for r in runs[1:]), 4),
        # CPU seconds of the whole process (GUI and loader threads) to the first slice: less sensitive to
        # other work on the machine than the wall time
        "gui_first_slice_cpu_s": round(min(r.get("first_slice_cpu_s", float("inf")) for r in runs[1:]), 4),
        "gui_loaded_s": round(min(r.get("loaded_s", float("inf")) for r in runs[1:]), 4),
        # a rendered slice has many grey levels; a blank or placeholder view only a few
        "gui_first_slice_drawn": ok and min(r["distinct_axial_pixel_values"] for r in runs) > 16,
    }), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
